"""The manifest model: the runtime dependency set a lock pins, its fingerprint, and diffs.

Pure code over file contents. The fingerprint decides whether a new layer version is
published, so it covers exactly what changes the layer's bytes and nothing that does not
(line endings, trailing whitespace, logins inside index URLs, absolute paths).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..constants import DEFAULT_EXCLUDED_PACKAGES, LayerBuildToolEnum
from ..errors import ManifestError
from .foundation import LayerPathLayout, coerce_tool, mask_url_credentials
from .target import LayerTarget

#: Bump when the canonical record below changes meaning, so old records never match new ones.
FINGERPRINT_FORMAT_VERSION = 1

DependencySet = dict[str, str]


def normalize_manifest_text(content: bytes | str) -> str:
    """Manifest text with what cannot change the layer removed: BOM, CR, trailing blanks, URL logins."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return mask_url_credentials("\n".join(lines) + "\n")


def normalize_excluded_packages(ignore_packages: Iterable[str] | None) -> tuple[str, ...]:
    """Sorted canonical names of the excluded distributions; ``None`` means the defaults."""
    names = DEFAULT_EXCLUDED_PACKAGES if ignore_packages is None else ignore_packages
    if isinstance(names, str):
        raise ManifestError(f"ignore_packages must be a list of names, not the string {names!r}")
    return tuple(sorted({canonicalize_name(str(n)) for n in names}))


def compute_fingerprint(
    *,
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    python_version: str,
    architecture: str,
    ignore_packages: Iterable[str] | None = None,
    packaging_options: Mapping[str, Any] | None = None,
) -> str:
    """sha256 of a canonical record of everything that decides the layer's bytes."""
    target = LayerTarget(python_version=python_version, architecture=architecture)
    record = {
        "format": FINGERPRINT_FORMAT_VERSION,
        "tool": coerce_tool(tool).value,
        "manifest": normalize_manifest_text(manifest_content),
        "python_version": target.python_version,
        "architecture": target.architecture,
        "excluded": list(normalize_excluded_packages(ignore_packages)),
        "packaging": dict(sorted((packaging_options or {}).items())),
    }
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- markers
def _marker_applies(marker: str | None, env: Mapping[str, str], where: str) -> bool:
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(dict(env))
    except InvalidMarker as e:
        raise ManifestError(f"{where}: invalid environment marker {marker!r}: {e}") from None


# ---------------------------------------------------------------------------- requirements.txt
def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Lines with backslash continuations joined and comments dropped, numbered from 1."""
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


def parse_requirements_txt(text: str, target: LayerTarget, *, name: str = "requirements.txt") -> DependencySet:
    """Pinned ``name==version`` lines whose markers hold for the target; anything unpinned is an error."""
    deps: DependencySet = {}
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            if option in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
                raise ManifestError(f"{name}:{number}: {option} is not supported in a layer manifest; inline the pins")
            continue  # index options, --hash on its own line, --only-binary and friends
        spec = line.split(" --")[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as e:
            raise ManifestError(f"{name}:{number}: cannot read requirement {mask_url_credentials(spec)!r}: {e}") from None
        if req.url:
            raise ManifestError(f"{name}:{number}: {req.name} comes from a URL; pin it to a version from an index")
        pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if len(pins) != 1 or len(req.specifier) != 1:
            raise ManifestError(f"{name}:{number}: {req.name} is not pinned to one version (write {req.name}==X.Y)")
        if not _marker_applies(str(req.marker) if req.marker else None, target.marker_environment(), f"{name}:{number}"):
            continue
        deps[canonicalize_name(req.name)] = pins[0].version
    return deps


# ---------------------------------------------------------------------------- uv.lock
@functools.lru_cache(maxsize=8)
def _parse_toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def _load_toml(text: str, name: str) -> dict[str, Any]:
    """Parsed TOML, shared between the readers of one lock (a big lock takes tens of ms): read-only."""
    try:
        return _parse_toml(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{name} is not valid TOML: {e}") from None


def _uv_root_packages(packages: list[dict[str, Any]], project_name: str | None) -> list[dict[str, Any]]:
    if project_name:
        wanted = canonicalize_name(project_name)
        roots = [p for p in packages if canonicalize_name(p.get("name", "")) == wanted]
        if roots:
            return roots
    return [p for p in packages if p.get("source", {}).get("virtual") == "." or p.get("source", {}).get("editable") == "."]


def parse_uv_lock(
    text: str, target: LayerTarget, *, project_name: str | None = None, name: str = "uv.lock"
) -> DependencySet:
    """The project's runtime closure in a uv lock, following markers and extras for the target."""
    data = _load_toml(text, name)
    packages: list[dict[str, Any]] = data.get("package", [])
    env = target.marker_environment()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for pkg in packages:
        by_name.setdefault(canonicalize_name(pkg["name"]), []).append(pkg)

    def pick(dep: dict[str, Any]) -> dict[str, Any]:
        candidates = by_name.get(canonicalize_name(dep["name"]), [])
        if "version" in dep:
            candidates = [p for p in candidates if p.get("version") == dep["version"]] or candidates
        if len(candidates) > 1:
            fitting = [
                p
                for p in candidates
                if any(_marker_applies(m, env, name) for m in p.get("resolution-markers", [""]))
            ]
            candidates = fitting or candidates
        if not candidates:
            raise ManifestError(f"{name}: {dep['name']} is required but not locked; run `uv lock`")
        return candidates[0]

    roots = _uv_root_packages(packages, project_name)
    if not roots:
        raise ManifestError(f"{name}: no project package (source = virtual or editable '.') in the lock")
    root_names = {canonicalize_name(p["name"]) for p in roots}
    deps: DependencySet = {}
    queue: list[tuple[dict[str, Any], list[str]]] = [(r, []) for r in roots]
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    while queue:
        pkg, extras = queue.pop()
        key = (canonicalize_name(pkg["name"]), str(pkg.get("version")), tuple(sorted(extras)))
        if key in seen:
            continue
        seen.add(key)
        if key[0] not in root_names:
            deps[key[0]] = str(pkg.get("version"))
        edges = list(pkg.get("dependencies", []))
        for extra in extras:
            edges += pkg.get("optional-dependencies", {}).get(extra, [])
        for dep in edges:
            if _marker_applies(dep.get("marker"), env, name):
                queue.append((pick(dep), list(dep.get("extra", []))))
    return deps


