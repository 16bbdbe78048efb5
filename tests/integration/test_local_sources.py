"""Local sources (issue 11): a function folder inside a uv workspace, its workspace member and a
poetry path dependency are built into wheels and installed with the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerTarget, read_local_manifest
from aws_lambda_artifact_builder.layer.build import (
    build_layer_artifacts_using_poetry_in_local,
    build_layer_artifacts_using_uv_in_local,
)
from aws_lambda_artifact_builder.layer.foundation import LayerPathLayout
from support.projects import lock

LIB = """\
[project]
name = "shared-lib"
version = "0.3.0"
requires-python = ">=3.10"
dependencies = ["alab-demo-extra==1.0.0"]

[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"
"""


def _lib(folder: Path) -> None:
    (folder / "shared_lib").mkdir(parents=True)
    (folder / "shared_lib" / "__init__.py").write_text("VALUE = 3\n")
    (folder / "pyproject.toml").write_text(LIB)


def _installed(path_pyproject: Path) -> set[str]:
    dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
    return {p.name.split("-")[0].lower() for p in dir_python.glob("*.dist-info")}


def _uv_workspace(tmp_path: Path, private_index, dir_tool_cache) -> Path:
    """A uv workspace whose function folder depends on its member libs/shared; the function's pyproject.toml."""
    root = tmp_path / "monorepo"
    (root / "functions" / "orders").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "monorepo"\nversion = "0"\nrequires-python = ">=3.10"\n\n'
        '[tool.uv.workspace]\nmembers = ["libs/*", "functions/*"]\n\n'
        f'[[tool.uv.index]]\nname = "private"\nurl = "{private_index.url}"\n'
    )
    _lib(root / "libs" / "shared")
    fn = root / "functions" / "orders" / "pyproject.toml"
    fn.write_text(
        '[project]\nname = "orders"\nversion = "1.0.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["shared-lib", "alab-demo-core==1.0.0"]\n\n'
        "[tool.uv.sources]\nshared-lib = { workspace = true }\n"
    )
    lock("uv", root, private_index, dir_tool_cache)
    return fn


