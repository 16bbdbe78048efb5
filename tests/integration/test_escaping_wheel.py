"""A real wheel whose RECORD lists a file outside the install tree (``../../etc/odd.conf``, built from
``tests/fixtures/escaping/odd-escape-1.0`` by ``support.wheels``), installed through the real build
(issue 14, item 10).

- uv installs the rest and drops the file and its RECORD line, so only the wheel's own RECORD tells:
  the install stage reads it (``layer.wheel_record``) and logs one WARNING naming the distribution and
  the path, from a ``file://`` index (a local file) and from a private HTTP index behind a login (range
  requests for the RECORD). The wheel's ``.data/scripts`` and ``.data/data`` entries land inside
  ``python/`` and are not warned about.
- pip (for pip and poetry locks) refuses the wheel: the build fails with pip's message naming the
  distribution and the path.
- A wheel with ``.data`` entries only (``odd-data``: a header, a data file, a script) installs inside
  ``python/`` with every installer, and no stage warns about it (pip's RECORD names them ``../../``).
"""

from __future__ import annotations

import logging
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import Credentials, build_layer_artifacts_in_local, create_layer_zip_file
from aws_lambda_artifact_builder.errors import BuildError
from support.projects import isolated_env, lock, make_project, tool_path
from support.servers import PrivateIndex
from support.wheels import build_wheel
from test_reproducible_sources import _file_simple_index

ESCAPING = "../../etc/odd.conf"
INDEX_USERNAME, INDEX_PASSWORD = "odd-user", "odd-Pa55@w/rd%"
DIR_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "escaping"
DIR_PACKAGE = DIR_FIXTURES / "odd-escape-1.0"


@pytest.fixture(scope="module")
def odd_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    """A private index (login required) that serves only ``odd-escape 1.0`` and ``odd-data 1.0``."""
    root = tmp_path_factory.mktemp("odd-index")
    build_wheel(DIR_PACKAGE, root / "packages")
    build_wheel(DIR_FIXTURES / "odd-data-1.0", root / "packages")
    index = PrivateIndex.start(root / "packages", root / "state", INDEX_USERNAME, INDEX_PASSWORD)
    try:
        yield index
    finally:
        index.stop()


def _credentials(index: PrivateIndex) -> Credentials:
    return Credentials(index_name="private", index_url=index.url, username=index.username, password=index.password)


def _odd_project(tool: str, dest: Path, index: PrivateIndex, dir_cache: Path, pin: str = "odd-escape==1.0") -> Path:
    """The tool's fixture project depending on ``pin`` only, locked against ``index``."""
    path = make_project(tool, dest, index, dir_cache, locked=False)
    text = re.sub(r"dependencies = \[[^\]]*\]", f'dependencies = ["{pin}"]', path.read_text(), count=1)
    text = re.sub(r"\[dependency-groups\]\n[^\n]*\n", "", text)
    path.write_text(re.sub(r"\[tool\.poetry\.group\.dev\.dependencies\]\n[^\n]*\n", "", text))
    if tool == "pip":
        (dest / "requirements.txt").write_text(f"{pin}\n")
    lock(tool, dest, index, dir_cache)
    return path


def _uv_on_file_index(tmp_path: Path) -> Path:
    path = make_project("uv", tmp_path / "project", _NoIndex(), tmp_path / "lock-cache", locked=False)
    url = _file_simple_index(build_wheel(DIR_PACKAGE, tmp_path / "wheels").parent, tmp_path / "file-index")
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', path.read_text())
    text = re.sub(r"dependencies = \[[^\]]*\]", 'dependencies = ["odd-escape==1.0"]', text, count=1)
    path.write_text(re.sub(r"\[dependency-groups\]\n[^\n]*\n", "", text))
    env = isolated_env(tmp_path / "lock-cache")
    result = subprocess.run([tool_path("uv"), "lock"], cwd=path.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return path


class _NoIndex:
    """``make_project`` writes the index URL into the template; a ``file://`` one replaces it."""

    url = "file:///nowhere/"


def _build(path: Path, tool: str, credentials: Credentials | None, tmp_path: Path, monkeypatch) -> list[str]:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "cache" / "uv"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "cache" / "pip"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache" / "xdg"))  # the RECORD check's cache
    lines: list[str] = []
    build_layer_artifacts_in_local(
        tool=tool, path_pyproject_toml=path, credentials=credentials, skip_prompt=True, printer=lines.append
    )
    return lines


@pytest.mark.parametrize("where", ["file:// index", "private HTTP index"])
def test_uv_drops_a_wheel_entry_outside_the_tree_and_the_install_stage_warns(
    where, odd_index, tmp_path: Path, monkeypatch, caplog
):
    if where == "file:// index":
        path, credentials = _uv_on_file_index(tmp_path), None
    else:
        path = _odd_project("uv", tmp_path / "project", odd_index, tmp_path / "lock-cache")
        credentials = _credentials(odd_index)
    caplog.set_level(logging.WARNING, logger="aws_lambda_artifact_builder")
    lines = _build(path, "uv", credentials, tmp_path, monkeypatch)
    lines += [f"[package] {line}" for line in _package(path)]
    listed = zipfile.ZipFile(create_layer_zip_file(path_pyproject_toml=path, verbose=False).path).namelist()
    assert "python/odd_escape/__init__.py" in listed and "python/share/odd/readme.txt" in listed, listed
    assert not any("odd.conf" in name for name in listed), listed
    warnings = [line for line in lines if "warning" in line.lower()]
    assert len(warnings) == 1 and "odd-escape 1.0" in warnings[0] and ESCAPING in warnings[0], lines
    assert "oddtool" not in warnings[0] and "readme.txt" not in warnings[0]
    records = [r for r in caplog.records if r.levelno == logging.WARNING and ESCAPING in r.getMessage()]
    assert len(records) == 1 and records[0].name.startswith("aws_lambda_artifact_builder."), caplog.records


def _package(path: Path) -> list[str]:
    lines: list[str] = []
    create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    return lines


@pytest.mark.parametrize("tool", ["pip", "poetry"])
def test_pip_refuses_a_wheel_entry_outside_the_tree_and_the_build_fails_naming_it(
    tool, odd_index, tmp_path: Path, monkeypatch
):
    path = _odd_project(tool, tmp_path / "project", odd_index, tmp_path / "lock-cache")
    with pytest.raises(BuildError) as raised:
        _build(path, tool, _credentials(odd_index), tmp_path, monkeypatch)
    message = str(raised.value)
    assert "odd-escape==1.0" in message and ESCAPING in message and "outside the target directory" in message
    assert INDEX_PASSWORD not in message


@pytest.mark.parametrize("tool", ["uv", "pip", "poetry"])
def test_data_headers_and_scripts_of_a_wheel_land_inside_python_without_a_warning(
    tool, odd_index, tmp_path: Path, monkeypatch
):
    path = _odd_project(tool, tmp_path / "project", odd_index, tmp_path / "lock-cache", pin="odd-data==1.0")
    lines = _build(path, tool, _credentials(odd_index), tmp_path, monkeypatch) + _package(path)
    listed = zipfile.ZipFile(create_layer_zip_file(path_pyproject_toml=path, verbose=False).path).namelist()
    assert "python/share/odd-data/readme.txt" in listed, listed
    assert any(name.startswith("python/include/") and name.endswith("/odd_data.h") for name in listed), listed
    assert not [line for line in lines if "warning" in line.lower()], lines
