"""Package stage: turn ``artifacts/python`` into a deterministic ``layer.zip``.

The same installed set must give the same bytes on every run, machine and installer, so the
zip holds sorted entries with a fixed timestamp and normalised permissions, installer-specific
metadata (``INSTALLER``, ``REQUESTED``, ``direct_url.json``, uv's ``uv_*.json``) is dropped and every ``RECORD`` is
rewritten from the files actually shipped. Exclusions remove exactly the files a distribution's
``RECORD`` lists, and pruning only removes what can never be imported (bytecode caches, console
scripts whose shebang names the build host). The tree on disk is never modified.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import os
import py_compile
import re
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from ..constants import LAYER_UNZIPPED_SIZE_LIMIT
from ..errors import LayerError
from ..progress import advance_current, forward_logs, get_logger, human_size, limit_size, set_current_total
from ..typehint import T_PRINTER
from .foundation import LayerPathLayout
from .manifest import normalize_excluded_packages


@dataclasses.dataclass(frozen=True)
class PackagingOptions:
    """How the installed tree becomes a zip; the options that change the zip's bytes enter the fingerprint."""

    #: Precompile ``.pyc`` with hash-based invalidation (only when the build Python equals the target).
    compile_bytecode: bool = False
    #: Refuse to package when the unzipped layer is larger than this (Lambda's limit by default).
    unzipped_size_limit: int = LAYER_UNZIPPED_SIZE_LIMIT
    #: Slim options (opt-in; see ``slim_layer_files``): ``strip --strip-debug`` every ELF shared object,
    #: drop ``tests/`` folders, ``*.pyi`` stubs and documentation inside the distributions.
    strip_debug_symbols: bool = False
    drop_tests: bool = False
    drop_type_stubs: bool = False
    drop_docs: bool = False

    def fingerprint_fields(self) -> dict[str, Any]:
        """The options that change the layer's bytes (the size limit does not).

        A slim option enters only when it is on, so the fingerprints of every layer recorded
        before these options existed stay what they were (no republish after an upgrade).
        """
        fields: dict[str, Any] = {"compile_bytecode": self.compile_bytecode}
        fields.update({name: True for name in SLIM_OPTIONS if getattr(self, name)})
        return fields

    @property
    def slim(self) -> bool:
        return any(getattr(self, name) for name in SLIM_OPTIONS)


#: The slim packaging options, each a boolean field of :class:`PackagingOptions`.
SLIM_OPTIONS: tuple[str, ...] = ("strip_debug_symbols", "drop_tests", "drop_type_stubs", "drop_docs")


#: Every entry's timestamp: the earliest a zip can hold, so no build time leaks into the bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: zlib level: within a fraction of a percent of level 9 in size on Python trees, several times faster.
ZIP_COMPRESSLEVEL = 6
#: Where Lambda extracts layers; compiled bytecode names its sources there.
LAMBDA_LAYER_ROOT = "/opt"
#: Per-install files that differ between installers and runs and that nothing reads at run time.
INSTALLER_METADATA = frozenset({"INSTALLER", "REQUESTED", "direct_url.json"})
#: uv's own bookkeeping in a dist-info (``uv_cache.json``: a timestamp of the local file it installed
#: from, so two builds of one lock differ); any ``uv_*.json`` is uv's, never the distribution's.
_UV_BOOKKEEPING_RE = re.compile(r"uv_[A-Za-z0-9_]+\.json")


def is_installer_bookkeeping(name: str) -> bool:
    """A file an installer writes into a ``.dist-info`` about the install, not about the distribution."""
    return name in INSTALLER_METADATA or _UV_BOOKKEEPING_RE.fullmatch(name) is not None


#: How many distributions the size report lists.
LARGEST_COUNT = 10


