"""Fixture projects for each tool, locked at test time against the private index.

Lock files record the index URL (and so its port), so they are generated per test
session instead of being committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .servers import PrivateIndex

DIR_TEMPLATES = Path(__file__).resolve().parent.parent / "fixtures" / "projects"


def tool_path(name: str) -> str:
    """The tool installed next to the test interpreter (``.venv/bin/uv``), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; `make test` installs it with the test extras")
    return found


def isolated_env(dir_cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool run by the tests: no user configuration of pip, uv or poetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "POETRY_"))}
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "UV_CACHE_DIR": str(dir_cache / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "POETRY_CONFIG_DIR": str(dir_cache / "poetry-config"),
            "POETRY_CACHE_DIR": str(dir_cache / "poetry-cache"),
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        }
    )
    env.update(extra or {})
    return env


def set_pin(path_pyproject: Path, name: str, version: str) -> None:
    """Change ``name==X`` to ``name==version`` in a project's pyproject.toml and requirements.txt."""
    for path in (path_pyproject, path_pyproject.parent / "requirements.txt"):
        if path.exists():
            text = re.sub(rf"{re.escape(name)}==[0-9][^\"\s,]*", f"{name}=={version}", path.read_text())
            path.write_text(text)


def lock(tool: str, dir_project: Path, index: PrivateIndex, dir_cache: Path) -> None:
    """Lock a project with the real tool, authenticating against the private index through env vars."""
    if tool == "pip":
        return
    if tool == "uv":
        cmd = [tool_path("uv"), "lock"]
        env = isolated_env(
            dir_cache, {"UV_INDEX_PRIVATE_USERNAME": index.username, "UV_INDEX_PRIVATE_PASSWORD": index.password}
        )
    else:
        cmd = [tool_path("poetry"), "lock", "--no-interaction"]
        env = isolated_env(
            dir_cache,
            {
                "POETRY_HTTP_BASIC_PRIVATE_USERNAME": index.username,
                "POETRY_HTTP_BASIC_PRIVATE_PASSWORD": index.password,
            },
        )
    result = subprocess.run(cmd, cwd=dir_project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {dir_project}:\n{result.stdout}\n{result.stderr}")


def make_project(tool: str, dest: Path, index: PrivateIndex, dir_cache: Path, *, locked: bool = True) -> Path:
    """Copy the tool's fixture project to ``dest``, point it at the index, lock it; return its pyproject.toml."""
    shutil.copytree(DIR_TEMPLATES / tool, dest)
    path_pyproject = dest / "pyproject.toml"
    path_pyproject.write_text(path_pyproject.read_text().replace("{INDEX_URL}", index.url))
    if locked:
        lock(tool, dest, index, dir_cache)
    return path_pyproject
