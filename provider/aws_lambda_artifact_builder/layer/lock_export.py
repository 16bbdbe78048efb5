"""Reading a uv or poetry lock through the tool that wrote it: the commands, and what their failures mean.

The tools are the source of truth for what a lock means (see ``manifest``): a uv lock is read through
``uv export --locked --no-default-groups --no-emit-project`` (``--locked`` is uv's own staleness check),
a poetry lock through ``poetry check --lock`` then ``poetry export --only main`` (poetry-plugin-export).
Their requirements lines are turned into a runtime set by ``runtime_set.export_runtime_set`` (pure).

Every command goes through the ``CommandRunner`` the caller gives (``runner``); the tool's words on
failure become a ``ManifestError`` that names the stale file, the missing interpreter or the bad
pyproject.toml. A poetry 1.x project and a recorded lock body are exported from a scratch copy.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..constants import LayerBuildToolEnum
from ..errors import ManifestError, mask_url_credentials
from .foundation import LayerPathLayout
from .runner import SUBPROCESS, CommandResult, CommandRunner
from .runtime_set import (
    RuntimeSet,
    _check_project_table,
    _check_python,
    _load_toml,
    _local_pyprojects,
    _poetry1_pyproject_for_poetry2,
    _requires_python_poetry,
    _requires_python_uv,
    export_runtime_set,
    poetry_content_hash,
)
from .target import LayerTarget

__all__ = [
    "POETRY_EXPORT_ENV",
    "TOOL_INSTALL_HINTS",
    "UV_EXPORT_ENV",
    "export_lock_runtime_set",
    "find_tool",
    "missing_tool_message",
    "tool_with_identity",
]


# ---------------------------------------------------------------------------- running the tools
def find_tool(name: str) -> str | None:
    """The tool installed next to this Python (``.venv/bin/uv``), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


#: The command that installs each tool next to this package (uv is a dependency, poetry an extra).
TOOL_INSTALL_HINTS = {
    "uv": "pip install uv (it comes with aws-lambda-artifact-builder: reinstall the package)",
    "poetry": "pip install 'poetry>=2.5' poetry-plugin-export (the package's [poetry] extra)",
    "pip": "python -m ensurepip",
}


def missing_tool_message(name: str) -> str:
    """One line naming where the tool was looked for and the command that installs it."""
    hint = TOOL_INSTALL_HINTS.get(name, f"pip install {name}")
    return f"{name} is not installed next to {sys.executable} nor on PATH; install it with: {hint}"


def _require_tool(name: str, why: str) -> str:
    found = find_tool(name)
    if not found:
        raise ManifestError(f"{missing_tool_message(name)} (it is needed to {why})")
    return found


