"""The contents of a local source (path dependency, workspace member) as the fingerprint sees them.

A local source keeps its version while its code changes, so its name, version and path say
nothing about what the layer installs: the fingerprint takes a digest of its files. Which files
a build backend puts into the wheel is the backend's business (and running it costs a build), so
the digest covers the source tree minus what never goes into a wheel and changes without an
edit: VCS folders, caches, virtualenvs, bytecode, and a project's ``build``/``dist`` output.
Paths are sorted and relative (POSIX), contents hashed, so a checkout elsewhere, a touched mtime
or a fresh ``__pycache__`` give the same digest.

``tree_signature`` is the cheap check (``stat`` only) that decides whether the digest must be
computed again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

#: Folders skipped anywhere in the tree.
SKIPPED_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".eggs",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "node_modules",
    }
)
#: Folders skipped next to a project file (a project's build output, e.g. ``build/lambda``).
OUTPUT_DIRS: frozenset[str] = frozenset({"build", "dist"})
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_SKIPPED_FILES = frozenset({".DS_Store"})


def _skip_dir(name: str, files: list[str]) -> bool:
    if name in SKIPPED_DIRS or name.endswith(".egg-info"):
        return True
    return name in OUTPUT_DIRS and any(f in files for f in _PROJECT_FILES)


def iter_source_files(folder: Path) -> Iterator[tuple[str, str]]:
    """``(relative POSIX path, absolute path)`` of each file of the tree, sorted by relative path."""
    found: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _skip_dir(d, files)]
        rel_root = os.path.relpath(root, folder)
        for name in files:
            if name in _SKIPPED_FILES or name.endswith(_SKIPPED_SUFFIXES):
                continue
            rel = name if rel_root == "." else f"{rel_root}/{name}".replace(os.sep, "/")
            found.append((rel, os.path.join(root, name)))
    yield from sorted(found)


def tree_signature(folder: Path) -> str:
    """What ``stat`` says of every file of the tree: changes with any edit (and with a mere touch)."""
    h = hashlib.sha256()
    for rel, path in iter_source_files(folder):
        try:
            st = os.stat(path)
        except OSError:
            continue
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_mode}\n".encode())
    return h.hexdigest()


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_tree_digest(folder: Path) -> str:
    """sha256 over each file's relative path, executable bit and contents, in path order."""
    h = hashlib.sha256()
    for rel, path in iter_source_files(folder):
        try:
            content = _file_sha256(path)
            executable = os.access(path, os.X_OK)
        except OSError:
            continue  # a dangling link or a file removed while walking installs nothing
        h.update(f"{rel}\0{int(executable)}\0{content}\n".encode())
    return h.hexdigest()
