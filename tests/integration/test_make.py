"""`make install` (and so `make demo`/`make test` on a fresh clone) says what it is doing."""

from __future__ import annotations

import shutil
import subprocess
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
