"""The fixture projects lock for real with uv and poetry against the authenticated index."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.projects import lock, make_project


@pytest.mark.parametrize("tool", ["poetry", "uv"])
def test_fixture_project_locks_against_the_private_index(locked_projects: dict[str, Path], private_index, tool: str):
    lock_text = (locked_projects[tool].parent / f"{tool}.lock").read_text()
    assert "alab-demo-core" in lock_text and "alab-demo-devtool" in lock_text
    assert f"127.0.0.1:{private_index.port}" in lock_text
    assert private_index.password not in lock_text


def test_locking_with_a_wrong_password_fails(tmp_path: Path, private_index, dir_tool_cache: Path):
    dest = make_project("uv", tmp_path / "p", private_index, dir_tool_cache, locked=False)
    wrong = type(private_index)(**{**private_index.__dict__, "password": "not-the-password"})
    with pytest.raises(RuntimeError, match="uv lock failed"):
        lock("uv", dest.parent, wrong, tmp_path / "fresh-cache")
