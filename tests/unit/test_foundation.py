"""The seed API of ``aws_lambda_artifact_builder.layer.foundation``: exact paths, keys and behaviour."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import boto3
import pytest
from aws_lambda_artifact_builder.api import (
    BaseLogger,
    Credentials,
    LayerBuildToolEnum,
    LayerError,
    LayerInputError,
    LayerManifestManager,
    LayerPathLayout,
    LayerS3Layout,
)
from s3pathlib.api import S3Path

PASSWORD = "p@ss:w/rd%"


def make_credentials(index_url: str = "https://pypi.example.com/repo/simple/") -> Credentials:
    return Credentials(index_name="my-corp.index", index_url=index_url, username="user@corp", password=PASSWORD)


# ---------------------------------------------------------------------------- Credentials
def test_credentials_are_immutable():
    creds = make_credentials()
    with pytest.raises(AttributeError):
        creds.password = "other"  # type: ignore[misc]


def test_uppercase_index_name_replaces_every_non_alphanumeric():
    assert make_credentials().uppercase_index_name == "MY_CORP_INDEX"


@pytest.mark.parametrize(
    ("index_url", "expected"),
    [
        (
            "https://pypi.example.com/repo/simple/",
            "https://user%40corp:p%40ss%3Aw%2Frd%25@pypi.example.com/repo/simple/",
        ),
        (
            "https://pypi.example.com/repo/simple",
            "https://user%40corp:p%40ss%3Aw%2Frd%25@pypi.example.com/repo/simple/",
        ),
        ("https://pypi.example.com/repo", "https://user%40corp:p%40ss%3Aw%2Frd%25@pypi.example.com/repo/simple/"),
        ("pypi.example.com", "https://user%40corp:p%40ss%3Aw%2Frd%25@pypi.example.com/simple/"),
        ("http://127.0.0.1:8080/simple/", "http://user%40corp:p%40ss%3Aw%2Frd%25@127.0.0.1:8080/simple/"),
        ("https://old:token@pypi.example.com/x/", "https://user%40corp:p%40ss%3Aw%2Frd%25@pypi.example.com/x/simple/"),
    ],
)
def test_pip_extra_index_url_keeps_the_path_and_encodes_the_login(index_url: str, expected: str):
    assert make_credentials(index_url).pip_extra_index_url == expected


def test_pip_argument_helpers():
    creds = make_credentials()
    assert creds.additional_pip_install_args_index_url == ["--index-url", creds.pip_extra_index_url]
    assert creds.additional_pip_install_args_extra_index_url == ["--extra-index-url", creds.pip_extra_index_url]


def test_tool_environments_carry_the_login():
    creds = make_credentials()
    assert creds.uv_env() == {
        "UV_INDEX_MY_CORP_INDEX_USERNAME": "user@corp",
        "UV_INDEX_MY_CORP_INDEX_PASSWORD": PASSWORD,
    }
    assert creds.poetry_env() == {
        "POETRY_HTTP_BASIC_MY_CORP_INDEX_USERNAME": "user@corp",
        "POETRY_HTTP_BASIC_MY_CORP_INDEX_PASSWORD": PASSWORD,
    }
    assert creds.pip_env() == {"PIP_EXTRA_INDEX_URL": creds.pip_extra_index_url}
    assert creds.pip_env(extra=False) == {"PIP_INDEX_URL": creds.pip_extra_index_url}
    assert creds.simple_index_url == "https://pypi.example.com/repo/simple/"


def test_repr_and_str_never_show_the_password():
    creds = make_credentials("https://old:secret-token@pypi.example.com/simple/")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert PASSWORD not in text and "secret-token" not in text
        assert "user@corp" in text


def test_dump_writes_mode_0600_and_load_reads_it_back(tmp_path: Path):
    path = tmp_path / "sub" / "creds.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    creds = make_credentials()
    creds.dump(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["password"] == PASSWORD
    assert Credentials.load(path) == creds


# ---------------------------------------------------------------------------- LayerPathLayout
@pytest.fixture()
def layout(tmp_path: Path) -> LayerPathLayout:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    return LayerPathLayout(path_pyproject_toml=tmp_path / "pyproject.toml")


def test_layout_paths(layout: LayerPathLayout, tmp_path: Path):
    root = tmp_path
    assert layout.dir_project_root == root
    assert layout.path_pyproject_toml == root / "pyproject.toml"
    assert layout.dir_build_lambda_layer == root / "build" / "lambda" / "layer"
    assert layout.path_build_lambda_layer_zip == root / "build" / "lambda" / "layer" / "layer.zip"
    assert layout.dir_repo == root / "build" / "lambda" / "layer" / "repo"
    assert layout.dir_artifacts == root / "build" / "lambda" / "layer" / "artifacts"
    assert layout.dir_python == root / "build" / "lambda" / "layer" / "artifacts" / "python"
    assert layout.path_tmp_pyproject_toml == layout.dir_repo / "pyproject.toml"


def test_layout_accepts_a_relative_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert LayerPathLayout(path_pyproject_toml="pyproject.toml").dir_project_root == tmp_path  # type: ignore[arg-type]


def test_paths_that_survive_clean_are_outside_the_layer_build_folder(layout: LayerPathLayout):
    for path in (
        layout.path_build_lambda_layer_in_container_script_in_local,
        layout.path_private_repository_credentials_in_local,
    ):
        assert layout.dir_build_lambda_layer not in path.parents
        assert layout.dir_project_root in path.parents
    assert layout.path_build_lambda_layer_in_container_script_in_container == (
        "/var/task/build/lambda/build_lambda_layer_in_container.py"
    )
    assert layout.path_private_repository_credentials_in_container == (
        "/var/task/build/lambda/private-repository-credentials.json"
    )


def test_get_path_in_container(layout: LayerPathLayout, tmp_path: Path):
    assert layout.get_path_in_container(tmp_path / "a" / "b.txt") == "/var/task/a/b.txt"
    assert layout.get_path_in_container(tmp_path) == "/var/task"
    with pytest.raises(LayerError, match="outside the project root"):
        layout.get_path_in_container(tmp_path.parent / "elsewhere.txt")


def test_site_packages_of_the_build_venv(layout: LayerPathLayout):
    with pytest.raises(LayerError, match="site-packages"):
        _ = layout.dir_build_lambda_layer_repo_venv_site_packages
    sp = layout.dir_repo / ".venv" / "lib" / "python3.12" / "site-packages"
    sp.mkdir(parents=True)
    assert layout.dir_build_lambda_layer_repo_venv_site_packages == sp


def test_get_path_manifest(layout: LayerPathLayout, tmp_path: Path):
    assert layout.get_path_manifest(LayerBuildToolEnum.pip) == tmp_path / "requirements.txt"
    assert layout.get_path_manifest(LayerBuildToolEnum.poetry) == tmp_path / "poetry.lock"
    assert layout.get_path_manifest(LayerBuildToolEnum.uv) == tmp_path / "uv.lock"
    assert layout.get_path_manifest("uv") == tmp_path / "uv.lock"
    with pytest.raises(LayerInputError, match="conda") as raised:
        layout.get_path_manifest("conda")
    assert [name for name, _ in raised.value.problems] == ["tool"]


def test_mkdirs_and_copies_log_through_the_printer(layout: LayerPathLayout, tmp_path: Path):
    (tmp_path / "poetry.lock").write_text("poetry")
    (tmp_path / "uv.lock").write_text("uv")
    script = tmp_path / "script.py"
    script.write_text("print(1)")
    layout.mkdirs()
    assert layout.dir_repo.is_dir() and layout.dir_python.is_dir()
    lines: list[str] = []
    layout.copy_pyproject_toml(printer=lines.append)
    layout.copy_poetry_lock(printer=lines.append)
    layout.copy_uv_lock(printer=lines.append)
    layout.copy_build_script(script, printer=lines.append)
    assert layout.path_tmp_pyproject_toml.read_text() == "[project]\nname='x'\n"
    assert layout.path_tmp_poetry_lock.read_text() == "poetry"
    assert layout.path_tmp_uv_lock.read_text() == "uv"
    assert layout.path_build_lambda_layer_in_container_script_in_local.read_text() == "print(1)"
    assert len(lines) == 4 and all(line.startswith("Copy ") for line in lines)


def test_clean_with_skip_prompt_removes_the_build(layout: LayerPathLayout):
    layout.mkdirs()
    layout.path_build_lambda_layer_in_container_script_in_local.write_text("kept")
    layout.clean(skip_prompt=True)
    assert not layout.dir_build_lambda_layer.exists()
    assert layout.path_build_lambda_layer_in_container_script_in_local.exists()


def test_clean_without_a_terminal_refuses_instead_of_hanging(layout: LayerPathLayout, monkeypatch: pytest.MonkeyPatch):
    layout.mkdirs()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(LayerError, match="skip_prompt=True"):
        layout.clean()
    assert layout.dir_build_lambda_layer.exists()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "removed"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_clean_asks_on_a_terminal(layout: LayerPathLayout, monkeypatch: pytest.MonkeyPatch, answer: str, removed: bool):
    layout.mkdirs()
    monkeypatch.setattr("sys.stdin", _Tty(answer))
    if removed:
        layout.clean()
    else:
        with pytest.raises(LayerError, match="not deleting"):
            layout.clean()
    assert layout.dir_build_lambda_layer.exists() is not removed


def test_clean_of_a_missing_folder_is_a_no_op(layout: LayerPathLayout):
    layout.clean()
    assert not layout.dir_build_lambda_layer.exists()


# ---------------------------------------------------------------------------- LayerS3Layout
@pytest.mark.parametrize("s3dir", ["s3://bkt/app/lambda/", S3Path("s3://bkt/app/lambda/")])
def test_s3_layout_keys(s3dir):
    s3 = LayerS3Layout(s3dir_lambda=s3dir)
    assert s3.s3path_temp_layer_zip.uri == "s3://bkt/app/lambda/layer/layer.zip"
    assert s3.get_s3dir_layer_version(1).uri == "s3://bkt/app/lambda/layer/000001/"
    assert s3.get_s3dir_layer_version(123456).uri == "s3://bkt/app/lambda/layer/123456/"
    assert s3.get_s3path_layer_requirements_txt(2).uri == "s3://bkt/app/lambda/layer/000002/requirements.txt"
    assert s3.get_s3path_layer_poetry_lock(3).uri == "s3://bkt/app/lambda/layer/000003/poetry.lock"
    assert s3.get_s3path_layer_uv_lock(4).uri == "s3://bkt/app/lambda/layer/000004/uv.lock"
    assert s3.s3path_last_requirements_txt.uri == "s3://bkt/app/lambda/layer/last-requirements.txt"
    assert s3.s3path_last_poetry_lock.uri == "s3://bkt/app/lambda/layer/last-poetry.lock"
    assert s3.s3path_last_uv_lock.uri == "s3://bkt/app/lambda/layer/last-uv.lock"


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "1"])
def test_s3_layout_rejects_versions_below_one(version):
    with pytest.raises(LayerError, match="layer version"):
        LayerS3Layout(s3dir_lambda="s3://bkt/x/").get_s3dir_layer_version(version)


@pytest.mark.parametrize(
    ("s3dir", "message"),
    [
        ("s3://bkt/app/lambda", "not a directory"),
        (S3Path("s3://bkt/app/file.txt"), "not a directory"),
        ("/tmp/app/lambda/", "not an S3 URI"),
        ("https://bkt.s3.amazonaws.com/x/", "not an S3 URI"),
        ("s3://", "not an S3 URI"),
        ("s3://Bad_Bucket/x/", "bucket"),
        (42, "must be an S3Path"),
    ],
)
def test_s3_layout_rejects_non_directories_and_non_s3_values(s3dir, message: str):
    with pytest.raises(LayerError, match=message):
        LayerS3Layout(s3dir_lambda=s3dir)


# ---------------------------------------------------------------------------- loggers and manager
def test_base_logger_is_silenced_by_verbose_false():
    lines: list[str] = []
    BaseLogger(verbose=True, printer=lines.append).log("shown")
    BaseLogger(verbose=False, printer=lines.append).log("hidden")
    assert lines == ["shown"]


def test_layer_manifest_manager(tmp_path: Path):
    s3_client = boto3.client("s3", region_name="us-east-1")
    mgr = LayerManifestManager(
        verbose=False,
        printer=print,
        path_pyproject_toml=tmp_path / "pyproject.toml",
        s3dir_lambda="s3://bkt/lambda/",
        layer_build_tool="poetry",
        s3_client=s3_client,
    )
    assert mgr.layer_build_tool is LayerBuildToolEnum.poetry
    assert mgr.path_layout.dir_project_root == tmp_path
    assert mgr.s3_layout.s3dir_lambda.uri == "s3://bkt/lambda/"
    assert mgr.path_manifest == tmp_path / "poetry.lock"
    assert mgr.get_versioned_manifest(7).uri == "s3://bkt/lambda/layer/000007/poetry.lock"
    assert mgr.s3path_last_manifest.uri == "s3://bkt/lambda/layer/last-poetry.lock"
    with pytest.raises(LayerInputError, match="unknown layer build tool"):
        LayerManifestManager(
            path_pyproject_toml=tmp_path / "pyproject.toml",
            s3dir_lambda="s3://bkt/lambda/",
            layer_build_tool="conda",  # type: ignore[arg-type]
            s3_client=s3_client,
        )
