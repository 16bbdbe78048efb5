"""Reading a project's manifest for a Lambda target: ``read_local_manifest`` and ``recorded_runtime_set``.

The tools that wrote a lock are the source of truth for what it means: a uv lock is read
through ``uv export --locked --no-default-groups --no-emit-project`` (``--locked`` is uv's own staleness
check; a function folder inside a workspace is exported from its own folder, which uv maps to
its member), a poetry lock through ``poetry export --only main`` (poetry-plugin-export checks
the lock is fresh); ``lock_export`` runs them. requirements.txt has no tool to ask and is read by
hand (``runtime_set`` says why). uv checks a lock only with a Python that ``requires-python`` allows;
without one the read is refused (never done ``--frozen``, which would let a stale lock through).

Reading a lock costs a tool run, so a runtime set is cached under ``build/lambda/`` by the digest of
everything it depends on, and a repeated read of unchanged files reads only a small index.

Where things are:

* ``runtime_set``: the values (``RuntimePackage``, ``RuntimeSet``), the fingerprint, diffs, and the pure
  parsers (requirements.txt, an export plus its lock's TOML, poetry's python constraints);
* ``lock_export``: the uv and poetry commands, run through a ``runner.CommandRunner``, and what
  their failures mean;
* here: ``LocalManifest``, the reading entry points (each takes ``runner=``, default ``runner.SUBPROCESS``)
  and the cache. Every name the other modules (and users) import from ``manifest`` is re-exported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..constants import LayerBuildToolEnum
from ..errors import LayerError, ManifestError
from .foundation import LayerPathLayout, coerce_tool
from .lock_export import (
    TOOL_INSTALL_HINTS,
    export_lock_runtime_set,
    find_tool,
    missing_tool_message,
    tool_with_identity,
)
from .runner import SUBPROCESS, CommandRunner
from .runtime_set import (
    FINGERPRINT_FORMAT_VERSION,
    INDEX_OPTIONS,
    DependencySet,
    PackageChanges,
    RuntimePackage,
    RuntimeSet,
    _check_pins_satisfy,
    _check_python,
    _decode,
    _local_pyprojects,
    _project_requires_python,
    _read_toml_file,
    compute_fingerprint,
    diff_dependencies,
    export_runtime_set,
    find_uv_lock,
    git_commit_of,
    legacy_fingerprint_v1,
    logical_lines,
    normalize_excluded_packages,
    normalize_manifest_text,
    parse_requirements_txt,
    poetry_constraint_to_pep440,
    poetry_content_hash,
    python_allowed,
    requirements_runtime_set,
)
from .source_tree import source_tree_digest, tree_signature
from .target import LayerTarget

#: Defined here, and the names of ``runtime_set`` and ``lock_export`` the package imports from ``manifest``.
__all__ = [
    "FINGERPRINT_FORMAT_VERSION",
    "INDEX_OPTIONS",
    "TOOL_INSTALL_HINTS",
    "DependencySet",
    "LocalManifest",
    "PackageChanges",
    "RuntimePackage",
    "RuntimeSet",
    "compute_fingerprint",
    "diff_dependencies",
    "export_runtime_set",
    "find_tool",
    "find_uv_lock",
    "git_commit_of",
    "legacy_fingerprint_v1",
    "logical_lines",
    "missing_tool_message",
    "normalize_excluded_packages",
    "normalize_manifest_text",
    "parse_requirements_txt",
    "poetry_constraint_to_pep440",
    "poetry_content_hash",
    "python_allowed",
    "read_local_manifest",
    "recorded_runtime_set",
    "requirements_runtime_set",
    "runtime_dependencies",
]

#: Bump when the cached runtime set changes shape.
_CACHE_FORMAT = 2


# ---------------------------------------------------------------------------- the local manifest
@dataclasses.dataclass(frozen=True)
class LocalManifest:
    """A project's manifest as read from disk and checked by its tool, with its runtime set.

    ``dependencies`` (canonical name -> version) and ``runtime_set_digest`` are what a plan needs;
    the full ``runtime_set`` and the manifest's ``content`` are loaded on first use (a build, a record).
    """

    tool: LayerBuildToolEnum
    path: Path
    dependencies: DependencySet
    runtime_set_digest: str
    _load: Any = dataclasses.field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.name

    @functools.cached_property
    def runtime_set(self) -> RuntimeSet:
        loaded = self._load()
        assert isinstance(loaded, RuntimeSet)
        return loaded

    @functools.cached_property
    def content(self) -> bytes:
        return self.path.read_bytes()


@dataclasses.dataclass(frozen=True)
class _Summary:
    """What a plan needs of a runtime set; ``load()`` gives the full set (for a build)."""

    dependencies: DependencySet
    digest: str
    load: Any


def _summary_of(runtime_set: RuntimeSet) -> _Summary:
    return _Summary(dependencies=runtime_set.dependencies, digest=runtime_set.digest, load=lambda: runtime_set)


def _cache_key(
    tool: LayerBuildToolEnum, target: LayerTarget, tool_id: str, files: Sequence[Path], extra: bytes = b""
) -> str:
    h = hashlib.sha256()
    h.update(f"{_CACHE_FORMAT}\0{tool.value}\0{target.python_version}\0{target.architecture}\0{tool_id}\0".encode())
    for path in files:
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    h.update(extra)
    return h.hexdigest()


def _dir_cache(layout: LayerPathLayout) -> Path:
    return layout.dir_build_lambda / "runtime-set-cache"


def _cache_load(dir_cache: Path, key: str) -> RuntimeSet | None:
    """The runtime set the tool exported for ``key`` (local sources without their contents)."""
    try:
        return RuntimeSet.from_json(json.loads((dir_cache / f"{key}.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _cache_put(dir_cache: Path, key: str, runtime_set: RuntimeSet) -> None:
    try:
        dir_cache.mkdir(parents=True, exist_ok=True)
        _write_atomic(dir_cache / f"{key}.json", runtime_set.to_json())
        for old in sorted(dir_cache.glob("*.json"), key=lambda p: p.stat().st_mtime)[:-64]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _signature(files: Sequence[Path | str]) -> list[list[Any]] | None:
    """What ``stat`` says of each file: a file rewritten since has another size, mtime or inode."""
    out: list[list[Any]] = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out.append([str(path), st.st_size, st.st_mtime_ns, st.st_ino])
    return out


def _stat_index_path(dir_cache: Path, tool: LayerBuildToolEnum, target: LayerTarget, path_lock: Path) -> Path:
    tag = hashlib.sha256(str(path_lock).encode()).hexdigest()[:12]
    return dir_cache / f"stat-{tool.value}-{target.python_version}-{target.architecture}-{tag}.json"


def _local_folders(runtime_set: RuntimeSet) -> list[str]:
    return sorted({p.build_from for p in runtime_set.packages if p.build_from and not p.build_from.startswith("git+")})


def _with_contents(runtime_set: RuntimeSet, contents: Mapping[str, str]) -> RuntimeSet:
    """The set with each local folder's ``content`` digest filled in."""
    if not contents:
        return runtime_set
    packages = (
        dataclasses.replace(p, content=contents[p.build_from])
        if p.build_from is not None and p.build_from in contents
        else p
        for p in runtime_set.packages
    )
    return RuntimeSet(packages=tuple(packages), index_options=runtime_set.index_options)


