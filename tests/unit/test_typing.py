"""The package ships ``py.typed``, so its annotations are a promise to users: mypy must accept them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_lambda_artifact_builder

DIR_PACKAGE = Path(aws_lambda_artifact_builder.__file__).parent


def test_package_is_marked_typed():
    assert (DIR_PACKAGE / "py.typed").is_file()


def test_mypy_accepts_the_package(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--cache-dir", str(tmp_path), str(DIR_PACKAGE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
