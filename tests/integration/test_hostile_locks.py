"""Hostile or broken lock input (issue 14, item 6): each is a one-line ``ManifestError`` naming the
file, never an uncaught exception; the lock is read by the real uv and poetry."""

from __future__ import annotations

import re

import pytest
from aws_lambda_artifact_builder.api import LayerTarget, ManifestError, read_local_manifest

T = LayerTarget("3.12", "x86_64")


def _first(pattern: str, text: str) -> re.Match[str]:
    m = re.search(pattern, text, re.M)
    assert m is not None, pattern
    return m


UV_CASES = {
    "invalid utf-8": lambda t: t.encode() + b"\n# \xff\xfe\n",
    "missing name": lambda t: t.replace('name = "alab-demo-core"\n', "", 1),
    "missing version": lambda t: t.replace('version = "1.0.0"\n', "", 1),
    "table where a string belongs": lambda t: t.replace('name = "alab-demo-core"', "name = { a = 1 }", 1),
    "bad marker": lambda t: t.replace(
        "[[package]]", "[[package]]\nresolution-markers = [\"python_version <<< '3'\"]", 1
    ),
    "unicode name": lambda t: t.replace('"alab-demo-extra"', '"alab-démo-extra"'),
    "not toml": lambda t: "[[package]\n" + t,
}


@pytest.mark.parametrize("case", sorted(UV_CASES))
def test_broken_uv_lock_is_a_one_line_error_naming_the_file(project_copy, case):
    path = project_copy("uv")
    lock = path.parent / "uv.lock"
    broken = UV_CASES[case](lock.read_text())
    lock.write_bytes(broken if isinstance(broken, bytes) else broken.encode())
    with pytest.raises(ManifestError) as info:
        read_local_manifest(path, "uv", T)
    message = str(info.value)
    assert "uv.lock" in message and "\n" not in message.strip(), message


@pytest.mark.parametrize(
    ("where", "edit"),
    [
        ("pyproject.toml", lambda t: t.replace('"alab-demo-core==1.0.0"', '"alab-demo-core==^abc"')),
        ("pyproject.toml", lambda t: t.replace('"alab-demo-core==1.0.0"', '"alab-demo-core; python_version <<< 3"')),
        ("poetry.lock", lambda t: t.replace('version = "1.0.0"', "version = { x = 1 }", 1)),
        ("poetry.lock", lambda t: "\ufffe[[package]\n" + t),
    ],
)
def test_broken_poetry_project_is_a_one_line_error_naming_the_file(project_copy, where, edit):
    path = project_copy("poetry")
    target = path.parent / where
    target.write_text(edit(target.read_text()))
    with pytest.raises(ManifestError) as info:
        read_local_manifest(path, "poetry", T)
    message = str(info.value)
    assert "poetry.lock" in message and "\n" not in message.strip(), message
