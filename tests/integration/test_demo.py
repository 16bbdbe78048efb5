"""`make demo` works: the script behind it runs end to end against its own loopback servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parents[2]


def test_the_demo_publishes_two_versions_and_skips_the_unchanged_deploy():
    result = subprocess.run(
        [sys.executable, str(DIR_REPO / "examples" / "demo.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    assert "Published: sample-app-deps version 1" in out
    assert "Unchanged: sample-app-deps version 1" in out
    assert "~ alab-demo-core 1.0.0 -> 1.1.0" in out
    assert "Published: sample-app-deps version 2" in out
    assert "Lambda layer sample-app-deps: versions [1, 2]" in out
    assert "Stopped the local AWS endpoint and the index." in out