# ---------------------------------------------------------------------------- installed distributions
@dataclasses.dataclass(frozen=True)
class InstalledDistribution:
    """A ``*.dist-info`` folder in the layer tree."""

    name: str
    version: str
    #: posix path of the ``.dist-info`` folder below ``python/``.
    dist_info: str
    #: posix paths below ``python/`` that its RECORD lists (paths leaving the tree are dropped).
    files: tuple[str, ...]
    requires: tuple[str, ...]
    #: RECORD paths that leave the tree (``../``, absolute): installed elsewhere, never in the layer.
    outside: tuple[str, ...] = ()


def _inside(path: str) -> str | None:
    """A RECORD path relative to ``python/`` in normal form, or ``None`` when it leaves the tree."""
    if not path or path.startswith("/") or "\\" in path:
        return None
    normal = os.path.normpath(path).replace(os.sep, "/")
    return None if normal == ".." or normal.startswith("../") else normal


def _is_script_outside(path: str) -> bool:
    """``../../bin/<name>``: a console script installed for the host, never meant for the layer."""
    parts = path.replace("\\", "/").split("/")
    return len(parts) >= 2 and parts[-2] in ("bin", "Scripts")


def _moved_in_by_pip(dir_python: Path, row: list[str]) -> bool:
    """``../../<rest>`` that ``pip install --target`` put at ``python/<rest>``: pip writes a wheel's
    ``.data`` scripts, data and headers relative to its temporary ``<home>/lib/python``, then moves
    everything of ``<home>`` into the target (see ``wheel_record`` for the rule). Held when the file is
    there with the RECORD's hash, so the layer holds it and no warning says otherwise."""
    rest = _inside(row[0][len("../../") :]) if row[0].startswith("../../") else None
    path = dir_python / rest if rest is not None else None
    if path is None or not path.is_file():
        return False
    algorithm, _, expected = (row[1] if len(row) > 1 else "").partition("=")
    if algorithm not in hashlib.algorithms_guaranteed or not expected:
        return True
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, path.read_bytes()).digest()).rstrip(b"=").decode()
    return digest == expected


def read_distributions(dir_python: Path) -> list[InstalledDistribution]:
    """Every distribution installed at the top of ``dir_python``, sorted by canonical name."""
    dists = []
    for dist_info in sorted(Path(dir_python).glob("*.dist-info")):
        if not dist_info.is_dir():
            continue
        try:
            raw = (dist_info / "METADATA").read_bytes()
            # Only the headers matter; the long description after the first blank line can be large.
            headers = BytesHeaderParser().parsebytes(raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0] + b"\n")
        except FileNotFoundError:
            raise LayerError(f"{dist_info} has no METADATA; the install is incomplete") from None
        files: list[str] = []
        outside: list[str] = []
        record = dist_info / "RECORD"
        if record.is_file():
            for row in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))):
                inside = _inside(row[0]) if row else None
                if inside is not None:
                    files.append(inside)
                elif row and row[0] and not _is_script_outside(row[0]) and not _moved_in_by_pip(dir_python, row):
                    outside.append(row[0])
        dists.append(
            InstalledDistribution(
                name=canonicalize_name(str(headers["Name"])),
                version=str(headers["Version"]),
                dist_info=dist_info.name,
                files=tuple(files),
                requires=tuple(str(r) for r in headers.get_all("Requires-Dist") or ()),
                outside=tuple(outside),
            )
        )
    return sorted(dists, key=lambda d: d.name)


# ---------------------------------------------------------------------------- the files to ship
def _scan_tree(root: Path) -> dict[str, Path]:
    """posix relpath -> file for every file below ``root``, following symlinks that stay inside it."""
    root = root.resolve()
    found: dict[str, Path] = {}
    stack: list[tuple[Path, str, frozenset[Path]]] = [(root, "", frozenset({root}))]
    while stack:
        folder, prefix, seen = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            path = Path(entry.path)
            if entry.is_symlink():
                real = path.resolve()
                if real != root and root not in real.parents:
                    raise LayerError(
                        f"{root / rel} is a symlink to {real}, outside the layer tree; refusing to package it"
                    )
                if real.is_dir():
                    if real in seen:
                        raise LayerError(f"{root / rel} is a symlink loop")
                    stack.append((real, rel + "/", seen | {real}))
                elif real.is_file():
                    found[rel] = real
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((path, rel + "/", seen | {path}))
            elif entry.is_file(follow_symlinks=False):
                found[rel] = path
    return found


