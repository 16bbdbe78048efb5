"""Local sources in a container build (issue 11): a function folder of a uv workspace whose runtime set
holds a pure-Python workspace member (built into a wheel on the host) and a path dependency with
platform-specific code (its wheel is built in the container, for the target). The installed set must
be exactly what ``uv export`` lists for the function.

The platform-specific library declares an extension module but has no C file, so no compiler is needed
(the CI image has none): its wheel is tagged ``cp311-cp311-linux_<cpu>``, which a host build must refuse.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tomllib
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerError, LayerPathLayout, build_layer_artifacts_using_uv_in_local
from aws_lambda_artifact_builder.layer.build_container import (
    build_layer_artifacts_using_uv_in_container,
    close_build_containers,
    detect_container_engine,
)
from aws_lambda_artifact_builder.layer.package import read_distributions
from support.ci import IN_CI
from support.projects import isolated_env, lock, tool_path

PYTHON = os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11")
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]

PURE = '[project]\nname = "shared-lib"\nversion = "0.3.0"\nrequires-python = ">=3.10"\ndependencies = ["alab-demo-extra==1.0.0"]\n'
NATIVE = '[project]\nname = "native-lib"\nversion = "0.2.0"\nrequires-python = ">=3.10"\n'
BACKEND = '\n[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
#: A distribution with (declared) extension modules: its wheel is for one platform.
SETUP_NATIVE = (
    "from setuptools import setup\nfrom setuptools.dist import Distribution\n\n\n"
    "class Binary(Distribution):\n    def has_ext_modules(self):\n        return True\n\n\n"
    "setup(distclass=Binary, packages=['native_lib'])\n"
)


def _need(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _package(folder: Path, pyproject: str, module: str, setup: str | None = None) -> None:
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(f"NAME = {module!r}\n")
    (folder / "pyproject.toml").write_text(pyproject + BACKEND)
    if setup is not None:
        (folder / "setup.py").write_text(setup)


def _monorepo(root: Path, index_url: str) -> Path:
    (root / "functions" / "orders").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "monorepo"\nversion = "0"\nrequires-python = ">=3.10"\n\n'
        '[tool.uv.workspace]\nmembers = ["libs/*", "functions/*"]\n\n'
        f'[[tool.uv.index]]\nname = "private"\nurl = "{index_url}"\n'
    )
    _package(root / "libs" / "shared", PURE, "shared_lib")
    _package(root / "vendor" / "native", NATIVE, "native_lib", SETUP_NATIVE)
    path = root / "functions" / "orders" / "pyproject.toml"
    path.write_text(
        '[project]\nname = "orders"\nversion = "1.0.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["shared-lib", "native-lib", "alab-demo-core==1.0.0"]\n\n'
        '[tool.uv.sources]\nshared-lib = { workspace = true }\nnative-lib = { path = "../../vendor/native" }\n'
    )
    return path


def _uv_export_set(root: Path, dir_cache: Path) -> dict[str, str]:
    """What ``uv export`` lists for the function: name -> version (a local source's from its pyproject)."""
    argv = [tool_path("uv"), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
            "--no-editable", "--no-header", "--no-annotate", "--package", "orders", "--python", PYTHON]  # fmt: skip
    result = subprocess.run(argv, cwd=root, env=isolated_env(dir_cache, {}), capture_output=True, text=True, check=True)
    exported = {}
    for line in result.stdout.splitlines():
        line = line.split(";")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            exported[name] = version
        elif line.startswith("./"):
            project = tomllib.loads((root / line / "pyproject.toml").read_text())["project"]
            exported[project["name"]] = project["version"]
    return exported


def test_workspace_member_and_compiled_path_dependency_build_in_a_container(
    tmp_path, private_index, dir_tool_cache, credentials
):
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not image:
        _need("ALAB_CONTAINER_TEST_IMAGE names no build image (scripts/setup-container-engine.sh makes one)")
    try:
        engine = detect_container_engine()
    except LayerError as e:
        _need(str(e))
    root = tmp_path / "monorepo"
    fn = _monorepo(root, private_index.url)
    lock("uv", root, private_index, dir_tool_cache)
    expected = _uv_export_set(root, dir_tool_cache)
    assert set(expected) == {"alab-demo-core", "alab-demo-extra", "shared-lib", "native-lib"}

    common = dict(
        path_pyproject_toml=fn, python_version=PYTHON, architecture=ARCH, credentials=credentials, verbose=False
    )
    with pytest.raises(LayerError, match="native-lib .* has compiled code"):  # the host cannot make it for Lambda
        build_layer_artifacts_using_uv_in_local(skip_prompt=True, **common)

    lines: list[str] = []
    try:
        build_layer_artifacts_using_uv_in_container(
            image=image,
            container_runtime=engine.runtime,
            dir_cache=tmp_path / "cache",
            **{**common, "verbose": True},
            printer=lines.append,
        )
    finally:
        close_build_containers()
    dir_python = LayerPathLayout(path_pyproject_toml=fn).dir_python
    assert {d.name: d.version for d in read_distributions(dir_python)} == expected
    assert (dir_python / "shared_lib" / "__init__.py").read_text() == "NAME = 'shared_lib'\n"
    (wheel_file,) = dir_python.glob("native_lib-0.2.0.dist-info/WHEEL")
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[ARCH]
    assert f"Tag: cp{PYTHON.replace('.', '')}-cp{PYTHON.replace('.', '')}-linux_{machine}" in wheel_file.read_text()
    assert any("build native-lib from its sources for the target" in line for line in lines), lines
    assert not any("build shared-lib from its sources" in line for line in lines)  # pure: built on the host
