"""Local builds with the real pip, poetry and uv against the authenticated private index."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerError,
    LayerPathLayout,
    ManifestError,
    build_layer_artifacts_in_local,
    build_layer_artifacts_using_pip_in_local,
    build_layer_artifacts_using_poetry_in_local,
    build_layer_artifacts_using_uv_in_local,
    create_layer_zip_file,
)
from aws_lambda_artifact_builder.layer.package import read_distributions
from support.processes import files_containing, watch_processes
from support.projects import lock, set_pin
from support.wheels import build_wheel

DIR_FIXTURE_PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"
BUILDERS = {
    "pip": build_layer_artifacts_using_pip_in_local,
    "poetry": build_layer_artifacts_using_poetry_in_local,
    "uv": build_layer_artifacts_using_uv_in_local,
}
RUNTIME_SET = {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}


def installed(path_pyproject: Path) -> dict[str, str]:
    dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
    return {d.name: d.version for d in read_distributions(dir_python)}


def add_dependency(path_pyproject: Path, requirement: str) -> None:
    """Add a runtime requirement to a fixture project (pyproject and requirements.txt)."""
    text = path_pyproject.read_text()
    path_pyproject.write_text(text.replace("dependencies = [\n", f'dependencies = [\n    "{requirement}",\n', 1))
    path_req = path_pyproject.parent / "requirements.txt"
    if path_req.exists():
        path_req.write_text(path_req.read_text() + requirement + "\n")


@pytest.mark.parametrize("tool", ["pip", "poetry", "uv"])
def test_build_installs_exactly_the_locked_runtime_set_and_packages_it_reproducibly(
    tool: str, project_copy, credentials: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path_pyproject = project_copy(tool)
    # Caches inside this test's folder, so that every file a build leaves can be searched.
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    environ_before = dict(os.environ)
    logs: list[str] = []
    with watch_processes(monkeypatch) as watch:
        BUILDERS[tool](
            path_pyproject_toml=path_pyproject,
            python_version="3.12",
            architecture="arm64",
            credentials=credentials,
            skip_prompt=True,
            printer=logs.append,
        )
        first = create_layer_zip_file(path_pyproject_toml=path_pyproject, printer=logs.append)
        first_bytes = first.path.read_bytes()
        assert installed(path_pyproject) == RUNTIME_SET
        dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
        assert not list(dir_python.glob("alab_demo_devtool*")) and not list(dir_python.glob("sample*"))
        build_layer_artifacts_in_local(
            tool=tool,
            path_pyproject_toml=path_pyproject,
            python_version="3.12",
            architecture="arm64",
            credentials=credentials,
            skip_prompt=True,
            printer=logs.append,
        )
        second = create_layer_zip_file(path_pyproject_toml=path_pyproject, printer=logs.append)
    assert second.path.read_bytes() == first_bytes and second.sha256 == first.sha256
    with zipfile.ZipFile(second.path) as zf:
        tops = {n.split("/")[1] for n in zf.namelist() if n.count("/") >= 2}
    assert tops == {
        "alab_demo_core",
        "alab_demo_extra",
        "alab_demo_core-1.0.0.dist-info",
        "alab_demo_extra-1.0.0.dist-info",
    }

    secrets = [credentials.password, quote(credentials.password, safe="")]
    installs = [s for s in watch.spawned if "install" in s.argv]
    assert len(installs) == 2 and watch.polls > 0
    # The login did reach each installer, through its environment only.
    assert all(any(secrets[0] in v or secrets[1] in v for v in (s.env or {}).values()) for s in installs)
    for record in watch.spawned:
        assert not any(secret in arg for secret in secrets for arg in record.argv), record.argv
    assert not [c for c in watch.cmdlines if any(secret in c for secret in secrets)]
    assert not [line for line in logs if any(secret in line for secret in secrets)]
    assert "alab-demo-core" in "\n".join(logs)
    assert not files_containing(tmp_path, [s.encode() for s in secrets])
    assert dict(os.environ) == environ_before


def test_pip_poetry_and_uv_builds_of_the_same_set_give_the_same_zip(project_copy, credentials: Credentials):
    digests = {}
    for tool in ("pip", "poetry", "uv"):
        path_pyproject = project_copy(tool)
        build_layer_artifacts_in_local(
            tool=tool, path_pyproject_toml=path_pyproject, credentials=credentials, skip_prompt=True, verbose=False
        )
        digests[tool] = create_layer_zip_file(path_pyproject_toml=path_pyproject, verbose=False).sha256
    assert digests["pip"] == digests["poetry"] == digests["uv"]


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_a_dependency_without_a_wheel_for_the_target_is_a_clear_error(
    tool: str, project_copy, credentials: Credentials, private_index, dir_tool_cache: Path
):
    path_pyproject = project_copy(tool)
    add_dependency(path_pyproject, "alab-demo-native==1.0.0")
    lock(tool, path_pyproject.parent, private_index, dir_tool_cache)
    with pytest.raises(LayerError) as e:
        build_layer_artifacts_in_local(
            tool=tool,
            path_pyproject_toml=path_pyproject,
            python_version="3.12",
            architecture="arm64",
            credentials=credentials,
            skip_prompt=True,
            verbose=False,
        )
    message = str(e.value)
    assert "alab-demo-native" in message and f"build_layer_artifacts_using_{tool}_in_container" in message
    assert "python3.12 on arm64" in message and credentials.password not in message
    # The same lock for the one target the wheel exists for builds, with the native wheel in it.
    build_layer_artifacts_in_local(
        tool=tool,
        path_pyproject_toml=path_pyproject,
        python_version="3.12",
        architecture="x86_64",
        credentials=credentials,
        skip_prompt=True,
        verbose=False,
    )
    assert installed(path_pyproject) == {**RUNTIME_SET, "alab-demo-native": "1.0.0"}


def test_a_stale_lock_is_refused_before_the_previous_build_is_touched(project_copy, credentials: Credentials):
    path_pyproject = project_copy("uv")
    build_layer_artifacts_using_uv_in_local(
        path_pyproject_toml=path_pyproject, credentials=credentials, skip_prompt=True, verbose=False
    )
    set_pin(path_pyproject, "alab-demo-core", "1.1.0")
    with pytest.raises(ManifestError, match="stale"):
        build_layer_artifacts_using_uv_in_local(
            path_pyproject_toml=path_pyproject, credentials=credentials, skip_prompt=True, verbose=False
        )
    assert installed(path_pyproject) == RUNTIME_SET


def test_poetry_refuses_a_lock_whose_content_hash_is_stale(project_copy, credentials: Credentials):
    path_pyproject = project_copy("poetry")
    text = path_pyproject.read_text()
    path_pyproject.write_text(text.replace('requires-python = ">=3.10,<4.0"', 'requires-python = ">=3.11,<4.0"'))
    with pytest.raises(LayerError, match=r"poetry.lock is stale: poetry says: .*Run `poetry lock`"):
        build_layer_artifacts_using_poetry_in_local(
            path_pyproject_toml=path_pyproject, credentials=credentials, skip_prompt=True, verbose=False
        )


@pytest.mark.parametrize("tool", ["poetry", "uv"])
def test_a_failing_install_names_the_login_and_logs_the_tools_error_without_the_password(
    tool: str, project_copy, private_index
):
    wrong = Credentials(
        index_name="private",
        index_url=private_index.url,
        username=private_index.username,
        password="Wr0ng@pass/" + "x" * 8,
    )
    lines: list[str] = []
    with pytest.raises(LayerError) as e:
        build_layer_artifacts_in_local(
            tool=tool, path_pyproject_toml=project_copy(tool), credentials=wrong, skip_prompt=True, printer=lines.append
        )
    message = str(e.value)
    # One line naming the cause and the index (issue 14); the tool's own error and the command are in the log.
    assert "\n" not in message and "refused the login" in message and "127.0.0.1" in message, message
    log = "\n".join(lines)
    assert "install" in log and re.search(r"(?i)error", log), log  # pip says nothing of the 401: "versions: none"
    for text in (message, "\n".join(lines)):
        assert wrong.password not in text and quote(wrong.password, safe="") not in text


def test_the_users_installer_config_cannot_change_the_layer(
    project_copy, credentials: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A look-alike alab-demo-core 1.0.0 that a user's find-links would offer, with --no-index on.
    dir_pkg = tmp_path / "impostor"
    shutil.copytree(DIR_FIXTURE_PACKAGES / "alab-demo-core-1.0.0", dir_pkg)
    (dir_pkg / "src" / "alab_demo_core" / "__init__.py").write_text("IMPOSTOR = True\n")
    build_wheel(dir_pkg, tmp_path / "wheels")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nno-index = true\nfind-links = {tmp_path / 'wheels'}\n")
    for name, value in {
        "PIP_CONFIG_FILE": str(conf),
        "PIP_FIND_LINKS": str(tmp_path / "wheels"),
        "PIP_NO_INDEX": "1",
        "UV_FIND_LINKS": str(tmp_path / "wheels"),
        "UV_NO_INDEX": "1",
        "UV_INDEX_URL": "http://127.0.0.1:9/simple/",
    }.items():
        monkeypatch.setenv(name, value)
    for tool in ("pip", "uv"):
        path_pyproject = project_copy(tool)
        build_layer_artifacts_in_local(
            tool=tool, path_pyproject_toml=path_pyproject, credentials=credentials, skip_prompt=True, verbose=False
        )
        dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
        assert "IMPOSTOR" not in (dir_python / "alab_demo_core" / "__init__.py").read_text()
    assert conf.read_text().startswith("[global]\nno-index = true")  # the user's file is untouched
