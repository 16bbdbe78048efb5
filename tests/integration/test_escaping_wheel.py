"""A real wheel whose RECORD lists a file outside the install tree (``../../etc/odd.conf``), installed by
uv from a ``file://`` index through the real build: uv drops the entry, and packaging must warn about it
(issue 14, item 10) instead of letting the file vanish silently.

Found here: uv (0.13.9) drops the file *and* its line from the RECORD it writes, so the packaging check,
which reads the installed RECORD (and passes the synthetic test in tests/unit/test_hardening_minor.py),
never sees it. Telling needs the wheel's own RECORD (e.g. read from ``file://`` and cached wheels
before the install); until then this test is an expected failure, strict, so it reports the fix.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import build_layer_artifacts_in_local, create_layer_zip_file
from support.projects import isolated_env, tool_path
from test_reproducible_sources import _file_simple_index

ESCAPING = "../../etc/odd.conf"


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def escaping_wheel(dir_out: Path) -> Path:
    """``odd_escape 1.0`` with a package, and a file its RECORD places two folders above site-packages."""
    files = {
        "odd_escape/__init__.py": b"VALUE = 1\n",
        ESCAPING: b"odd = 1\n",
        "odd_escape-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: odd-escape\nVersion: 1.0\n",
        "odd_escape-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},{_hash(data)},{len(data)}\n" for name, data in files.items())
    record += "odd_escape-1.0.dist-info/RECORD,,\n"
    dir_out.mkdir(parents=True, exist_ok=True)
    path = dir_out / "odd_escape-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("odd_escape-1.0.dist-info/RECORD", record)
    return path


@pytest.mark.xfail(strict=True, reason="uv rewrites RECORD without the escaping entry: nothing left to warn about")
def test_a_wheel_entry_outside_the_tree_is_warned_about_in_a_real_uv_build(project_copy, tmp_path: Path):
    path = project_copy("uv")
    dir_wheels = tmp_path / "wheels"
    escaping_wheel(dir_wheels)
    url = _file_simple_index(dir_wheels, tmp_path / "file-index")
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', path.read_text())
    text = re.sub(r"dependencies = \[[^\]]*\]", 'dependencies = ["odd-escape==1.0"]', text, count=1)
    path.write_text(re.sub(r"\[dependency-groups\]\n[^\n]*\n", "", text))
    (path.parent / "uv.lock").unlink()
    env = isolated_env(tmp_path / "lock-cache")
    result = subprocess.run([tool_path("uv"), "lock"], cwd=path.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines: list[str] = []
    build_layer_artifacts_in_local(tool="uv", path_pyproject_toml=path, skip_prompt=True, printer=lines.append)
    info = create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    listed = zipfile.ZipFile(info.path).namelist()
    assert any(name.endswith("odd_escape/__init__.py") for name in listed), listed
    assert not any("odd.conf" in name for name in listed), listed
    warnings = [line for line in lines if "warning" in line.lower() and ESCAPING in line]
    assert len(warnings) == 1 and "odd-escape 1.0" in warnings[0], lines
