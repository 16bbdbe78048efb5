"""The rule of ``layer.wheel_record``: which entries of a wheel land outside the layer's ``python/`` tree,
and the install-stage warning read from the wheels ``uv.lock`` names (issue 14, item 10)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.constants import LayerBuildToolEnum
from aws_lambda_artifact_builder.layer.foundation import BaseLogger
from aws_lambda_artifact_builder.layer.install_plan import LockedPin
from aws_lambda_artifact_builder.layer.target import LayerTarget
from aws_lambda_artifact_builder.layer.wheel_record import escapes, warn_escaping_entries, wheel_escaping_paths
from support.wheels import build_wheel

DIR_ODD = Path(__file__).resolve().parent.parent / "fixtures" / "escaping" / "odd-escape-1.0"


@pytest.mark.parametrize(
    ("name", "outside"),
    [
        ("pkg/__init__.py", False),
        ("pkg/../pkg/mod.py", False),
        ("pkg-1.0.dist-info/RECORD", False),
        ("pkg-1.0.data/scripts/tool", False),  # pip and uv: python/bin/tool
        ("pkg-1.0.data/data/share/pkg/x.txt", False),  # pip and uv: python/share/pkg/x.txt
        ("pkg-1.0.data/headers/pkg.h", False),
        ("pkg-1.0.data/purelib/pkg/mod.py", False),
        ("", False),
        ("../../etc/odd.conf", True),
        ("../../bin/tool", True),  # an installed RECORD's script path, never a wheel's own entry
        ("/etc/passwd", True),
        ("C:/Windows/x.dll", True),
        ("pkg\\..\\..\\x", True),
        ("pkg/../../x", True),
        ("pkg-1.0.data/data/../../../../etc/x", True),
        ("pkg-1.0.data/scripts/../../x", True),
        ("pkg-1.0.data/../../x", True),
    ],
)
def test_which_wheel_entries_land_outside_python(name: str, outside: bool):
    assert escapes(name) is outside


def test_a_wheel_names_its_escaping_entries_from_record_and_members(tmp_path: Path):
    wheel = build_wheel(DIR_ODD, tmp_path)
    assert wheel_escaping_paths(wheel) == ["../../etc/odd.conf"]
    plain = tmp_path / "plain-1.0-py3-none-any.whl"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("plain/__init__.py", "")
        zf.writestr("plain-1.0.dist-info/RECORD", "plain/__init__.py,,\n/abs/x,,\n")
        zf.writestr("../member-only.txt", "")
    assert wheel_escaping_paths(plain) == ["/abs/x", "../member-only.txt"]


def _uv_lock(tmp_path: Path, wheel: Path) -> Path:
    path = tmp_path / "uv.lock"
    path.write_text(
        'version = 1\n\n[[package]]\nname = "odd-escape"\nversion = "1.0"\nsource = { registry = "idx" }\n'
        f'wheels = [{{ path = "{wheel.relative_to(tmp_path).as_posix()}", hash = "sha256:00" }}]\n'
    )
    return path


@pytest.mark.parametrize("tool", ["uv", "pip"])
def test_only_a_uv_install_warns_from_the_locked_wheel(tool: str, tmp_path: Path):
    path_lock = _uv_lock(tmp_path, build_wheel(DIR_ODD, tmp_path / "index"))
    pins = [LockedPin(name="odd-escape", version="1.0", index_url="idx", hashes=("sha256:00",))]
    lines: list[str] = []
    found = warn_escaping_entries(
        path_lock,
        pins,
        LayerTarget(python_version="3.12", architecture="x86_64"),
        tool=LayerBuildToolEnum(tool),
        credentials=None,
        logger=BaseLogger(printer=lines.append),
    )
    if tool == "pip":  # pip refuses such a wheel: the install fails with its own message
        assert found == {} and lines == []
    else:
        assert found == {"odd-escape 1.0": ["../../etc/odd.conf"]}
        assert len(lines) == 1 and "odd-escape 1.0" in lines[0] and "../../etc/odd.conf" in lines[0]


def test_an_unreadable_wheel_is_skipped_not_a_failure(tmp_path: Path):
    (tmp_path / "index").mkdir()
    broken = tmp_path / "index" / "odd_escape-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    pins = [LockedPin(name="odd-escape", version="1.0", index_url="idx")]
    found = warn_escaping_entries(
        _uv_lock(tmp_path, broken),
        pins,
        LayerTarget(python_version="3.12", architecture="x86_64"),
        tool=LayerBuildToolEnum.uv,
        credentials=None,
        logger=BaseLogger(printer=lambda _: None),
    )
    assert found == {}
