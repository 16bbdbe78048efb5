"""Python interpreters on this machine, for uv: it checks a lock only with a Python that the lock's
requires-python allows, and the tests never let it download one."""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet


@functools.lru_cache(maxsize=1)
def installed_pythons() -> dict[str, str]:
    """``{"3.12": "/path/to/python3.12", ...}``: this interpreter, python3.X on PATH, pyenv's versions."""
    found = {f"{sys.version_info.major}.{sys.version_info.minor}": sys.executable}
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 16)]
    candidates += sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3.[0-9]*")))
    for exe in filter(None, candidates):
        if not re.search(r"python3\.\d+$", exe):
            continue
        try:  # a pyenv shim of a version that is not selected exists but does not run
            out = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            found.setdefault(out.stdout.strip(), exe)
    return found


def python_for_lock(path_lock: Path) -> str | None:
    """An interpreter the lock's ``requires-python`` allows: this one if it can, else another; ``None``: none."""
    m = re.search(r'^requires-python\s*=\s*"([^"]*)"', path_lock.read_text(encoding="utf-8"), re.M)
    spec = SpecifierSet(m.group(1) if m else "")
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    versions = sorted(installed_pythons(), key=lambda v: (v != ours, [int(x) for x in v.split(".")]))
    return next((installed_pythons()[v] for v in versions if spec.contains(f"{v}.0", prereleases=True)), None)