def tool_with_identity(name: str, why: str) -> tuple[str, str]:
    """The tool (as ``find_tool``) and which build of it runs, without running it: path, size, mtime.
    One ``stat`` when it sits next to this Python (a plan asks on every call)."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    try:
        st = os.stat(beside)
        found = beside
    except OSError:
        found = _require_tool(name, why)
        st = os.stat(found)
    return found, f"{found}:{st.st_size}:{st.st_mtime_ns}"


#: What uv and poetry are given on top of this process's environment when they read a lock.
UV_EXPORT_ENV = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
POETRY_EXPORT_ENV = {"POETRY_VIRTUALENVS_CREATE": "false"}


def _run_tool(
    argv: Sequence[str], cwd: Path, runner: CommandRunner, env: Mapping[str, str] | None = None
) -> CommandResult:
    child = dict(os.environ)
    child.update(env or {})
    try:
        return runner.run(argv, cwd=cwd, env=child)
    except OSError as e:
        raise ManifestError(f"could not run {argv[0]}: {e.strerror or e}") from None


#: A TOML reader's quote of the bad line (``4 | name = ...``) and its carets: drawing, not words.
_QUOTED_LINE = re.compile(r"^(\d+\s*)?\|")


def _tool_message(result: CommandResult) -> str:
    text = mask_url_credentials((result.stderr or "") + "\n" + (result.stdout or ""))
    skip = ("Using CPython", "Resolved ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(skip)]
    lines = [ln for ln in lines if not _QUOTED_LINE.match(ln) and ln.strip("^ ")]
    return " ".join(lines[-4:])[:600]


def _uv_export(
    uv: str, dir_project: Path, path_lock: Path, runner: CommandRunner, *, check: bool, offline: bool = True
) -> str:
    """``uv export`` of the runtime set (no dependency group, not the project), offline first: reading
    a lock needs only local files, except for locks uv checks against an index's metadata
    (constraints, overrides), which are then checked online."""
    argv = [uv, "export", "--locked" if check else "--frozen", "--no-default-groups", "--no-emit-project"]
    argv += ["--no-header", "--no-annotate", "--format", "requirements-txt"] + (["--offline"] if offline else [])
    result = _run_tool(argv, dir_project, runner, UV_EXPORT_ENV)
    if result.returncode == 0:
        return result.stdout
    said = _tool_message(result)
    if "needs to be updated" in said:
        raise ManifestError(f"{path_lock} is stale: uv says: {said}")
    stale = ManifestError(
        f"{path_lock} is stale: it does not satisfy pyproject.toml (uv export --locked: {said}); {LayerBuildToolEnum.uv.lock_hint}"
    )
    if offline and "network was disabled" in said:
        try:
            return _uv_export(uv, dir_project, path_lock, runner, check=check, offline=False)
        except ManifestError as online:
            if " is stale" in str(online):
                raise
            raise stale from None  # the index could not be asked (login, network): uv's offline verdict
    if "No solution found" in said or "unsatisfiable" in said:
        raise stale
    if re.search(r"interpreter|pyenv|no python|python.*not found", said, re.I):
        # uv checks a lock only with an interpreter that requires-python allows, and never downloads
        # one here: reading the lock unchecked (--frozen) would let a stale lock through.
        spec = _requires_python_uv(path_lock.read_text(encoding="utf-8", errors="replace"), str(path_lock))
        said = next((ln.strip() for ln in (result.stderr or "").splitlines() if ln.startswith("error:")), said)
        raise ManifestError(
            f"{path_lock}: uv checks the lock with a Python that requires-python allows ({spec or 'any'}) and finds "
            f"none on this machine (uv says: {said[:200]}); install one (`uv python install`) or set UV_PYTHON to one"
        )
    if re.search(r"^error: Failed to parse:? `?pyproject\.toml", result.stderr or "", re.M):
        raise ManifestError(f"{dir_project / 'pyproject.toml'}: uv cannot read it: {said}")
    raise ManifestError(f"{path_lock}: `uv export` refused the lock: {said}")


def _poetry_export(
    poetry: str, dir_project: Path, path_lock: Path, runner: CommandRunner, *, legacy_fallback: bool = True
) -> str:
    argv = [poetry, "export", "--format", "requirements.txt", "--only", "main", "--no-interaction", "--no-ansi"]
    result = _run_tool(argv, dir_project, runner, POETRY_EXPORT_ENV)
    if result.returncode != 0:
        said = _tool_message(result)
        if legacy_fallback and "configuration is invalid" in said and "source" in said:
            return _poetry1_export(poetry, dir_project, path_lock, said, runner)
        if legacy_fallback and "not compatible with the current version" in said:
            lock_text = path_lock.read_text(encoding="utf-8")
            if re.search(r"^lock-version\s*=", lock_text, re.M) is None and "\n[metadata]\n" in lock_text:
                # A lock of poetry < 1.1 (no lock-version): poetry 2 reads it as lock-version 1.0.
                versioned = lock_text.replace("\n[metadata]\n", '\n[metadata]\nlock-version = "1.0"\n', 1)
                return _poetry_scratch_export(poetry, dir_project, path_lock, None, versioned, runner)
        if "export" in said and ("does not exist" in said or "not defined" in said):
            raise ManifestError(
                f"{path_lock}: poetry has no export command; install it with: "
                "pip install poetry-plugin-export (next to poetry; the package's [poetry] extra brings both)"
            )
        if "changed significantly" in said or "poetry lock" in said:
            raise ManifestError(f"{path_lock} is stale: poetry says: {said}")
        raise ManifestError(f"{path_lock}: `poetry export` refused the lock: {said}")
    return result.stdout


def export_lock_runtime_set(
    tool: LayerBuildToolEnum,
    exe: str,
    layout: LayerPathLayout,
    path_lock: Path,
    target: LayerTarget,
    lock_text: str,
    *,
    real_lock: bool,
    runner: CommandRunner = SUBPROCESS,
) -> RuntimeSet:
    """The runtime set of a uv or poetry lock for the target, as the tool ``exe`` exports it: the
    project's lock checked for staleness, or a recorded lock body (``real_lock=False``) read as of
    the project's current pyproject files."""
    if tool is LayerBuildToolEnum.uv:
        _check_python(_requires_python_uv(lock_text, str(path_lock)), target, str(path_lock), "requires-python")
    else:
        _check_python(_requires_python_poetry(lock_text, str(path_lock)), target, str(path_lock), "poetry's python")
    if real_lock:
        _check_project_table(layout.dir_project_root / "pyproject.toml")
        export = _export(tool, exe, layout.dir_project_root, path_lock, runner, check=True)
    else:
        export = _export_recorded(tool, exe, layout, path_lock, lock_text, runner)
    return export_runtime_set(export, lock_text, target, tool=tool, dir_lock=path_lock.parent, name=str(path_lock))


