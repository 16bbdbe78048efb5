"""Files a wheel declares outside the layer's ``python/`` tree: named on the install stage, not lost silently.

What the installers do with such a wheel (measured with pip 26.3 and uv 0.13.9, ``install --target``):

- **pip** refuses it: ``... has a file '.../lib/python/../../etc/odd.conf' trying to install outside the
  target directory`` (and ``Unknown scheme key`` for a ``.data/<key>/`` entry that leaves its folder); the
  build fails with that message, so nothing is left to warn about.
- **uv** installs the rest and drops the file *and its RECORD line*, both in the installed tree and in
  its cache's unpacked copy of the wheel; the package stage, which reads the installed RECORD, never
  sees it. Only the wheel's own RECORD tells, so for a uv install this module reads it from the wheel
  the lock names (``uv.lock``'s ``wheels``: a local file, a ``file://`` URL, or a few HTTP range
  requests for the zip's central directory and RECORD; the login only for the credentials' host), or
  from the wheel a build made (``LockedPin.path``). A remote wheel's answer is kept by the sha256 the lock
  gives it (``cache_dir()``): measured from here against PyPI, 55-60 wheels cost 6-8 s on the first
  build (1-3 requests each, 8 at a time) and nothing after.

The rule, for every RECORD path and zip member name: it lands inside ``python/`` when it is relative
(no leading ``/``, no drive, ``\\`` read as ``/``) and its normal form does not start with ``..``. A
``<name>.data/<key>/<path>`` entry with a scheme key (``purelib``, ``platlib``, ``scripts``, ``data``,
``headers``) is installed below that scheme's folder, which for a ``--target`` install both pip and uv
put inside ``python/`` (``bin/``, the root, ``include/...``), so only its ``<path>`` must not leave it.
An installed RECORD's ``../../bin/<script>`` (pip writes scripts relative to its temporary lib folder)
never occurs in a wheel's own RECORD: there it is an escaping entry like any other.

``csv`` reads RECORD (its format is CSV by the wheel spec), ``zipfile`` the wheel; nothing else is parsed.
The check is advisory: a wheel (or lock) that cannot be read is logged at ``DEBUG`` and skipped, never a failure.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import http.client
import io
import json
import os
import posixpath
import re
import threading
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..constants import LayerBuildToolEnum
from .foundation import BaseLogger, Credentials
from .install_plan import LockedPin, installer_for, target_tags
from .target import LayerTarget

#: The ``.data/<key>/`` folders a wheel may use (the wheel spec's install scheme keys).
DATA_SCHEME_KEYS = frozenset({"purelib", "platlib", "scripts", "data", "headers"})
#: How many wheels are read at once (each read is a few small HTTP requests).
PARALLEL_READS = 8
#: The end of a wheel read first: its central directory and, for most wheels, RECORD (one request).
TAIL_BYTES = 1 << 16
#: Seconds an index may take to answer one request before the wheel is skipped.
TIMEOUT = 30
_RECORD_NAME = re.compile(r"[^/]+\.dist-info/RECORD")


def _leaves(path: str) -> bool:
    """A relative path (``/`` separated) that leaves the folder it is relative to."""
    path = path.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return True
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../")


def escapes(name: str) -> bool:
    """Whether a wheel entry (RECORD path or zip member) would land outside the layer's ``python/`` tree."""
    if not name:
        return False
    top, _, rest = name.replace("\\", "/").partition("/")
    key, _, inner = rest.partition("/")
    if top.endswith(".data") and key in DATA_SCHEME_KEYS and inner:
        return _leaves(inner)
    return _leaves(name)


def escaping_paths(names: Iterable[str]) -> list[str]:
    """The names that escape, each once, in the order given."""
    return list(dict.fromkeys(n for n in names if escapes(n)))


def wheel_escaping_paths(wheel: IO[bytes] | Path) -> list[str]:
    """What a wheel declares outside the tree: its RECORD's paths (read with ``csv``) and its member names."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        declared: list[str] = []
        for record in (n for n in names if _RECORD_NAME.fullmatch(n)):
            with zf.open(record) as raw:
                rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
                declared += [row[0] for row in rows if row]
    return escaping_paths([*declared, *names])


# ---------------------------------------------------------------------------- reading a wheel where it is
class _RangeReader(io.RawIOBase):
    """A remote file read with HTTP range requests: ``zipfile`` needs only its end (the central
    directory, and RECORD, usually the last member: already in ``tail``) and rarely one more range."""

    def __init__(self, url: str, headers: Mapping[str, str], size: int, tail: bytes) -> None:
        self.url, self.headers, self.size, self.tail, self.pos = url, dict(headers), size, tail, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.pos + len(buffer), self.size)
        if end <= self.pos:
            return 0
        tail_start = self.size - len(self.tail)
        if self.pos >= tail_start:
            data = self.tail[self.pos - tail_start : end - tail_start]
        else:
            request = urllib.request.Request(self.url, headers={**self.headers, "Range": f"bytes={self.pos}-{end - 1}"})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                data = response.read() if response.status == 206 else b""
        if len(data) != end - self.pos:
            raise OSError(f"{self.url} did not answer a range request")
        buffer[: len(data)] = data
        self.pos = end
        return len(data)


def _auth_headers(url: str, credentials: Credentials | None) -> dict[str, str]:
    """The login, for a URL on the credentials' index host only (as the installer sends it)."""
    if credentials is None:
        return {}
    here, there = urlsplit(url), urlsplit(credentials.simple_index_url)
    if (here.scheme, here.hostname, here.port) != (there.scheme, there.hostname, there.port):
        return {}
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextmanager
def _open_wheel(location: str, credentials: Credentials | None) -> Iterator[IO[bytes] | Path]:
    """A local path or ``file://`` URL as a path; an ``http(s)`` URL as a buffered range reader
    (the whole body when the server ignores ranges)."""
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https"):
        yield Path(unquote(parts.path) if parts.scheme == "file" else location)
        return
    headers = _auth_headers(location, credentials)
    probe = urllib.request.Request(location, headers={**headers, "Range": f"bytes=-{TAIL_BYTES}"})
    with urllib.request.urlopen(probe, timeout=TIMEOUT) as response:
        total = str(response.headers.get("Content-Range", "")).rpartition("/")[2]
        body = response.read()
    if response.status != 206 or not total.isdigit():
        yield io.BytesIO(body)
        return
    with io.BufferedReader(_RangeReader(location, headers, int(total), body), buffer_size=1 << 16) as reader:
        yield reader


