"""`make install` (and so `make demo`/`make test` on a fresh clone) says what it is doing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DIR_REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_fresh_install_announces_each_stage_and_lets_pip_show_progress(tmp_path):
    # A dry run for a virtualenv that does not exist yet: the recipe a fresh clone runs, without minutes of pip.
    result = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}"], cwd=DIR_REPO, capture_output=True, text=True, check=True
    )
    recipe = result.stdout
    assert "==> creating" in recipe and "==> installing the package" in recipe and "is ready" in recipe
    (pip_line,) = [line for line in recipe.splitlines() if " -m pip install " in line]
    assert "--quiet" not in pip_line and " -q" not in pip_line


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_installing_again_shows_progress_without_a_line_per_package_already_there(tmp_path):
    """The install run again (pyproject.toml newer than the stamp) into the virtualenv that has it all."""
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(
        ["make", "install", f"VENV={venv}", f"STAMP={tmp_path / 'stamp'}"],
        cwd=DIR_REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("Requirement already satisfied")], result.stdout[-3000:]
    assert "==> installing the package" in result.stdout and "is ready" in result.stdout
    assert "Successfully installed aws-lambda-artifact-builder" in result.stdout, result.stdout[-3000:]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_failing_install_fails_make_although_its_output_is_filtered(tmp_path):
    (tmp_path / "python").write_text("#!/bin/sh\necho 'Requirement already satisfied: x'\necho boom\nexit 3\n")
    (tmp_path / "python").chmod(0o755)
    result = subprocess.run(
        ["make", "install", f"VENV={tmp_path}", f"PY={tmp_path / 'python'}", f"STAMP={tmp_path / 'stamp'}"],
        cwd=DIR_REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "boom" in result.stdout
    assert "Requirement already satisfied: x" not in result.stdout.splitlines()
    assert not (tmp_path / "stamp").exists()
