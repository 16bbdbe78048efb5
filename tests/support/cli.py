"""The ``alab`` console script run as a user runs it, and a project configured for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ALAB = Path(sys.executable).parent / "alab"


def alab(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``alab ARGS`` as a process (the module when the console script is not installed)."""
    command = [str(ALAB)] if ALAB.exists() else [sys.executable, "-m", "aws_lambda_artifact_builder"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env or dict(os.environ), cwd=cwd, timeout=300
    )


def configure(path: Path, *, layer_name: str, s3dir: str, credentials: Any) -> Path:
    """Append the tool's configuration table to a project's pyproject.toml (the private index's login
    name and URL; the password stays in ``ALAB_INDEX_PASSWORD``)."""
    path.write_text(
        path.read_text()
        + f"""
[tool.aws_lambda_artifact_builder]
layer_name = "{layer_name}"
s3dir_lambda = "{s3dir}"
python_version = "3.12"
index_name = "private"
index_url = "{credentials.index_url}"
index_username = "{credentials.username}"
"""
    )
    return path
