"""The rule of ``layer.wheel_record``: which entries of a wheel land outside the layer's ``python/`` tree,
and the install-stage warning read from the wheels ``uv.lock`` names (issue 14, item 10)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerPathLayout, create_layer_zip_file
from aws_lambda_artifact_builder.constants import LayerBuildToolEnum
from aws_lambda_artifact_builder.layer.foundation import BaseLogger, Credentials
from aws_lambda_artifact_builder.layer.install_plan import LockedPin
from aws_lambda_artifact_builder.layer.target import LayerTarget
from aws_lambda_artifact_builder.layer.wheel_record import (
    _open_wheel,
    escapes,
    warn_escaping_entries,
    wheel_escaping_paths,
)
from support.wheels import build_wheel
from test_package import _record_hash as _hash
from test_package import install

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


class _Wheels(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` with byte ranges (``ranges = False``: the whole body, as some servers do)."""

    body = b""
    ranges = True
    seen: list[tuple[str | None, str | None]] = []

    def do_GET(self) -> None:
        self.seen.append((self.headers.get("Range"), self.headers.get("Authorization")))
        data, status, extra = self.body, 200, {}
        spec = self.headers.get("Range", "")
        if self.ranges and spec.startswith("bytes="):
            start, _, end = spec[6:].partition("-")
            first = len(data) - int(end) if not start else int(start)
            last = len(data) - 1 if not start or not end else int(end)
            data, status = data[first : last + 1], 206
            extra["Content-Range"] = f"bytes {first}-{last}/{len(self.body)}"
        self.send_response(status)
        for key, value in {**extra, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("ranges", [True, False])
def test_a_remote_wheel_is_read_by_ranges_and_the_login_goes_to_its_index_host_only(ranges: bool):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # RECORD first, then 200 kB: its bytes are not in the tail
        zf.writestr("big-1.0.dist-info/RECORD", "big/__init__.py,,\n../../etc/x,,\n")
        zf.writestr("big/__init__.py", os.urandom(200_000))
    _Wheels.body, _Wheels.ranges, _Wheels.seen = buffer.getvalue(), ranges, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Wheels)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/packages/big-1.0-py3-none-any.whl"
        ours = Credentials(
            index_name="p", index_url=f"http://127.0.0.1:{server.server_port}/simple/", username="u", password="pw"
        )
        other = Credentials(index_name="p", index_url="http://127.0.0.1:1/simple/", username="u", password="pw")
        with _open_wheel(url, ours) as wheel:
            assert wheel_escaping_paths(wheel) == ["../../etc/x"]
        with _open_wheel(url, other) as wheel:
            assert wheel_escaping_paths(wheel) == ["../../etc/x"]
    finally:
        server.shutdown()
    half = len(_Wheels.seen) // 2
    assert all(auth is not None for _, auth in _Wheels.seen[:half]) and all(a is None for _, a in _Wheels.seen[half:])
    if ranges:  # the tail, then RECORD's own bytes: never the 200 kB member
        assert [r for r, _ in _Wheels.seen[:half]][0] == "bytes=-65536" and 2 <= half <= 3, _Wheels.seen
    else:
        assert half == 1


def test_a_remote_wheel_is_read_once_per_sha256(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    wheel = build_wheel(DIR_ODD, tmp_path / "index")
    _Wheels.body, _Wheels.ranges, _Wheels.seen = wheel.read_bytes(), True, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Wheels)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/packages/{wheel.name}"
        path_lock = tmp_path / "uv.lock"
        path_lock.write_text(
            '[[package]]\nname = "odd-escape"\nversion = "1.0"\nsource = { registry = "idx" }\n'
            f'wheels = [{{ url = "{url}", hash = "sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" }}]\n'
        )
        pins = [LockedPin(name="odd-escape", version="1.0", index_url="idx")]
        found = [
            warn_escaping_entries(
                path_lock,
                pins,
                LayerTarget(python_version="3.12", architecture="x86_64"),
                tool=LayerBuildToolEnum.uv,
                credentials=None,
                logger=BaseLogger(printer=lambda _: None),
            )
            for _ in range(2)
        ]
    finally:
        server.shutdown()
    assert found[0] == found[1] == {"odd-escape 1.0": ["../../etc/odd.conf"]}
    assert len(_Wheels.seen) == 1, _Wheels.seen


def test_a_pip_data_file_is_held_only_with_the_records_hash(tmp_path: Path):
    """pip's RECORD names a ``.data`` file ``../../<rest>`` and moves it to ``python/<rest>``: the package
    stage counts it as held when that file has the RECORD's hash, and warns when it does not."""
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "1"\n')
    py = LayerPathLayout(path_pyproject_toml=path).dir_python
    install(py, "held-lib", "1.0", {"held/__init__.py": b""}, extra_record=[f"../../share/held.txt,{_hash(b'h')},1"])
    install(py, "odd-lib", "1.0", {"odd/__init__.py": b""}, extra_record=[f"../../share/odd.txt,{_hash(b'o')},1"])
    (py / "share").mkdir()
    (py / "share" / "held.txt").write_bytes(b"h")
    (py / "share" / "odd.txt").write_bytes(b"changed")
    lines: list[str] = []
    create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1 and "odd-lib 1.0" in warnings[0] and "../../share/odd.txt" in warnings[0], lines