@dataclasses.dataclass(frozen=True)
class _Wheel:
    """One wheel to read: where it is, and the sha256 the lock gives for it (the cache key of a remote one)."""

    dist: str
    location: str
    sha256: str | None = None


def _locked_wheels(path_lock: Path, pins: Sequence[LockedPin], target: LayerTarget) -> list[_Wheel]:
    """The wheels ``uv.lock`` lists for each index pin that the target can use."""
    try:  # uv read it before the install; whatever it does not hold is not checked
        packages = tomllib.loads(path_lock.read_text(encoding="utf-8")).get("package", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    wanted = {(p.name, p.version) for p in pins if p.path is None}
    tags = target_tags(target)
    found = []
    for entry in packages if isinstance(packages, list) else []:
        if not isinstance(entry, dict):
            continue
        key = (canonicalize_name(str(entry.get("name", ""))), str(entry.get("version", "")))
        if key not in wanted or not isinstance(entry.get("wheels"), list):
            continue
        for wheel in (w for w in entry["wheels"] if isinstance(w, dict)):
            where = str(wheel.get("url") or wheel.get("path") or "")
            try:
                wheel_tags = parse_wheel_filename(unquote(posixpath.basename(urlsplit(where).path)))[3]
            except InvalidWheelFilename:
                continue
            if where and wheel_tags & tags:
                local = "url" not in wheel and not Path(where).is_absolute()
                digest = str(wheel.get("hash", "")).removeprefix("sha256:")
                found.append(
                    _Wheel(
                        dist=" ".join(key),
                        location=str(path_lock.parent / where) if local else where,
                        sha256=digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None,
                    )
                )
    return found


def cache_dir() -> Path:
    """Where the escaping paths of remote wheels are kept by sha256 (a wheel's content never changes)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aws-lambda-artifact-builder" / "wheel-record"


def _cached(wheel: _Wheel) -> Path | None:
    remote = urlsplit(wheel.location).scheme in ("http", "https")
    return cache_dir() / f"{wheel.sha256}.json" if remote and wheel.sha256 else None


def _check(wheel: _Wheel, credentials: Credentials | None) -> tuple[list[str], str]:
    """The escaping paths of one wheel (a remote one read once per sha256, a local file each time), and
    why it could not be read or cached (``""``). Runs in a worker thread: it logs nothing itself."""
    cached = _cached(wheel)
    try:
        if cached is not None and cached.is_file():
            return [str(p) for p in json.loads(cached.read_text(encoding="utf-8"))], ""
    except (OSError, ValueError, TypeError):
        pass
    name = posixpath.basename(wheel.location)
    try:
        with _open_wheel(wheel.location, credentials) as opened:
            paths = wheel_escaping_paths(opened)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile, UnicodeDecodeError, csv.Error, ValueError) as e:
        return [], f"could not read the RECORD of {name}: {e}"
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            partial.write_text(json.dumps(paths), encoding="utf-8")
            os.replace(partial, cached)
        except OSError as e:
            return paths, f"could not keep the RECORD check of {name}: {e}"
    return paths, ""


def warn_escaping_entries(
    path_lock: Path,
    pins: Sequence[LockedPin],
    target: LayerTarget,
    *,
    tool: LayerBuildToolEnum,
    credentials: Credentials | None,
    logger: BaseLogger,
) -> dict[str, list[str]]:
    """After a uv install: warn, per distribution, about the files its wheel declares outside ``python/``
    (uv dropped them). Returns ``name version`` -> those paths. pip refuses such a wheel itself."""
    if installer_for(tool, target) != "uv":
        return {}
    wheels = [_Wheel(dist=f"{p.name} {p.version}", location=p.path) for p in pins if p.path is not None]
    if tool is LayerBuildToolEnum.uv and path_lock.is_file():
        wheels += _locked_wheels(path_lock, pins, target)
    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        results = list(pool.map(lambda wheel: _check(wheel, credentials), wheels))
    found: dict[str, list[str]] = {}
    for wheel, (escaping, problem) in sorted(zip(wheels, results, strict=True), key=lambda pair: pair[0].dist):
        if problem:
            logger.debug(f"[install] {problem}")
        if escaping:
            found[wheel.dist] = list(dict.fromkeys([*found.get(wheel.dist, []), *escaping]))
    for dist, paths in found.items():
        shown = ", ".join(paths[:3]) + (" …" if len(paths) > 3 else "")
        logger.warning(
            f"[install] warning: {dist} declares {len(paths)} file(s) outside the layer's python/ tree, which "
            f"uv does not install, so the layer does not hold them: {shown}"
        )
    return found
