"""The fingerprint table of issue 11, on projects locked by the real uv and poetry (and a pip file).

Each row changes a locked fixture project the way a user would (and re-locks it with the real
tool); the fingerprint must move exactly when the runtime set for the target moves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerTarget, read_local_manifest
from aws_lambda_artifact_builder.layer.inputs import local_fingerprint
from support.projects import lock, set_pin

TOOLS = ["pip", "poetry", "uv"]
ARM_ONLY = "alab-demo-native==1.0.0; platform_machine == 'aarch64'"


def _fp(path: Path, tool: str, architecture: str = "x86_64") -> str:
    return local_fingerprint(path_pyproject_toml=path, tool=tool, architecture=architecture)


def _add_dependency(path: Path, tool: str, requirement: str) -> None:
    text = path.read_text()
    path.write_text(text.replace('"alab-demo-extra==1.0.0",', f'"alab-demo-extra==1.0.0",\n    "{requirement}",', 1))
    if tool == "pip":
        name, _, marker = requirement.partition(";")
        req = path.parent / "requirements.txt"
        req.write_text(req.read_text() + f"{name.strip()} ; {marker.strip()}\n")


def _relock(path: Path, tool: str, private_index, dir_tool_cache) -> None:
    lock(tool, path.parent, private_index, dir_tool_cache)


@pytest.fixture()
def relock(private_index, dir_tool_cache):
    return lambda path, tool: _relock(path, tool, private_index, dir_tool_cache)


# ---------------------------------------------------------------------------- what must NOT publish
@pytest.mark.parametrize("tool", TOOLS)
def test_dev_group_change_keeps_the_fingerprint(project_copy, relock, tool):
    path = project_copy(tool)
    before = _fp(path, tool)
    text = path.read_text()
    if tool == "poetry":
        text = text.replace('alab-demo-devtool = "1.0.0"', "")
    else:
        text = text.replace('dev = ["alab-demo-devtool==1.0.0"]', "dev = []")
    assert text != path.read_text()
    path.write_text(text)
    relock(path, tool)
    assert _fp(path, tool) == before


@pytest.mark.parametrize("tool", TOOLS)
def test_comment_order_and_whitespace_keep_the_fingerprint(project_copy, tool):
    path = project_copy(tool)
    manifest = read_local_manifest(path, tool, LayerTarget("3.12", "x86_64")).path
    before = _fp(path, tool)
    text = manifest.read_text()
    if tool == "pip":
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        text = "# reordered\n\n" + "\n".join(f"{ln}   " for ln in reversed(lines)) + "\n\n"
    else:
        text = "# a comment a reviewer added\n" + text.replace("\n", "\r\n") + "\n\n"
    manifest.write_text(text)
    assert _fp(path, tool) == before


@pytest.mark.parametrize("tool", TOOLS)
def test_the_projects_own_version_bump_keeps_the_fingerprint(project_copy, relock, tool):
    path = project_copy(tool)
    before = _fp(path, tool)
    path.write_text(path.read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1))
    relock(path, tool)
    assert _fp(path, tool) == before


@pytest.mark.parametrize("tool", TOOLS)
def test_change_of_a_package_whose_marker_excludes_the_target_keeps_the_fingerprint(project_copy, relock, tool):
    path = project_copy(tool)
    _add_dependency(path, tool, ARM_ONLY)
    relock(path, tool)
    x86, arm = _fp(path, tool), _fp(path, tool, "arm64")
    arm_set = read_local_manifest(path, tool, LayerTarget("3.12", "arm64")).dependencies
    assert arm_set.get("alab-demo-native") == "1.0.0"
    path.write_text(path.read_text().replace(f'    "{ARM_ONLY}",\n', ""))
    if tool == "pip":
        req = path.parent / "requirements.txt"
        req.write_text("".join(ln for ln in req.read_text().splitlines(True) if "native" not in ln))
    relock(path, tool)
    assert _fp(path, tool) == x86
    assert _fp(path, tool, "arm64") != arm


# ---------------------------------------------------------------------------- what must publish
@pytest.mark.parametrize("tool", TOOLS)
def test_changed_runtime_pin_changes_the_fingerprint(project_copy, relock, tool):
    path = project_copy(tool)
    before = _fp(path, tool)
    set_pin(path, "alab-demo-core", "1.1.0")
    relock(path, tool)
    assert read_local_manifest(path, tool, LayerTarget("3.12", "x86_64")).dependencies["alab-demo-core"] == "1.1.0"
    assert _fp(path, tool) != before


@pytest.mark.parametrize("tool", TOOLS)
def test_changed_hash_changes_the_fingerprint(project_copy, tool):
    path = project_copy(tool)
    before = _fp(path, tool)
    if tool == "pip":
        req = path.parent / "requirements.txt"
        req.write_text(
            "".join(
                ln.rstrip("\n") + f" --hash=sha256:{'ab' * 32}\n" if "==" in ln else ln
                for ln in req.read_text().splitlines(True)
            )
        )
    else:
        manifest = read_local_manifest(path, tool, LayerTarget("3.12", "x86_64")).path
        text = manifest.read_text()
        new, count = re.subn(r"sha256:[0-9a-f]{64}", "sha256:" + "cd" * 32, text, count=1)
        assert count == 1
        manifest.write_text(new)
    assert _fp(path, tool) != before


@pytest.mark.parametrize("tool", TOOLS)
def test_changed_source_changes_the_fingerprint(project_copy, relock, private_index, tool):
    path = project_copy(tool)
    before = _fp(path, tool)
    other = private_index.url.replace("127.0.0.1", "localhost")
    if tool == "pip":
        req = path.parent / "requirements.txt"
        req.write_text(f"--index-url {other}\n" + req.read_text())
    else:
        path.write_text(path.read_text().replace(private_index.url, other))
        relock(path, tool)
    assert _fp(path, tool) != before