# ---------------------------------------------------------------------------- poetry.lock
def parse_poetry_lock(
    text: str, target: LayerTarget, *, main_requirements: list[str] | None = None, name: str = "poetry.lock"
) -> DependencySet:
    """Packages of the ``main`` group whose markers hold for the target.

    Poetry 2 records each package's groups and markers; older locks (no ``groups``) are
    walked from ``main_requirements``, the project's declared runtime dependencies.
    """
    data = _load_toml(text, name)
    packages: list[dict[str, Any]] = data.get("package", [])
    env = target.marker_environment()
    deps: DependencySet = {}
    if packages and all("groups" in p for p in packages):
        for pkg in packages:
            if pkg.get("optional") or "main" not in pkg["groups"]:
                continue
            markers = pkg.get("markers")
            marker = markers.get("main") if isinstance(markers, dict) else markers
            if _marker_applies(marker, env, name):
                deps[canonicalize_name(pkg["name"])] = str(pkg["version"])
        return deps
    if packages and all("category" in p for p in packages):
        return {
            canonicalize_name(p["name"]): str(p["version"])
            for p in packages
            if p["category"] == "main" and not p.get("optional")
        }
    by_name = {canonicalize_name(p["name"]): p for p in packages}
    queue = list(main_requirements or [])
    if main_requirements is None:
        return {n: str(p["version"]) for n, p in by_name.items() if not p.get("optional")}
    while queue:
        req = Requirement(queue.pop())
        if req.marker and not req.marker.evaluate(dict(env)):
            continue
        cname = canonicalize_name(req.name)
        if cname in deps:
            continue
        locked = by_name.get(cname)
        if locked is None:
            raise ManifestError(f"{name}: {req.name} is required but not locked; run `poetry lock`")
        deps[cname] = str(locked["version"])
        for dep_name, constraint in locked.get("dependencies", {}).items():
            marker = constraint.get("markers") if isinstance(constraint, dict) else None
            if isinstance(constraint, dict) and constraint.get("optional"):
                continue
            queue.append(dep_name + (f"; {marker}" if marker else ""))
    return deps


# ---------------------------------------------------------------------------- pyproject
def _poetry_constraint_to_pep440(constraint: str) -> str:
    """Poetry's ``^1.2``/``~1.2``/``1.2``/``*`` as a PEP 440 specifier (enough to check a pin)."""
    parts = []
    for piece in constraint.split(","):
        piece = piece.strip()
        if piece in ("", "*"):
            continue
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
    return ",".join(parts)


def declared_runtime_requirements(pyproject: Mapping[str, Any]) -> list[str]:
    """The project's runtime requirements as PEP 508 strings, from PEP 621 or poetry's own table."""
    reqs = list(pyproject.get("project", {}).get("dependencies", []))
    poetry_deps = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
    for dep_name, constraint in poetry_deps.items():
        if dep_name.lower() == "python":
            continue
        if isinstance(constraint, dict):
            if constraint.get("optional") or "version" not in constraint:
                continue
            marker = constraint.get("markers")
            constraint = constraint["version"]
        else:
            marker = None
        spec = _poetry_constraint_to_pep440(str(constraint))
        reqs.append(dep_name + spec + (f"; {marker}" if marker else ""))
    return reqs