def _is_console_script(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"#!"


def _is_pruned(rel: str, path: Path) -> bool:
    """Files that can never be imported from the layer, only break reproducibility."""
    parts = rel.split("/")
    if "__pycache__" in parts[:-1] or rel.endswith((".pyc", ".pyo")):
        return True
    if len(parts) == 2 and parts[0].endswith(".dist-info") and is_installer_bookkeeping(parts[1]):
        return True
    if rel == ".lock":  # uv's lock of a --target folder
        return True
    return len(parts) == 2 and parts[0] == "bin" and _is_console_script(path)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _record_text(lines: list[tuple[str, str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(sorted(lines))
    return buf.getvalue().encode("utf-8")


@dataclasses.dataclass(frozen=True)
class LayerEntry:
    """One file of the zip: its path below ``python/``, where its bytes come from, and its mode."""

    path: str
    source: Path | None
    data: bytes | None
    executable: bool

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size


@dataclasses.dataclass(frozen=True)
class LayerContent:
    """What goes into the zip, decided before anything is written."""

    entries: list[LayerEntry]
    #: canonical name -> shipped bytes (its files and its dist-info).
    distribution_sizes: dict[str, int]
    excluded: list[str]
    #: ``name version`` -> RECORD paths leaving the tree (installed elsewhere, not in the layer).
    outside: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    #: ELF objects ``strip_debug_symbols`` left as they were (see ``layer/slim.py``).
    unstripped: tuple[str, ...] = ()

    def largest_distributions(self, count: int = LARGEST_COUNT) -> list[tuple[str, int]]:
        return sorted(self.distribution_sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:count]


def _ownership(
    dists: list[InstalledDistribution], tree: Mapping[str, Path], excluded_names: set[str]
) -> tuple[dict[str, set[str]], set[str]]:
    """Each distribution's files (its RECORD and its dist-info folder), and the files that leave the
    tree with the excluded distributions: a file goes with its excluded distribution unless a kept
    one owns it too (namespace packages)."""
    owned: dict[str, set[str]] = {}
    owner_count: dict[str, int] = {}
    kept_owner_count: dict[str, int] = {}
    for dist in dists:
        files = set(dist.files) | {rel for rel in tree if rel.startswith(dist.dist_info + "/")}
        owned[dist.name] = files
        for rel in files:
            owner_count[rel] = owner_count.get(rel, 0) + 1
            if dist.name not in excluded_names:
                kept_owner_count[rel] = kept_owner_count.get(rel, 0) + 1
    dropped = {rel for rel in owner_count if not kept_owner_count.get(rel)}
    return owned, dropped


def _rewrite_records(
    dists: list[InstalledDistribution],
    owned: Mapping[str, set[str]],
    kept: Mapping[str, Path],
    excluded_names: set[str],
) -> tuple[dict[str, bytes], dict[str, int]]:
    """Each kept distribution's RECORD listing the files it ships (as shipped: slimmed ones hashed
    as stripped), by RECORD path; and its shipped bytes, by name."""
    sizes: dict[str, int] = {}
    records: dict[str, bytes] = {}
    for dist in dists:
        if dist.name in excluded_names:
            continue
        record_path = f"{dist.dist_info}/RECORD"
        lines = []
        total = 0
        for rel in sorted(owned[dist.name] & kept.keys() - {record_path}):
            data = kept[rel].read_bytes()
            lines.append((rel, _record_hash(data), str(len(data))))
            total += len(data)
        lines.append((record_path, "", ""))
        records[record_path] = _record_text(lines)
        sizes[dist.name] = total + len(records[record_path])
    return records, sizes


def collect_layer_content(
    dir_python: Path,
    *,
    ignore_packages: Iterable[str] | None = None,
    options: PackagingOptions | None = None,
    dir_scratch: Path | None = None,
) -> LayerContent:
    """The layer's files: the tree less excluded distributions and pruned files, RECORDs rewritten.

    With slim ``options`` (``layer/slim.py``) some files are left out and shared objects are shipped
    stripped (copies written to ``dir_scratch``, default: ``slim`` beside ``dir_python``'s parent).
    """
    dir_python = Path(dir_python)
    if not dir_python.is_dir():
        raise LayerError(f"{dir_python} does not exist: build the layer before packaging it")
    tree = _scan_tree(dir_python)
    dists = read_distributions(dir_python)
    excluded_names = set(normalize_excluded_packages(ignore_packages))
    owned, dropped = _ownership(dists, tree, excluded_names)
    kept = {rel: path for rel, path in tree.items() if rel not in dropped and not _is_pruned(rel, path)}
    unstripped: list[str] = []
    if options is not None and options.slim:
        from .slim import slim_layer_files

        scratch = dir_scratch if dir_scratch is not None else dir_python.parent.parent / "slim"
        kept, unstripped = slim_layer_files(kept, options, dir_scratch=scratch)
    records, sizes = _rewrite_records(dists, owned, kept, excluded_names)
    entries = []
    for rel in sorted(set(kept) | set(records)):
        if rel in records:
            entries.append(LayerEntry(path=rel, source=None, data=records[rel], executable=False))
        else:
            mode = kept[rel].stat().st_mode
            entries.append(LayerEntry(path=rel, source=kept[rel], data=None, executable=bool(mode & 0o111)))
    excluded = sorted(d.name for d in dists if d.name in excluded_names)
    outside = {f"{d.name} {d.version}": d.outside for d in dists if d.outside and d.name not in excluded_names}
    return LayerContent(
        entries=entries,
        distribution_sizes=sizes,
        excluded=excluded,
        outside=outside,
        unstripped=tuple(unstripped),
    )


def compile_bytecode_entries(entries: Iterable[LayerEntry], *, python_version: str | None) -> list[LayerEntry]:
    """Hash-checked ``.pyc`` for every module, made by this interpreter, which must be the target's."""
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if python_version != running:
        raise LayerError(
            f"compile_bytecode needs the build Python to be the target's: this is Python {running}, "
            f"the layer is for Python {python_version}; build without compile_bytecode or package with Python {python_version}"
        )
    tag = sys.implementation.cache_tag
    out = []
    with tempfile.TemporaryDirectory(prefix="alab-pyc-") as tmp:
        for entry in entries:
            if not entry.path.endswith(".py") or entry.source is None:
                continue
            rel = PurePosixPath(entry.path)
            cfile = Path(tmp) / "out.pyc"
            try:
                py_compile.compile(
                    str(entry.source),
                    cfile=str(cfile),
                    dfile=f"{LAMBDA_LAYER_ROOT}/python/{rel}",
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                )
            except py_compile.PyCompileError:
                continue  # not valid for this Python (e.g. templates, py2 leftovers): importing it fails anyway
            pyc = rel.parent / "__pycache__" / f"{rel.stem}.{tag}.pyc"
            out.append(LayerEntry(path=str(pyc), source=None, data=cfile.read_bytes(), executable=False))
    return out


# ---------------------------------------------------------------------------- the zip
def _dir_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.create_system = 3
    info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
    info.compress_type = zipfile.ZIP_STORED
    return info


def _file_info(name: str, executable: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


#: A file larger than this goes into the zip in chunks of this size, so the package bar moves within it.
ZIP_CHUNK = 1 << 20


def _write_entry(zf: zipfile.ZipFile, name: str, entry: LayerEntry) -> None:
    """One file into the zip, advancing the package stage's progress (bytes) as it goes. A large file is
    streamed in chunks, with what ``writestr`` would set (size, level): the zip's bytes stay the same."""
    info = _file_info(name, entry.executable)
    if entry.source is None or entry.size <= ZIP_CHUNK:
        zf.writestr(info, entry.read(), compresslevel=ZIP_COMPRESSLEVEL)
        advance_current(entry.size)
        return
    info.file_size = entry.size  # as writestr sets it, so the ZIP64 decision is the same
    setattr(info, "_compresslevel", ZIP_COMPRESSLEVEL)  # noqa: B010  where writestr(compresslevel=) puts it; typeshed lacks it
    with entry.source.open("rb") as source, zf.open(info, "w") as dest:
        for chunk in iter(lambda: source.read(ZIP_CHUNK), b""):
            dest.write(chunk)
            advance_current(len(chunk))


def write_deterministic_zip(path: Path, entries: Iterable[LayerEntry], *, prefix: str = "python/") -> None:
    """Write ``entries`` below ``prefix`` in sorted order with fixed metadata; atomic replace of ``path``."""
    files = sorted(entries, key=lambda e: e.path)
    dirs = _directories(files, prefix)
    items: list[tuple[str, LayerEntry | None]] = [(d, None) for d in dirs]
    items += [(prefix + e.path, e) for e in files]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_COMPRESSLEVEL) as zf:
            for name, entry in sorted(items, key=lambda item: item[0]):
                if entry is None:
                    zf.writestr(_dir_info(name), b"")
                else:
                    _write_entry(zf, name, entry)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- the stage
def _mb(size: int) -> str:
    return human_size(size)


@dataclasses.dataclass(frozen=True)
class LayerZipInfo:
    """The packaged layer: where it is, its digests in both forms, and its size report."""

    path: Path
    #: hex sha256 of the zip.
    sha256: str
    #: base64 of the sha256 digest: what Lambda reports as ``CodeSha256``.
    code_sha256: str
    zipped_size: int
    unzipped_size: int
    file_count: int
    #: The largest shipped distributions, (canonical name, bytes), largest first.
    largest_distributions: list[tuple[str, int]]
    #: Installed distributions left out of the zip (``ignore_packages``).
    excluded: list[str]

    def report_lines(self) -> list[str]:
        lines = [
            f"{self.path}: {self.file_count:,d} files, {_mb(self.unzipped_size)} unzipped, "
            f"{_mb(self.zipped_size)} zipped, sha256 {self.sha256}",
        ]
        lines += [f"  {human_size(size):>9}  {name}" for name, size in self.largest_distributions]
        if self.excluded:
            lines.append(f"  excluded: {', '.join(self.excluded)}")
        return lines


#: The most entries a zip holds without ZIP64 extensions. Lambda documents .zip archives but not
#: ZIP64 (https://docs.aws.amazon.com/lambda/latest/dg/configuration-function-zip.html), so a layer
#: past it is flagged: Python's zipfile reads it, other unzippers may not.
ZIP_ENTRIES_WITHOUT_ZIP64 = 65_535


def _directories(entries: Iterable[LayerEntry], prefix: str = "python/") -> set[str]:
    """The directory entries ``write_deterministic_zip`` adds for these files."""
    found = {prefix}
    for entry in entries:
        parts = (prefix + entry.path).split("/")[:-1]
        found.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    return found


def _packaging_warnings(content: LayerContent, entry_count: int) -> list[str]:
    """What the user should know about the zip although it is written: files left out, ZIP64."""
    lines = []
    for dist, paths in sorted(content.outside.items()):
        shown = ", ".join(paths[:3]) + (" …" if len(paths) > 3 else "")
        lines.append(
            f"[package] warning: {dist} lists {len(paths)} file(s) outside the layer's python/ tree, which the "
            f"installer put elsewhere (or dropped) and the layer does not hold: {shown}"
        )
    if content.unstripped:
        shown = ", ".join(content.unstripped[:3]) + (" …" if len(content.unstripped) > 3 else "")
        lines.append(
            f"[package] strip_debug_symbols: {len(content.unstripped)} object(s) shipped unstripped, as strip would "
            f"move their loadable segments (edited by patchelf): {shown}"
        )
    if entry_count > ZIP_ENTRIES_WITHOUT_ZIP64:
        lines.append(
            f"[package] warning: the zip has {entry_count:,d} entries, more than {ZIP_ENTRIES_WITHOUT_ZIP64:,d}, so "
            f"it is a ZIP64 archive; Lambda documents .zip archives but not ZIP64: test the layer before relying on it"
        )
    return lines


def create_layer_zip_file(
    *,
    path_pyproject_toml: Path | str,
    ignore_packages: Iterable[str] | None = None,
    options: PackagingOptions = PackagingOptions(),
    python_version: str | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> LayerZipInfo:
    """Package ``LayerPathLayout.dir_python`` into ``path_build_lambda_layer_zip``, deterministically.

    ``ignore_packages`` replaces ``DEFAULT_EXCLUDED_PACKAGES``. ``python_version`` (the target's) is
    needed only with ``options.compile_bytecode``. A layer over ``options.unzipped_size_limit`` is an
    error raised before the zip is written, so nothing too large is ever uploaded. The seed's API:
    ``verbose``/``printer`` as ``progress.forward_logs`` takes them; the core calls :func:`package_layer`.
    """
    with forward_logs(verbose, printer):
        return package_layer(
            path_pyproject_toml=path_pyproject_toml,
            ignore_packages=ignore_packages,
            options=options,
            python_version=python_version,
        )


def package_layer(
    *,
    path_pyproject_toml: Path | str,
    ignore_packages: Iterable[str] | None = None,
    options: PackagingOptions = PackagingOptions(),
    python_version: str | None = None,
) -> LayerZipInfo:
    """:func:`create_layer_zip_file`'s work; what it did goes to the ``package`` logger."""
    logger = get_logger("package")
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    path_zip = layout.path_build_lambda_layer_zip
    path_zip.unlink(missing_ok=True)
    content = collect_layer_content(
        layout.dir_python,
        ignore_packages=ignore_packages,
        options=options,
        dir_scratch=layout.dir_build_lambda_layer / "slim",
    )
    entries = list(content.entries)
    if options.compile_bytecode:
        entries += compile_bytecode_entries(content.entries, python_version=python_version)
    unzipped = sum(e.size for e in entries)
    if unzipped > options.unzipped_size_limit:
        largest = ", ".join(f"{n} ({_mb(s)})" for n, s in content.largest_distributions(5))
        raise LayerError(
            f"the layer would be {unzipped:,d} bytes ({_mb(unzipped)}) unzipped, over the limit of "
            f"{options.unzipped_size_limit:,d} bytes ({limit_size(options.unzipped_size_limit)}); largest: {largest}. "
            f"Exclude what the runtime already ships (ignore_packages) or split the dependencies into several layers"
        )
    set_current_total(unzipped, "bytes")
    write_deterministic_zip(path_zip, entries)
    digest = hashlib.sha256()
    with open(path_zip, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    info = LayerZipInfo(
        path=path_zip,
        sha256=digest.hexdigest(),
        code_sha256=base64.b64encode(digest.digest()).decode("ascii"),
        zipped_size=path_zip.stat().st_size,
        unzipped_size=unzipped,
        file_count=len(entries),
        largest_distributions=content.largest_distributions(),
        excluded=content.excluded,
    )
    for line in info.report_lines():
        logger.info("%s", line)
    for line in _packaging_warnings(content, len(entries) + len(_directories(entries))):
        logger.warning("%s", line)
    return info