def test_function_folder_in_a_uv_workspace_builds_its_member(tmp_path, private_index, dir_tool_cache, credentials):
    fn = _uv_workspace(tmp_path, private_index, dir_tool_cache)
    root = fn.parent.parent.parent
    manifest = read_local_manifest(fn, "uv", LayerTarget("3.12", "x86_64"))
    assert manifest.path == root / "uv.lock"
    assert manifest.dependencies == {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0", "shared-lib": "0.3.0"}
    (lib,) = [p for p in manifest.runtime_set.packages if p.is_local]
    assert lib.source == "path:libs/shared"

    # A lock body recorded in S3 is read the same way (a scratch copy of the workspace's pyproject files).
    from aws_lambda_artifact_builder.layer.manifest import recorded_runtime_set

    recorded = recorded_runtime_set("uv", (root / "uv.lock").read_text(), fn, LayerTarget("3.12", "x86_64"))
    assert recorded.packages == manifest.runtime_set.packages

    build_layer_artifacts_using_uv_in_local(
        path_pyproject_toml=fn, credentials=credentials, skip_prompt=True, verbose=False
    )
    assert _installed(fn) == {"alab_demo_core", "alab_demo_extra", "shared_lib"}
    assert (
        LayerPathLayout(path_pyproject_toml=fn).dir_python / "shared_lib" / "__init__.py"
    ).read_text() == "VALUE = 3\n"


def _poetry_project(tmp_path: Path, private_index, dir_tool_cache) -> Path:
    """A poetry project with the path dependency ../libs/shared; its pyproject.toml."""
    _lib(tmp_path / "libs" / "shared")
    project = tmp_path / "fn"
    project.mkdir()
    (project / "README.md").write_text("# fn\n")
    path = project / "pyproject.toml"
    path.write_text(
        '[project]\nname = "fn"\nversion = "0.1.0"\nreadme = "README.md"\nrequires-python = ">=3.10,<4.0"\n'
        'dependencies = ["alab-demo-core==1.0.0", "shared-lib"]\n\n'
        f'[[tool.poetry.source]]\nname = "private"\nurl = "{private_index.url}"\npriority = "supplemental"\n\n'
        '[tool.poetry.dependencies]\nshared-lib = { path = "../libs/shared" }\n\n'
        "[tool.poetry]\npackage-mode = false\n"
    )
    lock("poetry", project, private_index, dir_tool_cache)
    return path


def test_poetry_path_dependency_is_built_and_installed(tmp_path, private_index, dir_tool_cache, credentials):
    path = _poetry_project(tmp_path, private_index, dir_tool_cache)
    project = path.parent
    manifest = read_local_manifest(path, "poetry", LayerTarget("3.12", "x86_64"))
    assert manifest.dependencies == {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0", "shared-lib": "0.3.0"}
    from aws_lambda_artifact_builder.layer.manifest import recorded_runtime_set

    recorded = recorded_runtime_set(
        "poetry", (project / "poetry.lock").read_text(), path, LayerTarget("3.12", "x86_64")
    )
    assert recorded.packages == manifest.runtime_set.packages
    build_layer_artifacts_using_poetry_in_local(
        path_pyproject_toml=path, credentials=credentials, skip_prompt=True, verbose=False
    )
    assert _installed(path) == {"alab_demo_core", "alab_demo_extra", "shared_lib"}


@pytest.mark.parametrize("tool", ["uv", "poetry"])
def test_the_code_of_a_local_source_is_part_of_the_fingerprint(tmp_path, private_index, dir_tool_cache, tool):
    """Same version, other code: publishes. A touch, a __pycache__, build output: publishes nothing."""
    from aws_lambda_artifact_builder.layer.inputs import local_fingerprint

    make = _uv_workspace if tool == "uv" else _poetry_project
    path = make(tmp_path, private_index, dir_tool_cache)
    code = next(tmp_path.rglob("libs/shared/shared_lib/__init__.py"))
    before = local_fingerprint(path_pyproject_toml=path, tool=tool)
    assert local_fingerprint(path_pyproject_toml=path, tool=tool) == before  # the repeated read (stat index)

    os.utime(code, (1, 1))
    (code.parent / "__pycache__").mkdir()
    (code.parent / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"\0")
    (code.parent.parent / "build" / "lib").mkdir(parents=True)
    (code.parent.parent / "build" / "lib" / "x.py").write_text("stale build output\n")
    assert local_fingerprint(path_pyproject_toml=path, tool=tool) == before

    code.write_text("VALUE = 4\n")
    changed = local_fingerprint(path_pyproject_toml=path, tool=tool)
    assert changed != before
    manifest = read_local_manifest(path, tool, LayerTarget("3.12", "x86_64"))
    assert manifest.dependencies["shared-lib"] == "0.3.0"  # the version did not move, the code did
    (lib,) = [p for p in manifest.runtime_set.packages if p.is_local]
    assert lib.content and lib.build_from and Path(lib.build_from).resolve() == code.parent.parent.resolve()

    (code.parent / "helpers.py").write_text("")
    assert local_fingerprint(path_pyproject_toml=path, tool=tool) not in (before, changed)
    (code.parent / "helpers.py").unlink()
    code.write_text("VALUE = 3\n")
    assert local_fingerprint(path_pyproject_toml=path, tool=tool) == before


def test_git_dependency_without_a_commit_is_refused_by_a_build(tmp_path):
    from aws_lambda_artifact_builder.api import LayerError
    from aws_lambda_artifact_builder.layer.build import build_local_wheels
    from aws_lambda_artifact_builder.layer.foundation import BaseLogger
    from aws_lambda_artifact_builder.layer.runtime_set import RuntimePackage, _git_source

    source, build_from = _git_source("git+https://tok@example.com/org/lib.git@main")
    assert source == "git+https://example.com/org/lib.git@main" and "tok@" in build_from
    with pytest.raises(LayerError, match="lib 1.0 comes from git .* without a pinned commit"):
        package = RuntimePackage(name="lib", version="1.0", source=source, build_from=build_from)
        build_local_wheels([package], LayerTarget("3.12", "x86_64"), tmp_path, logger=BaseLogger(verbose=False))
    # The commit the lock resolved wins over the tag in the exported URL.
    source, _ = _git_source("git+https://example.com/org/lib.git@v1.0", "a" * 40)
    assert source == "git+https://example.com/org/lib.git@" + "a" * 40
