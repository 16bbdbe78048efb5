"""The digest of a local source's files (issue 11): code changes count, checkouts, touches, caches
and build output do not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from aws_lambda_artifact_builder.layer.source_tree import source_tree_digest, tree_signature


def _lib(folder: Path) -> Path:
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "__init__.py").write_text("VALUE = 3\n")
    (folder / "lib" / "build").mkdir()  # a subpackage called build is code
    (folder / "lib" / "build" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text('[project]\nname = "lib"\nversion = "1"\n')
    return folder


def test_a_code_change_changes_the_digest(tmp_path):
    folder = _lib(tmp_path / "lib")
    before = source_tree_digest(folder)
    (folder / "lib" / "__init__.py").write_text("VALUE = 4\n")
    assert source_tree_digest(folder) != before
    (folder / "lib" / "__init__.py").write_text("VALUE = 3\n")
    assert source_tree_digest(folder) == before
    (folder / "lib" / "build" / "__init__.py").write_text("X = 1\n")
    assert source_tree_digest(folder) != before


def test_added_or_renamed_files_and_the_executable_bit_change_the_digest(tmp_path):
    folder = _lib(tmp_path / "lib")
    before = source_tree_digest(folder)
    (folder / "lib" / "extra.py").write_text("")
    added = source_tree_digest(folder)
    assert added != before
    (folder / "lib" / "extra.py").rename(folder / "lib" / "other.py")
    assert source_tree_digest(folder) not in (before, added)
    (folder / "lib" / "other.py").unlink()
    os.chmod(folder / "lib" / "__init__.py", 0o755)
    assert source_tree_digest(folder) != before


def test_touch_caches_vcs_and_build_output_keep_the_digest(tmp_path):
    folder = _lib(tmp_path / "lib")
    before = source_tree_digest(folder)
    signature = tree_signature(folder)
    os.utime(folder / "lib" / "__init__.py", (1, 1))
    assert tree_signature(folder) != signature  # a touch is seen by stat, and the contents decide
    assert source_tree_digest(folder) == before
    for junk in (
        "lib/__pycache__/x.cpython-312.pyc",
        ".git/HEAD",
        "lib.egg-info/PKG-INFO",
        "build/lambda/x.json",
        "dist/lib-1.whl",
        ".venv/bin/python",
        "node_modules/x/index.js",
        "lib/stray.pyc",
    ):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("anything")
    assert source_tree_digest(folder) == before


def test_the_same_tree_elsewhere_has_the_same_digest(tmp_path):
    folder = _lib(tmp_path / "a" / "lib")
    shutil.copytree(folder, tmp_path / "b" / "elsewhere")
    assert source_tree_digest(tmp_path / "b" / "elsewhere") == source_tree_digest(folder)