def _tree_states(folders: Iterable[str]) -> list[list[str]]:
    """``[folder, stat signature, content digest]`` of each local source folder."""
    return [[f, tree_signature(Path(f)), source_tree_digest(Path(f))] for f in folders]


def _stat_lookup(index: Path, tool_id: str, dir_cache: Path) -> _Summary | None:
    """The summary recorded for files (and local source trees) whose ``stat`` is unchanged: only
    the index is read, no lock, no export."""
    try:
        entry = json.loads(index.read_text(encoding="utf-8"))
        files, trees, key = entry["files"], entry["trees"], str(entry["key"])
        deps, digest = dict(entry["dependencies"]), str(entry["digest"])
        if entry.get("tool") != tool_id or _signature([row[0] for row in files]) != files:
            return None
        if any(tree_signature(Path(folder)) != sig for folder, sig, _ in trees):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    contents = {folder: content for folder, _, content in trees}

    def load() -> RuntimeSet:
        loaded = _cache_load(dir_cache, key)
        if loaded is None:
            raise ManifestError(f"the cached runtime set {dir_cache / key}.json is unreadable; delete {dir_cache}")
        return _with_contents(loaded, contents)

    return _Summary(dependencies=deps, digest=digest, load=load)


def _read_runtime_set(
    tool: LayerBuildToolEnum,
    layout: LayerPathLayout,
    path_lock: Path,
    target: LayerTarget,
    *,
    lock_bytes: bytes | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> _Summary:
    """The runtime set of a lock for the target, through the tool.

    Cached under ``build/lambda/runtime-set-cache`` by the digest of the lock, the pyproject files,
    the target and the tool's build; a repeated read of unchanged files (same ``stat``, local
    source trees included) reads only a small index, neither spawning the tool nor parsing the lock.
    Local sources get the digest of their files (``source_tree``), computed again when a tree's
    ``stat`` changes.
    """
    real_lock = lock_bytes is None
    if tool is LayerBuildToolEnum.pip:
        return _summary_of(_requirements_set(layout, path_lock, target, lock_bytes))
    exe, tool_id = tool_with_identity(tool.value, f"read {path_lock.name}")
    dir_cache = _dir_cache(layout)
    stat_index = _stat_index_path(dir_cache, tool, target, path_lock)
    if real_lock:
        hit = _stat_lookup(stat_index, tool_id, dir_cache)
        if hit is not None:
            return hit
    content = path_lock.read_bytes() if lock_bytes is None else lock_bytes
    lock_text = _decode(content, str(path_lock)) if real_lock else normalize_manifest_text(content)
    files = [path_lock, layout.path_pyproject_toml] if real_lock else [layout.path_pyproject_toml]
    if path_lock.parent != layout.dir_project_root and (path_lock.parent / "pyproject.toml").is_file():
        files.append(path_lock.parent / "pyproject.toml")
    files += [p for p in _local_pyprojects(lock_text, path_lock.parent) if p not in files]
    signature = _signature(files)
    extra = b"" if real_lock else b"recorded\0" + content
    key = _cache_key(tool, target, tool_id, files, extra)
    exported = _cache_load(dir_cache, key)
    if exported is None:
        exported = export_lock_runtime_set(
            tool, exe, layout, path_lock, target, lock_text, real_lock=real_lock, runner=runner
        )
        _cache_put(dir_cache, key, exported)
    trees = _tree_states(_local_folders(exported))
    runtime_set = _with_contents(exported, {folder: digest for folder, _, digest in trees})
    if real_lock and signature is not None and _signature(files) == signature:
        entry: dict[str, Any] = {"files": signature, "key": key, "tool": tool_id, "trees": trees}
        entry.update(dependencies=runtime_set.dependencies, digest=runtime_set.digest)
        with contextlib.suppress(OSError):
            _write_atomic(stat_index, entry)
    return _summary_of(runtime_set)


def _requirements_set(
    layout: LayerPathLayout, path_lock: Path, target: LayerTarget, lock_bytes: bytes | None
) -> RuntimeSet:
    """requirements.txt's runtime set (no tool to ask, so no cache: the file is small); a recorded
    body (``lock_bytes``) is not checked against pyproject.toml."""
    content = path_lock.read_bytes() if lock_bytes is None else lock_bytes
    text = _decode(content, str(path_lock))
    pyproject = _read_toml_file(layout.path_pyproject_toml)
    where = str(layout.path_pyproject_toml)
    _check_python(
        _project_requires_python(pyproject, where), target, str(path_lock), "requires-python in pyproject.toml"
    )
    runtime_set = requirements_runtime_set(text.replace("\r\n", "\n"), target, name=str(path_lock))
    if lock_bytes is None:
        _check_pins_satisfy(runtime_set.dependencies, pyproject, target, name=str(path_lock))
    return runtime_set


def read_local_manifest(
    path_pyproject_toml: Path | str,
    tool: LayerBuildToolEnum | str,
    target: LayerTarget,
    *,
    runner: CommandRunner = SUBPROCESS,
) -> LocalManifest:
    """Read and check a project's manifest with its tool: missing, stale, unpinned or excluding the target
    is a clear ``ManifestError`` naming the file."""
    tool = coerce_tool(tool)
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    if not layout.path_pyproject_toml.is_file():
        raise ManifestError(f"pyproject.toml not found at {layout.path_pyproject_toml}")
    path = layout.get_path_manifest(tool)
    if tool is LayerBuildToolEnum.uv and not path.is_file():
        path = find_uv_lock(layout.dir_project_root) or path
    if not path.is_file():
        raise ManifestError(f"{path.name} not found at {path}; {tool.lock_hint}")
    try:
        summary = _read_runtime_set(tool, layout, path, target, runner=runner)
    except ManifestError as e:
        text = str(e)
        raise ManifestError(text if str(path) in text else f"{path}: {text}") from None
    except (LayerError, OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ManifestError(f"{path}: cannot be read: {type(e).__name__}: {e}") from None
    return LocalManifest(
        tool=tool, path=path, dependencies=summary.dependencies, runtime_set_digest=summary.digest, _load=summary.load
    )


def recorded_runtime_set(
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    path_pyproject_toml: Path | str,
    target: LayerTarget,
    *,
    runner: CommandRunner = SUBPROCESS,
) -> RuntimeSet:
    """The runtime set of a manifest recorded in S3, read the same way as the local one (with the
    project's current pyproject files; the recorded lock is not checked for staleness)."""
    tool = coerce_tool(tool)
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    path = layout.get_path_manifest(tool)
    if tool is LayerBuildToolEnum.uv and not path.is_file():
        path = find_uv_lock(layout.dir_project_root) or path
    content = manifest_content.encode("utf-8") if isinstance(manifest_content, str) else manifest_content
    try:
        loaded = _read_runtime_set(tool, layout, path, target, lock_bytes=content, runner=runner).load()
        assert isinstance(loaded, RuntimeSet)
        return loaded
    except ManifestError as e:
        raise ManifestError(f"the recorded {path.name}: {e}") from None


def runtime_dependencies(
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    target: LayerTarget,
    *,
    pyproject: Mapping[str, Any] | None = None,
    path_pyproject_toml: Path | str | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> DependencySet:
    """The runtime set a manifest pins for the target (requirements.txt alone; a lock needs its project)."""
    tool = coerce_tool(tool)
    if tool is LayerBuildToolEnum.pip:
        text = normalize_manifest_text(manifest_content)
        return requirements_runtime_set(text, target).dependencies
    if path_pyproject_toml is None:
        raise ManifestError(f"reading a {tool.value} lock needs its project (path_pyproject_toml)")
    return recorded_runtime_set(tool, manifest_content, path_pyproject_toml, target, runner=runner).dependencies
