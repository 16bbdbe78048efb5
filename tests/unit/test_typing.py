"""The package ships ``py.typed``, so its annotations are a promise to users: ``mypy --strict`` must accept
them, with the boto3 stubs present (without them every S3 and Lambda call is ``Any`` and checks nothing).
``ruff check`` and ``ruff format --check`` (configured in pyproject.toml) run here too, so ``make test``
enforces all three.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import aws_lambda_artifact_builder

DIR_PACKAGE = Path(aws_lambda_artifact_builder.__file__).parent
DIR_ROOT = DIR_PACKAGE.parent.parent


def test_package_is_marked_typed():
    assert (DIR_PACKAGE / "py.typed").is_file()


def test_the_boto3_stubs_are_installed():
    """Otherwise the mypy test below passes only because the client types are unknown."""
    for module in ("mypy_boto3_s3", "mypy_boto3_lambda"):
        assert importlib.util.find_spec(module) is not None, f"{module} missing: pip install -e '.[test]'"


def test_mypy_strict_accepts_the_package(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(DIR_ROOT / "pyproject.toml"),
            "--strict",
            "--cache-dir",
            str(tmp_path),
            str(DIR_PACKAGE),
        ],
        capture_output=True,
        text=True,
        cwd=DIR_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_passes():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "provider", "tests", "benchmarks", "scripts", "examples"],
        capture_output=True,
        text=True,
        cwd=DIR_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "provider", "tests", "benchmarks", "scripts", "examples"],
        capture_output=True,
        text=True,
        cwd=DIR_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
