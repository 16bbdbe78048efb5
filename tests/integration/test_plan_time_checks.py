"""Plan-time checks (issue 11): what the lock already tells is refused before any claim, build or S3 write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerError, LayerTarget, deploy_layer, read_local_manifest
from support.ci import IN_CI
from support.layers import s3_snapshot
from support.projects import lock
from support.pythons import python_for_lock

DIR_CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "realworld"


def test_no_wheel_for_the_target_is_refused_before_any_s3_write(
    project_copy, private_index, dir_tool_cache, bucket, s3_client, lambda_client, credentials
):
    path = project_copy("uv")
    path.write_text(
        path.read_text().replace(
            '"alab-demo-extra==1.0.0",', '"alab-demo-extra==1.0.0",\n    "alab-demo-native==1.0.0",', 1
        )
    )
    lock("uv", path.parent, private_index, dir_tool_cache)
    with pytest.raises(LayerError, match=r"no wheel for python3.12 on arm64.*alab-demo-native==1.0.0"):
        deploy_layer(
            layer_name="native-deps",
            path_pyproject_toml=path,
            s3dir_lambda=f"s3://{bucket}/apps/native/",
            tool="uv",
            architecture="arm64",
            credentials=credentials,
            s3_client=s3_client,
            lambda_client=lambda_client,
            verbose=False,
        )
    assert s3_snapshot(s3_client, bucket) == {}
    assert not (path.parent / "build" / "lambda" / "layer").exists()


def test_a_target_the_lock_excludes_is_refused(
    project_copy, private_index, dir_tool_cache, bucket, s3_client, lambda_client
):
    path = project_copy("uv")
    path.write_text(path.read_text().replace('requires-python = ">=3.10"', 'requires-python = ">=3.11"'))
    lock("uv", path.parent, private_index, dir_tool_cache)
    with pytest.raises(LayerError, match=r"supports python >=3.11 .*excludes the target python3.10"):
        deploy_layer(
            layer_name="py-deps",
            path_pyproject_toml=path,
            s3dir_lambda=f"s3://{bucket}/apps/py/",
            tool="uv",
            python_version="3.10",
            s3_client=s3_client,
            lambda_client=lambda_client,
            verbose=False,
        )
    assert s3_snapshot(s3_client, bucket) == {}


def _uv_project_for_3_12_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, stale: bool) -> Path:
    """The corpus' requires-python >= 3.12 uv project (optionally made stale), on a machine whose uv
    finds no Python at all: nothing on PATH, no managed Python, no UV_PYTHON."""
    dest = tmp_path / "project"
    shutil.copytree(DIR_CORPUS / "uv-requires-python-312", dest)
    path = dest / "pyproject.toml"
    if stale:
        path.write_text(path.read_text().replace('"httpx>=0.27",', '"httpx>=0.27",\n    "six",', 1))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "empty"))
    for name in ("UV_PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.mark.parametrize("stale", [True, False], ids=["stale", "fresh"])
def test_uv_without_a_python_the_lock_allows_refuses_instead_of_reading_the_lock_unchecked(
    tmp_path, monkeypatch, stale
):
    path = _uv_project_for_3_12_only(tmp_path, monkeypatch, stale=stale)
    with pytest.raises(LayerError) as info:
        read_local_manifest(path, "uv", LayerTarget("3.12", "x86_64"))
    message = str(info.value)
    assert "\n" not in message and ">=3.12" in message and "UV_PYTHON" in message, message


def test_uv_with_a_python_the_lock_allows_finds_the_stale_lock(tmp_path, monkeypatch):
    path = _uv_project_for_3_12_only(tmp_path, monkeypatch, stale=True)
    exe = python_for_lock(path.parent / "uv.lock")
    if exe is None:
        if IN_CI:
            pytest.fail("no Python >= 3.12 is installed for uv")
        pytest.skip("no Python >= 3.12 is installed for uv to check the lock with")
    monkeypatch.setenv("UV_PYTHON", exe)
    with pytest.raises(LayerError, match=r"is stale"):
        read_local_manifest(path, "uv", LayerTarget("3.12", "x86_64"))
    path.write_text((DIR_CORPUS / "uv-requires-python-312" / "pyproject.toml").read_text())
    assert "httpx" in read_local_manifest(path, "uv", LayerTarget("3.12", "x86_64")).dependencies
