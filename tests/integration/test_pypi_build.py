"""A compiled dependency from real PyPI, built on this x86_64 host for both Lambda architectures."""

from __future__ import annotations

import subprocess
import urllib.request
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import build_layer_artifacts_in_local, create_layer_zip_file
from support.ci import IN_CI
from support.projects import isolated_env, tool_path

ORJSON = "orjson==3.10.18"
#: ELF ``e_machine`` of each Lambda architecture.
ELF_MACHINE = {"x86_64": 62, "arm64": 183}


@pytest.fixture(scope="module")
def pypi_reachable() -> None:
    try:
        urllib.request.urlopen("https://pypi.org/simple/orjson/", timeout=20).close()
    except OSError as e:
        if IN_CI:
            raise
        pytest.skip(f"PyPI is not reachable from this machine: {e}")


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF" and data[5] == 1, "not a little-endian ELF file"
    return int.from_bytes(data[18:20], "little")


def make_pypi_project(tool: str, dest: Path, dir_cache: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "pyproject.toml").write_text(
        f'[project]\nname = "pypi-app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["{ORJSON}"]\n'
    )
    if tool == "pip":
        (dest / "requirements.txt").write_text(ORJSON + "\n")
    else:
        subprocess.run(
            [tool_path("uv"), "lock"], cwd=dest, env=isolated_env(dir_cache), check=True, capture_output=True
        )
    return dest / "pyproject.toml"


@pytest.mark.parametrize(("tool", "architecture"), [("pip", "arm64"), ("pip", "x86_64"), ("uv", "arm64")])
def test_compiled_wheel_matches_the_target_architecture(
    pypi_reachable: None, tool: str, architecture: str, tmp_path: Path, dir_tool_cache: Path
):
    path_pyproject = make_pypi_project(tool, tmp_path / "app", dir_tool_cache)
    build_layer_artifacts_in_local(
        tool=tool,
        path_pyproject_toml=path_pyproject,
        python_version="3.12",
        architecture=architecture,
        skip_prompt=True,
        verbose=False,
    )
    info = create_layer_zip_file(path_pyproject_toml=path_pyproject, verbose=False)
    with zipfile.ZipFile(info.path) as zf:
        shared = [zi for zi in zf.infolist() if zi.filename.endswith(".so")]
        assert shared, zf.namelist()
        for zi in shared:
            assert zi.filename.startswith("python/orjson/") and ".cpython-312-" in zi.filename
            assert elf_machine(zf.read(zi)) == ELF_MACHINE[architecture], zi.filename
            assert zi.external_attr >> 16 == 0o100755