def _poetry1_export(poetry: str, dir_project: Path, path_lock: Path, said: str, runner: CommandRunner) -> str:
    """A poetry 1.x project (sources with ``default``/``secondary``), which poetry 2 refuses to load:
    its lock is checked against poetry's content hash of the pyproject as written, then exported by
    poetry from a scratch copy whose sources use poetry 2's names."""
    path_pyproject = dir_project / "pyproject.toml"
    text = path_pyproject.read_text(encoding="utf-8")
    lock_text = path_lock.read_text(encoding="utf-8")
    recorded = re.search(r'^content-hash\s*=\s*"([^"]*)"', lock_text, re.M)
    if recorded is None or recorded.group(1) != poetry_content_hash(_load_toml(text, str(path_pyproject))):
        raise ManifestError(
            f"{path_lock} is stale: pyproject.toml changed since it was locked; {LayerBuildToolEnum.poetry.lock_hint}"
        )
    converted = _poetry1_pyproject_for_poetry2(text)
    if converted == text:
        raise ManifestError(f"{path_lock}: `poetry export` refused the project: {said}")
    fresh = poetry_content_hash(_load_toml(converted, "pyproject.toml"))
    lock_text = re.sub(r'^content-hash\s*=\s*"[^"]*"', f'content-hash = "{fresh}"', lock_text, count=1, flags=re.M)
    return _poetry_scratch_export(poetry, dir_project, path_lock, converted, lock_text, runner)


def _poetry_scratch_export(
    poetry: str, dir_project: Path, path_lock: Path, pyproject_text: str | None, lock_text: str, runner: CommandRunner
) -> str:
    """``poetry export`` of a copy of the project with the given pyproject.toml and lock texts."""
    with tempfile.TemporaryDirectory(prefix="alab-poetry-") as tmp:
        scratch = Path(tmp) / dir_project.name
        shutil.copytree(dir_project, scratch, ignore=shutil.ignore_patterns("build", ".venv", ".git", "node_modules"))
        if pyproject_text is not None:
            (scratch / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
        (scratch / path_lock.name).write_text(lock_text, encoding="utf-8")
        export = _poetry_export(poetry, scratch, path_lock, runner, legacy_fallback=False)
        return _unscratch(export, scratch, dir_project)


def _unscratch(export: str, scratch: Path, real: Path) -> str:
    """An export made in a scratch copy, with the copy's absolute paths (poetry's path dependencies)
    pointing back at the real folders."""
    return export.replace(scratch.as_uri(), real.resolve().as_uri()).replace(str(scratch), str(real.resolve()))


def _poetry_check(poetry: str, dir_project: Path, path_lock: Path, runner: CommandRunner) -> bool:
    """``poetry check --lock`` in the project folder itself (a copy would lack the readme and packages
    pyproject.toml names); ``False`` for a poetry 1.x project poetry 2 cannot load (see ``_poetry1_export``)."""
    result = _run_tool([poetry, "check", "--lock", "--no-interaction", "--no-ansi"], dir_project, runner)
    if result.returncode == 0:
        return True
    said = _tool_message(result)
    if "configuration is invalid" in said and "source" in said:
        return False
    if "poetry lock" in said or "changed significantly" in said:
        raise ManifestError(f"{path_lock} is stale: poetry says: {said}")
    # poetry check validates pyproject.toml (a stale lock was named above): the fault is in that file.
    raise ManifestError(f"{dir_project / 'pyproject.toml'}: `poetry check --lock` refused the project: {said}")


def _export(
    tool: LayerBuildToolEnum, exe: str, dir_project: Path, path_lock: Path, runner: CommandRunner, *, check: bool
) -> str:
    if tool is LayerBuildToolEnum.uv:
        return _uv_export(exe, dir_project, path_lock, runner, check=check)
    if check:
        _poetry_check(exe, dir_project, path_lock, runner)
    return _poetry_export(exe, dir_project, path_lock, runner)


def _export_recorded(
    tool: LayerBuildToolEnum, exe: str, layout: LayerPathLayout, path_lock: Path, lock_text: str, runner: CommandRunner
) -> str:
    """Export a recorded lock body against the project's current pyproject files, in a scratch copy.

    uv reads it ``--frozen``; poetry's freshness check is given the local lock's content hash, so
    the recorded lock is read as of the current pyproject.toml.
    """
    dir_lock = path_lock.parent
    pyprojects = [dir_lock / "pyproject.toml", layout.path_pyproject_toml, *_local_pyprojects(lock_text, dir_lock)]
    pyprojects = [p.resolve() for p in pyprojects if p.is_file()]
    base = Path(os.path.commonpath([dir_lock.resolve(), *(p.parent for p in pyprojects)]))
    with tempfile.TemporaryDirectory(prefix="alab-recorded-") as tmp:
        root = Path(tmp)
        for p in pyprojects:
            dest = root / p.relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dest)
            for readme in ("README.md", "README.rst", "README"):
                if (p.parent / readme).is_file():
                    shutil.copyfile(p.parent / readme, dest.parent / readme)
        text = lock_text
        if tool is LayerBuildToolEnum.poetry and path_lock.is_file():
            local = re.search(
                r'^content-hash\s*=\s*"[^"]*"', path_lock.read_text(encoding="utf-8", errors="replace"), re.M
            )
            if local:
                text = re.sub(r'^content-hash\s*=\s*"[^"]*"', local.group(0), text, count=1, flags=re.M)
        (root / dir_lock.resolve().relative_to(base) / path_lock.name).write_text(text, encoding="utf-8")
        project = root / layout.dir_project_root.resolve().relative_to(base)
        return _unscratch(_export(tool, exe, project, path_lock, runner, check=False), root, base)
