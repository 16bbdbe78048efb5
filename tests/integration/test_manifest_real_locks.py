"""The manifest readers on lock files produced by the real uv and poetry (and a pip requirements file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerTarget, ManifestError, compute_fingerprint, read_local_manifest
from support.projects import set_pin

RUNTIME = {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}


@pytest.mark.parametrize("tool", ["pip", "poetry", "uv"])
@pytest.mark.parametrize(("python_version", "architecture"), [("3.12", "x86_64"), ("3.10", "arm64")])
def test_runtime_set_excludes_dev_group_and_project(locked_projects, tool, python_version, architecture):
    manifest = read_local_manifest(locked_projects[tool], tool, LayerTarget(python_version, architecture))
    assert manifest.dependencies == RUNTIME
    assert manifest.path.name == {"pip": "requirements.txt", "poetry": "poetry.lock", "uv": "uv.lock"}[tool]


@pytest.mark.parametrize("tool", ["pip", "poetry", "uv"])
def test_changing_a_pin_without_relocking_is_a_stale_lock(project_copy, tool):
    path = project_copy(tool)
    set_pin(path, "alab-demo-core", "1.1.0")
    if tool == "pip":  # requirements.txt moves with the pin; make pyproject ask for more than is pinned
        path.write_text(
            path.read_text().replace('"alab-demo-extra==1.0.0"', '"alab-demo-extra==1.0.0", "alab-demo-devtool"')
        )
    with pytest.raises(ManifestError, match="stale"):
        read_local_manifest(path, tool, LayerTarget("3.12", "x86_64"))


@pytest.mark.parametrize("tool", ["poetry", "uv"])
def test_relocked_pin_changes_the_set_and_the_fingerprint(project_copy, private_index, dir_tool_cache, tool):
    from support.projects import lock

    path = project_copy(tool)
    target = LayerTarget("3.12", "x86_64")
    before = read_local_manifest(path, tool, target)
    set_pin(path, "alab-demo-core", "1.1.0")
    lock(tool, path.parent, private_index, dir_tool_cache)
    after = read_local_manifest(path, tool, target)
    assert after.dependencies == {**RUNTIME, "alab-demo-core": "1.1.0"}

    def fp(m) -> str:
        return compute_fingerprint(tool=tool, runtime_set=m.runtime_set, python_version="3.12", architecture="x86_64")

    assert fp(before) != fp(after)


def test_fingerprint_of_a_crlf_checkout_matches(project_copy):
    path = project_copy("uv")
    lock_path: Path = path.parent / "uv.lock"
    kw = dict(tool="uv", python_version="3.12", architecture="x86_64")
    target = LayerTarget("3.12", "x86_64")
    lf = compute_fingerprint(runtime_set=read_local_manifest(path, "uv", target).runtime_set, **kw)
    lock_path.write_bytes(lock_path.read_bytes().replace(b"\n", b"\r\n"))
    manifest = read_local_manifest(path, "uv", target)
    assert compute_fingerprint(runtime_set=manifest.runtime_set, **kw) == lf
