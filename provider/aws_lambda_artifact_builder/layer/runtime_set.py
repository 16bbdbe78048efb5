"""The runtime set a lock pins for a Lambda target: its values, its fingerprint and diffs, and the
pure parsers that produce it. Nothing here starts a process (``lock_export`` runs uv and poetry;
``manifest`` reads a project's lock with them and caches the result).

A uv or poetry lock is read through its tool's export (requirements lines with markers and hashes);
``export_runtime_set`` evaluates the markers for the target with ``packaging`` and reads the lock's
TOML only for what an export does not carry: each pin's index and the file names it lists (for the
early "no wheel" check), and the names and versions of local sources.

requirements.txt is read here by hand: pip has no public API for its parser, and
``pip-requirements-parser`` is a copy of pip's internals of 2022 (no ``--hash`` all-or-nothing
rule, no marker-aware duplicate pins); the subset a layer accepts (pins, markers, hashes,
index options) is small, and every rule pip applies to it is kept here (see
``requirements_runtime_set``). Poetry's python constraints (``^3.10``) are translated here only for
the plan-time python check (``poetry_constraint_to_pep440``; poetry itself validates the lock), and
poetry's ``content-hash`` is computed only to hand a scratch copy of a project to poetry
(``poetry_content_hash``).

The fingerprint covers the runtime set for the target (canonical name, version, source without
login, locked artifact hashes; for a local folder the digest of its files, see ``source_tree``) and
the target, packaging options and exclusions: a dev-group, cosmetic or project-version change
publishes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..constants import DEFAULT_EXCLUDED_PACKAGES, LayerBuildToolEnum
from ..errors import ManifestError, mask_url_credentials
from .foundation import coerce_tool
from .target import LayerTarget

#: Bump when the canonical record below changes meaning, so old records never match new ones.
#: 1: the normalised manifest text; 2: the runtime set for the target.
FINGERPRINT_FORMAT_VERSION = 2

DependencySet = dict[str, str]


def normalize_manifest_text(content: bytes | str) -> str:
    """Manifest text with what cannot change the layer removed: BOM, CR, trailing blanks, URL logins."""
    text = _decode(content, "manifest") if isinstance(content, bytes) else content.lstrip("\ufeff")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return mask_url_credentials("\n".join(lines) + "\n")


def _decode(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{name} is not UTF-8 text (byte {e.start}): re-save it as UTF-8") from None


def normalize_excluded_packages(ignore_packages: Iterable[str] | None) -> tuple[str, ...]:
    """Sorted canonical names of the excluded distributions; ``None`` means the defaults."""
    if ignore_packages is None:
        return _default_excluded()
    return _normalized_names(ignore_packages)


@functools.lru_cache(maxsize=1)
def _default_excluded() -> tuple[str, ...]:
    """The defaults, normalised once per process (every plan asks)."""
    return _normalized_names(DEFAULT_EXCLUDED_PACKAGES)


def _normalized_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ManifestError(f"ignore_packages must be a list of names, not the string {names!r}")
    return tuple(sorted({canonicalize_name(str(n)) for n in names}))


# ---------------------------------------------------------------------------- the runtime set
@dataclasses.dataclass(frozen=True)
class RuntimePackage:
    """One distribution the layer installs, as the lock pins it for the target."""

    name: str
    version: str
    #: Where it comes from, without login: an index URL, ``""`` (the installer's default index or
    #: requirements.txt's own options), ``git+URL@commit``, or ``path:<folder relative to the lock>``.
    source: str = ""
    #: ``sha256:<hex>`` of every file the lock allows.
    hashes: tuple[str, ...] = ()
    #: File names the lock lists (wheels and sdist); ``None`` when it does not say.
    filenames: tuple[str, ...] | None = None
    #: A local source to build into a wheel: an absolute folder or a ``git+URL@commit``; not fingerprinted
    #: (``source`` is).
    build_from: str | None = None
    #: sha256 of a local folder's files (``source_tree.source_tree_digest``): its code changes while its
    #: version does not. ``""`` for everything else, so rows of sets without local folders keep their
    #: format-2 digest.
    content: str = ""

    @property
    def is_local(self) -> bool:
        return self.build_from is not None

    def fingerprint_row(self) -> list[Any]:
        row: list[Any] = [self.name, self.version, self.source, list(self.hashes)]
        return row + [self.content] if self.content else row

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuntimePackage:
        files = data.get("filenames")
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            source=str(data.get("source", "")),
            hashes=tuple(data.get("hashes", ())),
            filenames=tuple(files) if files is not None else None,
            build_from=data.get("build_from"),
            content=str(data.get("content", "")),
        )


@dataclasses.dataclass(frozen=True)
class RuntimeSet:
    """What a lock installs for one target, sorted by name; ``index_options`` are requirements.txt's own."""

    packages: tuple[RuntimePackage, ...]
    index_options: tuple[str, ...] = ()

    @property
    def dependencies(self) -> DependencySet:
        return {p.name: p.version for p in self.packages}

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of what the fingerprint covers: each package's name, version, source and hashes."""
        return _digest(
            {
                "packages": [p.fingerprint_row() for p in sorted(self.packages, key=lambda p: p.name)],
                "index_options": [mask_url_credentials(o) for o in self.index_options],
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {"packages": [p.to_json() for p in self.packages], "index_options": list(self.index_options)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuntimeSet:
        return cls(
            packages=tuple(RuntimePackage.from_json(p) for p in data["packages"]),
            index_options=tuple(data.get("index_options", ())),
        )


def _sorted_set(packages: Iterable[RuntimePackage], options: Iterable[str] = ()) -> RuntimeSet:
    return RuntimeSet(packages=tuple(sorted(packages, key=lambda p: p.name)), index_options=tuple(options))


# ---------------------------------------------------------------------------- fingerprint
def compute_fingerprint(
    *,
    tool: LayerBuildToolEnum | str,
    runtime_set: RuntimeSet | None = None,
    python_version: str,
    architecture: str,
    ignore_packages: Iterable[str] | None = None,
    packaging_options: Mapping[str, Any] | None = None,
    runtime_set_digest: str | None = None,
) -> str:
    """sha256 of a canonical record of everything that decides the layer's bytes (format 2): the
    runtime set (or its ``RuntimeSet.digest``), the target, the exclusions and the packaging options."""
    target = LayerTarget(python_version=python_version, architecture=architecture)
    if runtime_set_digest is None:
        if runtime_set is None:
            raise ManifestError("compute_fingerprint needs the runtime set (or its digest)")
        runtime_set_digest = runtime_set.digest
    record = {
        "format": FINGERPRINT_FORMAT_VERSION,
        "tool": coerce_tool(tool).value,
        "runtime_set": runtime_set_digest,
        "python_version": target.python_version,
        "architecture": target.architecture,
        "excluded": list(normalize_excluded_packages(ignore_packages)),
        "packaging": dict(sorted((packaging_options or {}).items())),
    }
    return _digest(record)


def legacy_fingerprint_v1(
    *,
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    python_version: str,
    architecture: str,
    ignore_packages: Iterable[str] | None = None,
    packaging_options: Mapping[str, Any] | None = None,
) -> str:
    """The format-1 fingerprint (of the normalised manifest text), to recognise records written by it."""
    target = LayerTarget(python_version=python_version, architecture=architecture)
    record = {
        "format": 1,
        "tool": coerce_tool(tool).value,
        "manifest": normalize_manifest_text(manifest_content),
        "python_version": target.python_version,
        "architecture": target.architecture,
        "excluded": list(normalize_excluded_packages(ignore_packages)),
        "packaging": dict(sorted((packaging_options or {}).items())),
    }
    return _digest(record)


def _digest(record: Mapping[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- markers and python
def _marker_applies(marker: str | None, env: Mapping[str, str], where: str) -> bool:
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(dict(env))
    except InvalidMarker as e:
        raise ManifestError(f"{where}: invalid environment marker {marker!r}: {e}") from None


def python_allowed(specifier: str, python_version: str) -> bool:
    """Whether some release of Lambda's ``python_version`` (3.12.0 ... 3.12.99) meets ``requires-python``."""
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return True  # the tool that wrote the lock reports it
    return any(spec.contains(f"{python_version}.{patch}", prereleases=True) for patch in range(100))


def _check_python(specifier: str | None, target: LayerTarget, where: str, what: str) -> None:
    if specifier and not python_allowed(specifier, target.python_version):
        raise ManifestError(
            f"{where}: the lock supports python {specifier} ({what}), which excludes the target "
            f"{target.runtime}; choose a python_version it allows or widen {what} and re-lock"
        )


# ---------------------------------------------------------------------------- requirements lines
@dataclasses.dataclass(frozen=True)
class _Line:
    """One requirement of a requirements file (an export or a user's requirements.txt)."""

    number: int
    text: str
    requirement: Requirement | None
    #: A bare path or ``-e path`` line (uv exports workspace members this way).
    path: str | None
    hashes: tuple[str, ...]


_HASH = re.compile(r"\s--hash[=\s]+(\S+)")
#: Options pip reads from a requirements file that only say where to find distributions.
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--trusted-host")
_HARMLESS_OPTIONS = ("--only-binary", "--prefer-binary", "--pre", "--no-binary", "--use-feature")


def logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Lines with backslash continuations joined and comments dropped, numbered from 1 (like pip)."""
    buf, start = "", 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            yield start, buf.strip()
        buf = ""
    if buf.strip():
        yield start, buf.strip()


def _parse_lines(text: str, name: str) -> tuple[list[_Line], list[str]]:
    """Requirement lines and index option lines of a requirements file."""
    lines: list[_Line] = []
    options: list[str] = []
    for number, line in logical_lines(text):
        where = f"{name}:{number}"
        if line.startswith("-"):
            option = re.split(r"[\s=]", line, maxsplit=1)[0]
            if option in INDEX_OPTIONS:
                options.append(line)
                continue
            if option in ("-e", "--editable"):
                path = line.split(None, 1)[1].strip() if " " in line else ""
                lines.append(_Line(number, line, None, path, ()))
                continue
            if option in ("-r", "--requirement", "-c", "--constraint"):
                raise ManifestError(f"{where}: {option} is not supported in a layer manifest; inline the pins")
            if option.startswith("--hash"):
                raise ManifestError(f"{where}: --hash must follow a requirement on its line")
            if option in _HARMLESS_OPTIONS:
                continue
            raise ManifestError(f"{where}: option {option} is not supported in a layer manifest")
        hashes = tuple(sorted(set(_HASH.findall(" " + line))))
        spec = re.split(r"\s--", " " + line, maxsplit=1)[0].strip()
        if spec.startswith((".", "/", "file:")) and "@" not in spec.split(";")[0]:
            lines.append(_Line(number, line, None, spec.split(";")[0].strip(), hashes))
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement as e:
            raise ManifestError(
                f"{where}: cannot read requirement {mask_url_credentials(spec)!r}: {_first_line(e)}"
            ) from None
        lines.append(_Line(number, line, req, None, hashes))
    return lines, options


def _applies(line: _Line, target: LayerTarget, name: str) -> bool:
    req = line.requirement
    if req is None or req.marker is None:
        return True
    try:
        return req.marker.evaluate(dict(target.marker_environment()))
    except Exception as e:  # noqa: BLE001  (packaging raises several types for markers it cannot compare)
        raise ManifestError(f"{name}:{line.number}: cannot evaluate the marker {str(req.marker)!r}: {e}") from None


def _pinned_version(req: Requirement, where: str) -> str:
    pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    if len(pins) != 1 or len(req.specifier) != 1:
        raise ManifestError(f"{where}: {req.name} is not pinned to one version (write {req.name}==X.Y)")
    return pins[0].version


def parse_requirements_txt(text: str, target: LayerTarget, *, name: str = "requirements.txt") -> DependencySet:
    """Pinned ``name==version`` lines whose markers hold for the target (see ``requirements_runtime_set``)."""
    return requirements_runtime_set(text, target, name=name).dependencies


def requirements_runtime_set(text: str, target: LayerTarget, *, name: str = "requirements.txt") -> RuntimeSet:
    """A user's requirements.txt, with pip's rules.

    Every requirement is pinned to one version; with hashes on some lines and not on others pip
    refuses the file, and so does this; a name pinned on several lines under different markers
    takes the line whose marker holds for the target (two that hold are an error).
    """
    lines, options = _parse_lines(text, name)
    hashed = [ln for ln in lines if ln.hashes]
    if hashed and len(hashed) != len(lines):
        bare = [ln for ln in lines if not ln.hashes]
        first = bare[0]
        label = first.requirement.name if first.requirement else first.path
        raise ManifestError(
            f"{name}:{first.number}: {label} has no --hash while other lines have one; pip refuses such a file "
            f"(hash-checking mode covers every requirement): add --hash to every line or to none"
        )
    chosen: dict[str, tuple[_Line, str]] = {}
    for line in lines:
        where = f"{name}:{line.number}"
        if line.requirement is None:
            raise ManifestError(
                f"{where}: {line.path} is a local folder; a requirements.txt layer installs pins from indexes"
            )
        req = line.requirement
        if req.url:
            raise ManifestError(f"{where}: {req.name} comes from a URL; pin it to a version from an index")
        version = _pinned_version(req, where)
        if not _applies(line, target, name):
            continue
        key = canonicalize_name(req.name)
        if key in chosen and chosen[key][1] != version:
            raise ManifestError(
                f"{where}: {req.name} is pinned to {chosen[key][1]} on line {chosen[key][0].number} and to {version} "
                f"here, and both markers hold for {target.runtime} {target.architecture}"
            )
        chosen[key] = (line, version)
    packages = [
        RuntimePackage(name=key, version=version, hashes=line.hashes) for key, (line, version) in chosen.items()
    ]
    return _sorted_set(packages, (mask_url_credentials(o) for o in options))


# ---------------------------------------------------------------------------- exports of uv and poetry
def _lock_index(data: Mapping[str, Any], tool: LayerBuildToolEnum, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The lock's package tables by (canonical name, version)."""
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise ManifestError(f"{name}: [[package]] is not a list of tables")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in packages:
        if not isinstance(entry, dict):
            raise ManifestError(f"{name}: a [[package]] entry is not a table")
        pkg_name, version = entry.get("name"), entry.get("version")
        if not isinstance(pkg_name, str) or not pkg_name:
            raise ManifestError(f"{name}: a [[package]] entry has no name (or one that is not a string)")
        if version is not None and not isinstance(version, str):
            raise ManifestError(f"{name}: package {pkg_name} has a version that is not a string")
        out[(canonicalize_name(pkg_name), str(version))] = entry
    return out


def _file_name(url_or_path: str) -> str:
    return unquote(PurePosixPath(urlsplit(url_or_path).path).name)


def _uv_details(entry: Mapping[str, Any]) -> tuple[str, tuple[str, ...] | None, str | None, str]:
    """(source, filenames, local folder, git url) of a uv lock entry."""
    source = entry.get("source", {})
    if not isinstance(source, dict):
        source = {}
    wheels = entry.get("wheels", [])
    files = [w for w in wheels if isinstance(w, dict)] if isinstance(wheels, list) else []
    if isinstance(entry.get("sdist"), dict):
        files.append(entry["sdist"])
    names = tuple(_file_name(str(f.get("url", f.get("path", f.get("filename", ""))))) for f in files) or None
    if "registry" in source:
        return _clean_url(str(source["registry"])), names, None, ""
    for kind in ("editable", "directory", "virtual", "path"):
        if kind in source:
            return f"path:{source[kind]}", names, str(source[kind]), ""
    if "git" in source:
        return "git", names, None, str(source["git"])
    kind = next(iter(source), "unknown")
    return f"{kind}:{mask_url_credentials(str(source.get(kind, '')))}", names, None, ""


def _poetry_details(
    entry: Mapping[str, Any], data: Mapping[str, Any]
) -> tuple[str, tuple[str, ...] | None, str | None, str]:
    source = entry.get("source") or {}
    if not isinstance(source, dict):
        source = {}
    files = entry.get("files")
    if files is None:  # lock-version 1.x keeps the files in [metadata.files]
        meta_files = data.get("metadata", {}).get("files", {})
        files = meta_files.get(entry.get("name")) if isinstance(meta_files, dict) else None
    names = (
        tuple(str(f.get("file")) for f in files if isinstance(f, dict)) if isinstance(files, list) and files else None
    )
    kind = source.get("type")
    if kind in (None, "legacy"):
        return (_clean_url(str(source["url"])) if kind == "legacy" else ""), names, None, ""
    if kind in ("directory", "file"):
        return f"path:{source.get('url')}", names, str(source.get("url")), ""
    if kind == "git":
        return "git", names, None, f"{source.get('url')}@{source.get('resolved_reference', '')}"
    return f"{kind}:{mask_url_credentials(str(source.get('url', '')))}", names, None, ""


def _clean_url(url: str) -> str:
    return mask_url_credentials(url.strip())


_COMMIT = re.compile(r"[0-9a-f]{40}")


def git_commit_of(build_from: str) -> str | None:
    """The commit a ``git+URL@rev`` names, ``None`` when ``rev`` is a branch or tag (not reproducible)."""
    rev = build_from.rpartition("@")[2].split("#")[0] if "@" in urlsplit(build_from).path else ""
    return rev if _COMMIT.fullmatch(rev) else None


def _git_source(url: str, locked_commit: str | None = None) -> tuple[str, str]:
    """(fingerprinted source without login, build_from) of a git requirement.

    The commit the lock resolved wins over a branch or tag in the exported URL; a build refuses a
    git dependency without a commit (``git_commit_of``), reading it does not.
    """
    full = url if url.startswith("git+") else f"git+{url}"
    base, rev = (full.rpartition("@")[0], full.rpartition("@")[2]) if "@" in urlsplit(full).path else (full, "")
    rev = rev.split("#")[0]
    if locked_commit and _COMMIT.fullmatch(locked_commit):
        rev = locked_commit
    build_from = f"{base}@{rev}" if rev else base
    return mask_url_credentials(build_from), build_from


def _locked_git_commit(entry: Mapping[str, Any] | None) -> str | None:
    """The commit a lock entry resolved its git source to (uv: ``#<sha>``; poetry: ``resolved_reference``)."""
    source = (entry or {}).get("source")
    if not isinstance(source, dict):
        return None
    if isinstance(source.get("git"), str):
        return source["git"].rpartition("#")[2] if "#" in source["git"] else None
    ref = source.get("resolved_reference")
    return str(ref) if ref else None


def export_runtime_set(
    export_text: str,
    lock_text: str,
    target: LayerTarget,
    *,
    tool: LayerBuildToolEnum,
    dir_lock: Path,
    name: str,
) -> RuntimeSet:
    """The runtime set from a tool's export (requirements lines with markers and hashes) and its lock."""
    data = _load_toml(lock_text, name)
    index = _lock_index(data, tool, name)
    by_path: dict[str, tuple[str, str]] = {}
    for (pkg, version), entry in index.items():
        details = _uv_details(entry) if tool is LayerBuildToolEnum.uv else _poetry_details(entry, data)
        if details[2] is not None:
            by_path[os.path.normpath(details[2])] = (pkg, version)
    lines, _options = _parse_lines(export_text, f"{name} (exported)")
    packages: list[RuntimePackage] = []
    for line in lines:
        if not _applies(line, target, name):
            continue
        packages.append(_export_package(line, index, by_path, data, tool=tool, dir_lock=dir_lock, name=name))
    return _sorted_set(packages)


def _export_package(
    line: _Line,
    index: Mapping[tuple[str, str], dict[str, Any]],
    by_path: Mapping[str, tuple[str, str]],
    data: Mapping[str, Any],
    *,
    tool: LayerBuildToolEnum,
    dir_lock: Path,
    name: str,
) -> RuntimePackage:
    req = line.requirement
    if req is None or (req.url and req.url.startswith("file:")):
        raw = line.path if req is None else urlsplit(str(req.url)).path
        folder = Path(unquote(str(raw)))
        folder = folder if folder.is_absolute() else dir_lock / folder
        rel = os.path.normpath(os.path.relpath(folder, dir_lock))
        found = by_path.get(rel) or (
            (canonicalize_name(req.name), _version_of(index, canonicalize_name(req.name))) if req else None
        )
        if found is None:
            raise ManifestError(f"{name}: the local source {rel} is not a package of the lock")
        return RuntimePackage(
            name=found[0], version=found[1], source=f"path:{PurePosixPath(*Path(rel).parts)}", build_from=str(folder)
        )
    cname = canonicalize_name(req.name)
    if req.url:
        version = _version_of(index, cname)
        if req.url.startswith("git+"):
            source, build_from = _git_source(req.url, _locked_git_commit(index.get((cname, version))))
            return RuntimePackage(name=cname, version=version, source=source, hashes=line.hashes, build_from=build_from)
        raise ManifestError(
            f"{name}: {req.name} comes from a URL ({mask_url_credentials(req.url)}); a layer installs from indexes, folders and git commits"
        )
    version = _pinned_version(req, f"{name} (exported)")
    entry = index.get((cname, version)) or index.get((cname, _version_of(index, cname, version)))
    source, filenames = "", None
    if entry is not None:
        source, filenames, _folder, _git = (
            _uv_details(entry) if tool is LayerBuildToolEnum.uv else _poetry_details(entry, data)
        )
    return RuntimePackage(name=cname, version=version, source=source, hashes=line.hashes, filenames=filenames)


def _version_of(index: Mapping[tuple[str, str], Any], cname: str, version: str | None = None) -> str:
    """The locked version of ``cname`` (equal as a Version to ``version`` when given)."""
    for pkg, locked in index:
        if pkg != cname:
            continue
        if version is None:
            return locked
        try:
            if Version(locked) == Version(version):
                return locked
        except InvalidVersion:
            continue
    return version or ""


# ---------------------------------------------------------------------------- TOML
@functools.lru_cache(maxsize=8)
def _parse_toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def _load_toml(text: str, name: str) -> dict[str, Any]:
    """Parsed TOML, shared between the readers of one lock (a big lock takes tens of ms): read-only."""
    try:
        return _parse_toml(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:  # RecursionError: arrays nested thousands deep
        raise ManifestError(f"{name} is not valid TOML: {e}") from None


def _first_line(error: Exception) -> str:
    """packaging's own message, without the line it quotes and the caret under it."""
    return (str(error).splitlines() or [type(error).__name__])[0].strip()


def poetry_content_hash(pyproject: Mapping[str, Any]) -> str:
    """The ``content-hash`` poetry (>= 2.3; 1.x for a pyproject without [project]) records for a pyproject.

    Used only to hand a scratch copy to poetry: a poetry 1.x project whose pyproject poetry 2 no
    longer loads as written, and a recorded lock read against the current pyproject.
    """
    project = pyproject.get("project", {}) or {}
    groups = pyproject.get("dependency-groups", {}) or {}
    poetry = pyproject.get("tool", {}).get("poetry", {}) or {}
    legacy = ("dependencies", "source", "extras", "dev-dependencies")
    relevant_project = {
        k: project[k]
        for k in ("requires-python", "dependencies", "optional-dependencies")
        if project.get(k) is not None
    }
    relevant_poetry = {}
    for key in (*legacy, "group"):
        data = poetry.get(key)
        if data is None and (key not in legacy or relevant_project or groups):
            continue
        relevant_poetry[key] = data
    content: dict[str, Any] = {}
    if relevant_project:
        content["project"] = relevant_project
    if groups:
        content["dependency-groups"] = groups
    if content:
        content["tool"] = {"poetry": relevant_poetry}
    else:
        content = relevant_poetry
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


#: Poetry 1.x source keys poetry 2 refuses, and what poetry 2 calls them.
_POETRY1_SOURCE_KEYS = (
    (re.compile(r"^(\s*)default\s*=\s*true\s*$", re.M), r'\1priority = "primary"'),
    (re.compile(r"^(\s*)secondary\s*=\s*true\s*$", re.M), r'\1priority = "supplemental"'),
    (re.compile(r"^(\s*)(default|secondary)\s*=\s*false\s*$", re.M), r""),
)


def _poetry1_pyproject_for_poetry2(text: str) -> str:
    for pattern, replacement in _POETRY1_SOURCE_KEYS:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------- where the lock is
def find_uv_lock(dir_project: Path) -> Path | None:
    """The uv.lock of a project: its own, or its workspace root's (the nearest one above it)."""
    for folder in (dir_project, *dir_project.parents):
        candidate = folder / LayerBuildToolEnum.uv.manifest_name
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def _read_toml_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"cannot read {path}: {e.strerror or e}") from None
    return _load_toml(_decode(raw, str(path)), str(path))


#: Local sources in a uv lock (``source = { editable = "libs/x" }``) and in a poetry lock
#: (``type = "directory"`` then ``url = "../x"``); found by pattern, so a cache hit parses no TOML.
_LOCAL_SOURCE_UV = re.compile(r'\{ (?:editable|directory|virtual|path) = "([^"]+)"')
_LOCAL_SOURCE_POETRY = re.compile(r'type = "directory"\r?\nurl = "([^"]+)"')


def _local_pyprojects(lock_text: str, dir_lock: Path) -> list[Path]:
    """pyproject.toml files of the local sources a lock names (found by pattern: no TOML parse)."""
    found = set()
    for m in (*_LOCAL_SOURCE_UV.finditer(lock_text), *_LOCAL_SOURCE_POETRY.finditer(lock_text)):
        rel = m.group(1)
        candidate = (dir_lock / rel / "pyproject.toml").resolve()
        if candidate.is_file():
            found.add(candidate)
    return sorted(found)


def _requires_python_uv(lock_text: str, name: str) -> str | None:
    m = re.search(r'^requires-python\s*=\s*"([^"]*)"', lock_text, re.M)
    return m.group(1) if m else None


def _requires_python_poetry(lock_text: str, name: str) -> str | None:
    m = re.search(r'^python-versions\s*=\s*"([^"]*)"', lock_text.split("[metadata]", 1)[-1], re.M)
    return poetry_constraint_to_pep440(m.group(1), name) if m else None


def poetry_constraint_to_pep440(constraint: str, where: str) -> str | None:
    """Poetry's ``^3.10``/``~3.10``/``>=3.9,<4``/``a || b`` as a PEP 440 specifier; ``None`` for a union.

    Used only for the plan-time python check; poetry itself validates the lock.
    """
    if "||" in constraint or "|" in constraint:
        return None  # a union has no PEP 440 form; poetry's own export filters by it
    parts: list[str] = []
    for piece in re.split(r"[,\s]+(?=[<>=!~^*\d])", constraint.strip()):
        piece = piece.strip().rstrip(",")
        if piece in ("", "*"):
            continue
        try:
            if piece.startswith("^"):
                v = Version(piece[1:])
                rel = list(v.release) + [0] * (3 - len(v.release))
                idx = next((i for i, x in enumerate(rel) if x != 0), len(rel) - 1)
                upper = rel[: idx + 1]
                upper[-1] += 1
                parts += [f">={piece[1:]}", "<" + ".".join(map(str, upper))]
            elif piece.startswith("~") and not piece.startswith("~="):
                v = Version(piece[1:])
                upper = list(v.release[:2]) if len(v.release) >= 2 else [v.release[0]]
                upper[-1] += 1
                parts += [f">={piece[1:]}", "<" + ".".join(map(str, upper))]
            elif piece[0].isdigit():
                parts.append(f"=={piece}")
            else:
                parts.append(piece)
        except (InvalidVersion, IndexError):
            raise ManifestError(f"{where}: cannot read the python constraint {constraint!r}") from None
    text = ",".join(parts)
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        raise ManifestError(f"{where}: cannot read the python constraint {constraint!r}") from None
    return text


def _project_requires_python(pyproject: Mapping[str, Any], where: str) -> str | None:
    project = pyproject.get("project", {})
    value = project.get("requires-python") if isinstance(project, dict) else None
    if value is not None and not isinstance(value, str):
        raise ManifestError(f"{where}: [project] requires-python must be a string")
    return value


def _check_project_table(path: Path) -> None:
    """The [project] table's runtime requirements read with ``packaging`` before uv or poetry sees them:
    on a bad one uv falls back to building the project (the build backend's traceback, an index login)
    and poetry blames its lock, while the fault is this file's."""
    project = _read_toml_file(path).get("project", {})
    if not isinstance(project, dict):
        raise ManifestError(f"{path}: [project] must be a table")
    for key in ("name", "version"):
        if key in project and not isinstance(project[key], str):
            raise ManifestError(f"{path}: [project] {key} must be a string")
    groups = project.get("optional-dependencies", {})
    if not isinstance(groups, dict):
        raise ManifestError(f"{path}: [project] optional-dependencies must be a table of lists")
    for where, declared in [("dependencies", project.get("dependencies", []))] + list(groups.items()):
        if not isinstance(declared, list) or not all(isinstance(text, str) for text in declared):
            raise ManifestError(f"{path}: [project] {where} must be a list of strings")
        for text in declared:
            try:
                Requirement(text)
            except InvalidRequirement as e:
                raise ManifestError(f"{path}: cannot read requirement {text!r}: {_first_line(e)}") from None


def _check_pins_satisfy(
    pins: Mapping[str, str], pyproject: Mapping[str, Any], target: LayerTarget, *, name: str
) -> None:
    """requirements.txt has no tool to say it is stale: each runtime requirement of pyproject.toml
    whose marker holds for the target must be pinned to a version it allows."""
    project = pyproject.get("project", {})
    declared = project.get("dependencies", []) if isinstance(project, dict) else []
    if not isinstance(declared, list):
        raise ManifestError("pyproject.toml: [project] dependencies must be a list of strings")
    env = target.marker_environment()
    for text in declared:
        try:
            req = Requirement(str(text))
        except InvalidRequirement as e:
            raise ManifestError(f"pyproject.toml: cannot read requirement {text!r}: {_first_line(e)}") from None
        if req.marker is not None and not _marker_applies(str(req.marker), env, "pyproject.toml"):
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            raise ManifestError(
                f"{name} is stale: pyproject.toml requires {req.name}, which is not pinned; update the pins"
            )
        if not req.specifier.contains(pinned, prereleases=True):
            raise ManifestError(
                f"{name} is stale: pyproject.toml requires {req}, but {pinned} is pinned; update the pins"
            )


# ---------------------------------------------------------------------------- diffs
@dataclasses.dataclass(frozen=True)
class PackageChanges:
    """What moved between two dependency sets: what a reviewer wants to see in a plan."""

    added: dict[str, str] = dataclasses.field(default_factory=dict)
    removed: dict[str, str] = dataclasses.field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One line per package, sorted by name: ``+ name 1.0``, ``- name 1.0``, ``~ name 1.0 -> 1.1``."""
        rows = [(n, f"+ {n} {v}") for n, v in self.added.items()]
        rows += [(n, f"- {n} {v}") for n, v in self.removed.items()]
        rows += [(n, f"~ {n} {a} -> {b}") for n, (a, b) in self.changed.items()]
        return [line for _, line in sorted(rows)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": dict(self.added),
            "removed": dict(self.removed),
            "changed": {n: {"old": a, "new": b} for n, (a, b) in self.changed.items()},
        }


def diff_dependencies(old: Mapping[str, str], new: Mapping[str, str]) -> PackageChanges:
    return PackageChanges(
        added={n: new[n] for n in sorted(new.keys() - old.keys())},
        removed={n: old[n] for n in sorted(old.keys() - new.keys())},
        changed={n: (old[n], new[n]) for n in sorted(old.keys() & new.keys()) if old[n] != new[n]},
    )