def check_lock_satisfies(
    locked: Mapping[str, str], requirements: Iterable[str], target: LayerTarget, *, name: str, fix: str
) -> None:
    """A stale lock (a declared requirement missing or unmet) is an error naming file and package."""
    env = target.marker_environment()
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise ManifestError(f"pyproject.toml: cannot read requirement {text!r}: {e}") from None
        if req.marker and not req.marker.evaluate(dict(env)):
            continue
        cname = canonicalize_name(req.name)
        if cname not in locked:
            raise ManifestError(f"{name} is stale: pyproject.toml requires {req.name}, which is not locked; {fix}")
        try:
            ok = SpecifierSet(str(req.specifier)).contains(Version(locked[cname]), prereleases=True)
        except (InvalidSpecifier, InvalidVersion):
            ok = False
        if not ok:
            raise ManifestError(
                f"{name} is stale: pyproject.toml requires {req}, but {locked[cname]} is locked; {fix}"
            )


def _uv_lock_requires_dist(text: str, project_name: str | None) -> set[tuple[str, str, str, tuple[str, ...]]] | None:
    data = _load_toml(text, "uv.lock")
    roots = _uv_root_packages(data.get("package", []), project_name)
    if len(roots) != 1:
        return None
    return {
        (
            canonicalize_name(r["name"]),
            str(SpecifierSet(r.get("specifier", ""))),
            str(Marker(r["marker"])) if r.get("marker") else "",
            tuple(sorted(r.get("extras", []))),
        )
        for r in roots[0].get("metadata", {}).get("requires-dist", [])
    }


def _pyproject_requires_dist(requirements: Iterable[str]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    out: set[tuple[str, str, str, tuple[str, ...]]] = set()
    for text in requirements:
        req = Requirement(text)
        out.add(
            (
                canonicalize_name(req.name),
                str(req.specifier),
                str(req.marker) if req.marker else "",
                tuple(sorted(req.extras)),
            )
        )
    return out


# ---------------------------------------------------------------------------- the local manifest
def runtime_dependencies(
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    target: LayerTarget,
    *,
    pyproject: Mapping[str, Any] | None = None,
) -> DependencySet:
    """The runtime dependency set a manifest pins for the target (also for manifests read from S3)."""
    tool = coerce_tool(tool)
    text = normalize_manifest_text(manifest_content)
    project_name = (pyproject or {}).get("project", {}).get("name") or (pyproject or {}).get("tool", {}).get(
        "poetry", {}
    ).get("name")
    if tool is LayerBuildToolEnum.pip:
        return parse_requirements_txt(text, target)
    if tool is LayerBuildToolEnum.uv:
        return parse_uv_lock(text, target, project_name=project_name)
    main = declared_runtime_requirements(pyproject) if pyproject is not None else None
    return parse_poetry_lock(text, target, main_requirements=main)


@dataclasses.dataclass(frozen=True)
class LocalManifest:
    """A project's manifest as read from disk, checked against its ``pyproject.toml``."""

    tool: LayerBuildToolEnum
    path: Path
    content: bytes
    dependencies: DependencySet

    @property
    def name(self) -> str:
        return self.path.name


def read_local_manifest(
    path_pyproject_toml: Path | str, tool: LayerBuildToolEnum | str, target: LayerTarget
) -> LocalManifest:
    """Read and check a project's manifest: missing, unpinned or stale is a clear error naming the file."""
    tool = coerce_tool(tool)
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    path = layout.get_path_manifest(tool)
    if not layout.path_pyproject_toml.is_file():
        raise ManifestError(f"pyproject.toml not found at {layout.path_pyproject_toml}")
    if not path.is_file():
        hint = {"pip": "pin your runtime dependencies in it", "poetry": "run `poetry lock`", "uv": "run `uv lock`"}
        raise ManifestError(f"{path.name} not found at {path}; {hint[tool.value]}")
    pyproject = _load_toml(layout.path_pyproject_toml.read_text(encoding="utf-8"), str(layout.path_pyproject_toml))
    content = path.read_bytes()
    try:
        deps = runtime_dependencies(tool, content, target, pyproject=pyproject)
    except ManifestError as e:
        raise ManifestError(f"{path}: {e}") from None
    declared = declared_runtime_requirements(pyproject)
    if tool is LayerBuildToolEnum.uv:
        project_name = pyproject.get("project", {}).get("name")
        recorded = _uv_lock_requires_dist(normalize_manifest_text(content), project_name)
        if recorded is not None and recorded != _pyproject_requires_dist(declared):
            raise ManifestError(
                f"{path} is stale: the dependencies in pyproject.toml changed since it was locked; run `uv lock`"
            )
    fix = {"pip": "update the pins", "poetry": "run `poetry lock`", "uv": "run `uv lock`"}[tool.value]
    check_lock_satisfies(deps, declared, target, name=str(path), fix=fix)
    return LocalManifest(tool=tool, path=path, content=content, dependencies=deps)


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
