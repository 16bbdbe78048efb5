"""Two builds of one lock give a byte-identical ``layer.zip``, for every source a lock can name here.

Between the two builds every cache is new and the files the index serves get new modification
times (as when CI recreates a local index): installer bookkeeping that records either (uv's
``uv_cache.json`` for a ``file://`` index) must not reach the zip.

A package the index serves only as an sdist is built into a wheel by each build (with setuptools,
downloaded from PyPI once per session into the index beside it): that wheel's own bytes may differ
between builds (file times), the layer's must not. pip's requirements.txt names no files, so a local
pip build installs wheels only (``--only-binary``) and has no such case; uv and poetry locks list the sdist.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    Credentials,
    build_layer_artifacts_in_container,
    build_layer_artifacts_in_local,
    create_layer_zip_file,
)
from support.ci import IN_CI
from support.projects import isolated_env, lock, make_project, tool_path
from support.servers import PrivateIndex
from support.wheels import build_all_fixture_wheels, build_sdist
from test_local_sources import _poetry_project, _uv_workspace

DIR_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
#: The build backend of the sdist-only fixture package (its [build-system]), as PyPI serves it.
BACKEND = "setuptools==84.2.1"


def _file_simple_index(dir_wheels: Path, dest: Path) -> str:
    """A PEP 503 index in plain files (one folder and index.html per project): a ``file://`` index."""
    for wheel in sorted(dir_wheels.glob("*.whl")):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        folder = dest / project
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, folder / wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        with open(folder / "index.html", "a") as f:
            f.write(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a>\n')
    return dest.as_uri() + "/"


def _uv_project_on_file_index(project_copy, tmp_path: Path, private_index) -> tuple[Path, Path]:
    path = project_copy("uv")
    dir_index = tmp_path / "file-index"
    url = _file_simple_index(private_index.dir_packages, dir_index)
    path.write_text(re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', path.read_text()))
    (path.parent / "uv.lock").unlink()
    result = subprocess.run(
        [tool_path("uv"), "lock"],
        cwd=path.parent,
        env=isolated_env(tmp_path / "lock-cache"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "registry = " in (path.parent / "uv.lock").read_text()
    return path, dir_index


def _build(
    path: Path, tool: str, credentials: Credentials | None, cache: Path, monkeypatch, *, container: bool = False
) -> bytes:
    monkeypatch.setenv("UV_CACHE_DIR", str(cache / "uv"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(cache / "pip"))
    if container:
        build_layer_artifacts_in_container(
            tool=tool,
            path_pyproject_toml=path,
            python_version=os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11"),
            credentials=credentials,
            image=os.environ["ALAB_CONTAINER_TEST_IMAGE"],
            dir_cache=cache / "container",
            verbose=False,
        )
    else:
        build_layer_artifacts_in_local(
            tool=tool, path_pyproject_toml=path, credentials=credentials, skip_prompt=True, verbose=False
        )
    return create_layer_zip_file(path_pyproject_toml=path, verbose=False).path.read_bytes()


def _touch_all(folder: Path) -> None:
    later = time.time() + 5
    for file in folder.rglob("*"):
        os.utime(file, (later, later))


def _local_source(make: Callable[..., Path]) -> Callable[..., tuple[Path, Path | None]]:
    """A project whose lock names a local folder (built into a wheel by every build), with its tree's
    file times changed between the two builds: the wheel built from it must not carry them."""

    def made(project_copy, tmp_path: Path, private_index, dir_tool_cache) -> tuple[Path, Path | None]:
        path = make(tmp_path, private_index, dir_tool_cache)
        return path, None

    return made


SOURCES: dict[str, tuple[str, Callable[..., tuple[Path, Path | None]]]] = {
    "pip from the private index": ("pip", lambda project_copy, *_: (project_copy("pip"), None)),
    "poetry from the private index": ("poetry", lambda project_copy, *_: (project_copy("poetry"), None)),
    "uv from the private index": ("uv", lambda project_copy, *_: (project_copy("uv"), None)),
    "uv from a file:// index": (
        "uv",
        lambda project_copy, tmp, index, _: _uv_project_on_file_index(project_copy, tmp, index),
    ),
    "uv workspace member (local folder)": ("uv", _local_source(_uv_workspace)),
    "poetry path dependency": ("poetry", _local_source(_poetry_project)),
    "uv in a build container": ("uv", lambda project_copy, *_: (project_copy("uv"), None)),
}
#: A lock naming a package its index serves only as an sdist (see the module docstring), per tool.
SDIST_SOURCES = {"uv, a package only as an sdist": "uv", "poetry, a package only as an sdist": "poetry"}
#: Sources whose tree gets new file times between the two builds (a fresh checkout on CI).
LOCAL_TREES = {"uv workspace member (local folder)": "../../libs", "poetry path dependency": "../libs"}


def _backend_wheels(dir_cache: Path) -> list[Path]:
    """The build backend's wheels, downloaded from PyPI once into ``dir_cache``; skipped (CI: failed) offline."""
    if not list(dir_cache.glob("*.whl")):
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dir_cache)]
        env = {**isolated_env(dir_cache), "PIP_INDEX_URL": "https://pypi.org/simple/"}
        result = subprocess.run([*argv, BACKEND], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            reason = f"{BACKEND} could not be downloaded from PyPI: {result.stderr.strip()[-300:]}"
            pytest.fail(f"CI=true but {reason}") if IN_CI else pytest.skip(reason)
    return sorted(dir_cache.glob("*.whl"))


@pytest.fixture(scope="module")
def sdist_index(tmp_path_factory: pytest.TempPathFactory, dir_tool_cache: Path) -> Iterator[PrivateIndex]:
    """A private index serving the fixture wheels, ``alab-demo-sdist`` only as an sdist, and its backend."""
    root = tmp_path_factory.mktemp("sdist-index")
    dir_packages = root / "packages"
    build_all_fixture_wheels(DIR_FIXTURES / "packages", dir_packages)
    build_sdist(DIR_FIXTURES / "sdist-only" / "alab-demo-sdist-1.0.0", dir_packages)
    for wheel in _backend_wheels(dir_tool_cache / "backend-wheels"):
        shutil.copy(wheel, dir_packages / wheel.name)
    index = PrivateIndex.start(dir_packages, root / "state", "sdist-user", "sdist-Pa55@w/rd%")
    try:
        yield index
    finally:
        index.stop()


def _sdist_project(tool: str, tmp_path: Path, index: PrivateIndex, dir_cache: Path) -> tuple[Path, Credentials]:
    """The tool's fixture project with ``alab-demo-sdist`` added, locked against ``index`` (the lock lists
    the sdist and no wheel)."""
    path = make_project(tool, tmp_path / f"project-{tool}", index, dir_cache, locked=False)
    path.write_text(
        path.read_text().replace('"alab-demo-extra==1.0.0",', '"alab-demo-extra==1.0.0", "alab-demo-sdist==1.0.0",')
    )
    lock(tool, path.parent, index, dir_cache)
    assert "alab_demo_sdist-1.0.0.tar.gz" in path.with_name(f"{tool}.lock").read_text()
    return path, Credentials(
        index_name="private", index_url=index.url, username=index.username, password=index.password
    )


@pytest.mark.parametrize("source", [*SOURCES, *SDIST_SOURCES])
def test_two_builds_of_one_lock_give_the_same_zip(
    source, project_copy, tmp_path, private_index, credentials, dir_tool_cache, monkeypatch, request
):
    container = "container" in source
    if container and not os.environ.get("ALAB_CONTAINER_TEST_IMAGE"):
        reason = "ALAB_CONTAINER_TEST_IMAGE names no image (scripts/setup-container-engine.sh prints it)"
        pytest.fail(f"CI=true but {reason}") if IN_CI else pytest.skip(reason)
    dir_index: Path | None = None
    if source in SDIST_SOURCES:
        tool = SDIST_SOURCES[source]
        path, creds = _sdist_project(tool, tmp_path, request.getfixturevalue("sdist_index"), dir_tool_cache)
    else:
        tool, make = SOURCES[source]
        path, dir_index = make(project_copy, tmp_path, private_index, dir_tool_cache)
        creds = credentials if dir_index is None else None
    first = _build(path, tool, creds, tmp_path / "cache-1", monkeypatch, container=container)
    if dir_index is not None:
        _touch_all(dir_index)
    if source in LOCAL_TREES:
        _touch_all((path.parent / LOCAL_TREES[source]).resolve())
    second = _build(path, tool, creds, tmp_path / "cache-2", monkeypatch, container=container)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest(), source
    listed = zipfile.ZipFile(create_layer_zip_file(path_pyproject_toml=path, verbose=False).path).namelist()
    assert any(name.endswith("alab_demo_core/__init__.py") for name in listed)
    assert source not in LOCAL_TREES or any(name.endswith("shared_lib/__init__.py") for name in listed), listed
    assert source not in SDIST_SOURCES or "python/alab_demo_sdist/__init__.py" in listed, listed
    assert not any(re.search(r"\.dist-info/(uv_[^/]*\.json|INSTALLER|REQUESTED|direct_url\.json)$", n) for n in listed)
