"""Build stage runner: install exactly a lock's runtime set, for a Lambda target, into ``python/`` on
this host. What to install and how is planned by ``install_plan`` (pure); this module runs it.

Every process is started through the ``runner`` a caller gives (``runner.CommandRunner``; every function
here that runs one takes ``runner=``, default ``runner.SUBPROCESS``), so a test with a fake runner sees
the exact commands of a build without running any: ``read_local_manifest``'s export, pip's config
probe, wheel builds and installs.

- ``run_command(argv, *, env, cwd, description, credentials, logger, explain, runner)`` is the only place the
  build stage starts a process: output streamed masked, a failure is a ``BuildError`` with its tail.
- ``run_install_steps(steps, *, credentials, logger, explain, secret_env)`` writes each step's files and
  runs its command with ``step.child_env(...)``; pip's transport settings (TLS, proxy, timeouts) come
  from pip itself (``pip_transport_env``), the rest of the user's config never reaches the install.
- ``check_installed(dir_python, pins, target)`` proves exactly the pinned distributions are installed
  and their own requirements are met.
- ``build_local_wheels(sources, target, dir_out, *, logger, credentials=None) -> list[LockedPin]`` builds
  local sources (workspace members, path dependencies, git commits) into wheels on the host;
  ``build_sdist_wheels`` builds pins the lock offers only as an sdist (pure wheels only).
- ``build_layer_artifacts_using_{pip,poetry,uv}_in_local`` / ``build_layer_artifacts_in_local``: the
  seed's public builders.

The planner's names (``InstallStep``, ``LockedPin``, ``plan_install_steps``, ...) are re-exported here
for the modules that imported them from ``build``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from ..errors import BuildError, LayerError, ManifestError
from ..progress import count_installer_line, forward_logs
from ..typehint import T_PRINTER
from .foundation import BaseLogger, Credentials, LayerPathLayout, coerce_tool
from .install_plan import (
    KEEP_ENV,
    InstallStep,
    LockedPin,
    check_local_build_possible,
    copy_manifest,
    explain_install_failure,
    installer_for,
    local_sources,
    local_wheel_command,
    mask_secrets,
    pins_for_manifest,
    pins_without_target_wheel,
    plan_install_steps,
    requirement_index_logins,
    requirement_index_options,
    sdist_wheel_command,
    target_tags,
)
from .manifest import (
    LocalManifest,
    RuntimePackage,
    find_tool,
    git_commit_of,
    missing_tool_message,
    read_local_manifest,
)
from .package import read_distributions
from .runner import SUBPROCESS, CommandRunner
from .target import LayerTarget
from .wheel_record import warn_escaping_entries

#: Lines of installer output kept in an error message.
ERROR_TAIL_LINES = 40
# The logger of a call that passes none: lines go to the ``build`` logger only.
QUIET = BaseLogger()

#: This module's API, with the planner's names that build_container, api and workflow import from here.
__all__ = [
    "ERROR_TAIL_LINES",
    "KEEP_ENV",
    "InstallStep",
    "LockedPin",
    "build_layer_artifacts_in_local",
    "build_layer_artifacts_using_pip_in_local",
    "build_layer_artifacts_using_poetry_in_local",
    "build_layer_artifacts_using_uv_in_local",
    "build_local_wheels",
    "build_sdist_wheels",
    "check_installed",
    "check_local_build_possible",
    "explain_install_failure",
    "installer_for",
    "local_sources",
    "mask_secrets",
    "pins_for_manifest",
    "pip_transport_env",
    "plan_install_steps",
    "requirement_index_options",
    "run_command",
    "run_install_steps",
    "target_tags",
]


# ---------------------------------------------------------------------------- running a plan


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: str | Path | None = None,
    description: str,
    credentials: Credentials | None = None,
    logger: BaseLogger = QUIET,
    explain: Callable[[str], str] | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Run one build command, streaming its masked output; failure is a ``LayerError`` with its tail.

    ``explain`` turns the failing output into a hint for the user (appended when not empty).

    The only place the build stage starts a process (through ``runner``).
    """
    shown = " ".join(mask_secrets(a, credentials) for a in argv)
    logger.debug(f"--- {description}: {shown}")
    tail: list[str] = []

    def take(raw: str) -> None:
        line = mask_secrets(raw, credentials)
        logger.debug(line)
        count_installer_line(line)
        tail.append(line)
        del tail[:-ERROR_TAIL_LINES]

    try:
        result = runner.run(argv, env=env, cwd=cwd, on_line=take)
    except OSError as e:
        raise BuildError(f"{description} could not start {argv[0]!r}: {e.strerror or e}") from None
    if result.returncode == 0:
        return
    output = "\n".join(tail)
    hint = explain(output) if explain is not None else ""
    raise BuildError(
        f"{description} failed with exit code {result.returncode}\ncommand: {shown}\n{output}"
        + (f"\n{hint}" if hint else "")
    )


#: pip settings that only change how pip reaches an index; carried over from the user's pip
#: configuration (which a build's pip does not read, see ``PIP_CONFIG_FILE``) into the child's environment.
_PIP_TRANSPORT_KEYS = {
    "cert": "PIP_CERT",
    "client-cert": "PIP_CLIENT_CERT",
    "proxy": "PIP_PROXY",
    "timeout": "PIP_TIMEOUT",
    "default-timeout": "PIP_DEFAULT_TIMEOUT",
    "retries": "PIP_RETRIES",
    "cache-dir": "PIP_CACHE_DIR",
    "no-cache-dir": "PIP_NO_CACHE_DIR",
    "trusted-host": "PIP_TRUSTED_HOST",
}
_PIP_CONFIG_LINE = re.compile(r"^(global|install)\.([a-z-]+)=(.*)$")


#: Variables that decide which files pip reads its configuration from.
_PIP_CONFIG_LOCATION_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "PIP_CONFIG_FILE", "VIRTUAL_ENV")
_pip_transport_cache: dict[tuple[str | None, ...], dict[str, str]] = {}


def pip_transport_env(environ: Mapping[str, str], *, runner: CommandRunner = SUBPROCESS) -> dict[str, str]:
    """TLS, proxy, timeout and cache settings of the user's pip configuration, as ``PIP_*`` variables.

    pip finds and reads its own files (``pip config list``, run with ``environ``); index, find-links
    and every other setting that could change what is installed are ignored. ``{}`` when pip cannot tell.
    Asking pip costs a process start (~0.3 s), so the answer is kept per process for the same
    config locations (a long-lived Pulumi or Terraform provider asks once); what another runner
    answers is not kept.
    """
    if runner is not SUBPROCESS:
        return _ask_pip_transport_env(environ, runner)
    key = tuple(environ.get(name) for name in _PIP_CONFIG_LOCATION_VARS)
    if key not in _pip_transport_cache:
        _pip_transport_cache[key] = _ask_pip_transport_env(environ, runner)
    return dict(_pip_transport_cache[key])


#: The command that asks pip for its configuration (``pip_transport_env``).
PIP_CONFIG_LIST = ("-m", "pip", "config", "list", "--disable-pip-version-check")


def _ask_pip_transport_env(environ: Mapping[str, str], runner: CommandRunner) -> dict[str, str]:
    try:
        result = runner.run([sys.executable, *PIP_CONFIG_LIST], env=environ, timeout=60)
    except OSError:
        return {}
    env: dict[str, str] = {}
    for line in result.stdout.splitlines() if result.ok else ():
        m = _PIP_CONFIG_LINE.match(line.strip())
        if m and m.group(2) in _PIP_TRANSPORT_KEYS:
            value = m.group(3)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[_PIP_TRANSPORT_KEYS[m.group(2)]] = " ".join(value.split())
    return env


def _runs_pip(step: InstallStep) -> bool:
    return "pip" in step.argv[:3] or Path(step.argv[0]).name.startswith("pip")


def run_install_steps(
    steps: Sequence[InstallStep],
    *,
    credentials: Credentials | None = None,
    logger: BaseLogger = QUIET,
    explain: Callable[[str], str] | None = None,
    secret_env: Mapping[str, str] | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Run a plan on this host: write each step's files, then its command with its environment
    (plus ``secret_env``: logins from requirements.txt, which no step, file or argv holds)."""
    transport = pip_transport_env(os.environ, runner=runner) if any(_runs_pip(step) for step in steps) else {}
    base = {**transport, **os.environ, **(secret_env or {})}
    for step in steps:
        for path, text in step.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        run_command(
            step.argv,
            env=step.child_env(base, credentials),
            cwd=step.cwd,
            description=step.description,
            credentials=credentials,
            logger=logger,
            explain=explain,
            runner=runner,
        )


def check_installed(
    dir_python: Path, pins: Sequence[LockedPin], target: LayerTarget, *, manifest_name: str = "the manifest"
) -> None:
    """Prove the tree holds exactly the pinned distributions and that their requirements are met."""
    installed = {d.name: d for d in read_distributions(dir_python)}
    wanted = {p.name: p.version for p in pins}
    problems = []
    for name, version in sorted(wanted.items()):
        dist = installed.get(name)
        if dist is None:
            problems.append(f"{name} {version} is pinned but was not installed")
        elif Version(dist.version) != Version(version):
            problems.append(f"{name} {version} is pinned but {dist.version} was installed")
    for name in sorted(installed.keys() - wanted.keys()):
        problems.append(f"{name} {installed[name].version} was installed but is not pinned")
    env = target.marker_environment()
    for dist in sorted(installed.values(), key=lambda d: d.name):
        for text in dist.requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not Marker(str(req.marker)).evaluate(dict(env)):
                continue
            dep = installed.get(canonicalize_name(req.name))
            if dep is None:
                problems.append(f"{dist.name} {dist.version} requires {req}, which {manifest_name} does not pin")
            elif req.specifier and not req.specifier.contains(Version(dep.version), prereleases=True):
                problems.append(f"{dist.name} {dist.version} requires {req}, but {manifest_name} pins {dep.version}")
    if problems:
        raise BuildError(
            f"the layer built from {manifest_name} is not its exact runtime set:\n  " + "\n  ".join(problems)
        )


# ---------------------------------------------------------------------------- the local builders
def _resolve_tool(name: str, path_bin: Path | str | None) -> str:
    if path_bin is not None:
        path = Path(path_bin)
        if not path.is_file():
            raise LayerError(f"path_bin_{name} {str(path)!r} is not a file")
        return str(path)
    found = find_tool(name)
    if not found:
        raise LayerError(missing_tool_message(name))
    return found


def build_local_wheels(
    sources: Sequence[RuntimePackage],
    target: LayerTarget,
    dir_out: Path,
    *,
    logger: BaseLogger,
    credentials: Credentials | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> list[LockedPin]:
    """Build each local source (folder or git commit) into a wheel for the target; a wheel with
    compiled code for this host is refused by name (it needs a container build)."""
    dir_out.mkdir(parents=True, exist_ok=True)
    uv = find_tool("uv")
    tags = target_tags(target)
    pins = []
    for package in sources:
        assert package.build_from is not None
        if package.build_from.startswith("git+") and git_commit_of(package.build_from) is None:
            raise ManifestError(
                f"{package.name} {package.version} comes from git ({package.source}) without a pinned commit: "
                f'pin it to a commit (rev = "<40-hex sha>") and re-lock'
            )
        dir_one = dir_out / package.name
        argv, env = local_wheel_command(
            package.build_from, dir_one, uv=uv, python=sys.executable, environ=os.environ, credentials=credentials
        )
        run_command(
            argv,
            env=env,
            description=f"build {package.name} {package.version} from {package.source}",
            credentials=credentials,
            logger=logger,
            runner=runner,
        )
        wheels = sorted(dir_one.glob("*.whl"))
        if len(wheels) != 1:
            raise BuildError(f"building {package.name} from {package.source} gave {len(wheels)} wheels, expected one")
        _, version, _, wheel_tags = parse_wheel_filename(wheels[0].name)
        if not wheel_tags & tags:
            raise BuildError(
                f"{package.name} ({package.source}) has compiled code: its wheel {wheels[0].name} is for this host, "
                f"not {target.runtime} {target.architecture}; build this layer in a container"
            )
        if Version(str(version)) != Version(package.version):
            raise ManifestError(
                f"{package.name} built from {package.source} is {version}, but the lock pins {package.version}; re-lock"
            )
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        pins.append(
            LockedPin(name=package.name, version=package.version, hashes=(f"sha256:{digest}",), path=str(wheels[0]))
        )
    return pins


def build_sdist_wheels(
    pins: Sequence[LockedPin],
    target: LayerTarget,
    dir_out: Path,
    *,
    tool: LayerBuildToolEnum,
    logger: BaseLogger,
    credentials: Credentials | None = None,
    runner: CommandRunner = SUBPROCESS,
) -> list[LockedPin]:
    """Build pins the lock offers only as an sdist into wheels (pip, hash-checked against the lock);
    a wheel with compiled code is refused by name: only a container build makes it for the target."""
    tags = target_tags(target)
    built = []
    for pin in pins:
        dir_one = dir_out / pin.name
        dir_one.mkdir(parents=True, exist_ok=True)
        requirements = dir_one.parent / f"{pin.name}.requirements.txt"
        requirements.write_text(pin.requirement_line(with_hashes=bool(pin.hashes)) + "\n", encoding="utf-8")
        argv, env = sdist_wheel_command(
            pin, dir_one, requirements, python=sys.executable, environ=os.environ, credentials=credentials
        )
        run_command(
            argv,
            env=env,
            description=f"build {pin.name} {pin.version} from its sdist",
            credentials=credentials,
            logger=logger,
            runner=runner,
        )
        wheels = sorted(dir_one.glob("*.whl"))
        if len(wheels) != 1 or not parse_wheel_filename(wheels[0].name)[3] & tags:
            made = wheels[0].name if wheels else "no wheel"
            raise BuildError(
                f"{pin.name} {pin.version} has no wheel for {target.runtime} {target.architecture} and its sdist has "
                f"compiled code ({made} is for this host): build this layer in a container "
                f"(build_layer_artifacts_using_{tool.value}_in_container)"
            )
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        built.append(dataclasses.replace(pin, hashes=(f"sha256:{digest}",), path=str(wheels[0]), index_url=None))
    return built


def _installer_command(tool: LayerBuildToolEnum, target: LayerTarget, path_bin: Path | str | None) -> list[str]:
    """uv (``path_bin`` or found), the given pip, or this Python's pip (see ``installer_for``)."""
    if installer_for(tool, target) == "uv":
        return [_resolve_tool("uv", path_bin)]
    if tool is LayerBuildToolEnum.pip and path_bin is not None:
        return [_resolve_tool("pip", path_bin)]
    return [sys.executable, "-m", "pip"]


def _pins_with_built_wheels(
    manifest: LocalManifest,
    target: LayerTarget,
    layout: LayerPathLayout,
    *,
    logger: BaseLogger,
    credentials: Credentials | None,
    runner: CommandRunner,
) -> list[LockedPin]:
    """The manifest's pins, with sdist-only pins and local sources replaced by wheels built here."""
    pins = pins_for_manifest(manifest)
    missing = pins_without_target_wheel(pins, target)
    if missing:
        dir_out = layout.dir_build_lambda_layer / "sdist-wheels"
        built = build_sdist_wheels(
            missing, target, dir_out, tool=manifest.tool, logger=logger, credentials=credentials, runner=runner
        )
        pins = [p for p in pins if p not in missing] + built
    dir_local = layout.dir_build_lambda_layer / "local-wheels"
    pins += build_local_wheels(
        local_sources(manifest), target, dir_local, logger=logger, credentials=credentials, runner=runner
    )
    return sorted(pins, key=lambda p: p.name)


def _build_in_local(
    *,
    tool: LayerBuildToolEnum,
    path_pyproject_toml: Path | str,
    python_version: str,
    architecture: str,
    credentials: Credentials | None,
    path_bin: Path | str | None,
    skip_prompt: bool,
    runner: CommandRunner,
) -> None:
    """The build of every ``build_layer_artifacts_*_in_local``; it logs on the ``build`` logger (their
    ``verbose``/``printer`` forward it, ``progress.forward_logs``)."""
    logger = BaseLogger(stage="build")
    target = LayerTarget(python_version=python_version, architecture=architecture)
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    manifest = read_local_manifest(layout.path_pyproject_toml, tool, target, runner=runner)
    check_local_build_possible(manifest, target)
    command = _installer_command(tool, target, path_bin)
    logger.log(f"Build a layer for {target.runtime} {target.architecture} from {manifest.path} with {tool.value}")
    layout.clean(skip_prompt=skip_prompt)
    layout.mkdirs()
    layout.copy_pyproject_toml()
    copy_manifest(manifest.path, layout.dir_repo)
    pins = _pins_with_built_wheels(manifest, target, layout, logger=logger, credentials=credentials, runner=runner)
    is_pip = tool is LayerBuildToolEnum.pip
    options = requirement_index_options(manifest.content, base_dir=manifest.path.parent) if is_pip else ()
    steps = plan_install_steps(
        tool=tool,
        target=target,
        pins=pins,
        dir_python=str(layout.dir_python),
        dir_work=str(layout.dir_build_lambda_layer),
        python=sys.executable,
        tool_command=command,
        credentials=credentials,
        requirement_options=options,
    )
    _install_and_check(
        steps, manifest, pins, target, tool, layout.dir_python, credentials=credentials, logger=logger, runner=runner
    )
    logger.log(f"Installed {len(pins)} distributions into {layout.dir_python}")


def _install_and_check(
    steps: Sequence[InstallStep],
    manifest: LocalManifest,
    pins: Sequence[LockedPin],
    target: LayerTarget,
    tool: LayerBuildToolEnum,
    dir_python: Path,
    *,
    credentials: Credentials | None,
    logger: BaseLogger,
    runner: CommandRunner,
) -> None:
    """Run the install plan and check that it installed exactly the pins.

    Files a wheel declares outside python/ (uv drops them silently) are a warning, see wheel_record;
    the wheels' RECORDs are read while they install, so a cold build does not wait for the reads.
    """
    is_pip = tool is LayerBuildToolEnum.pip
    with ThreadPoolExecutor(1) as pool:
        context = contextvars.copy_context()
        escaping = pool.submit(
            context.run,
            warn_escaping_entries,
            manifest.path,
            pins,
            target,
            tool=tool,
            credentials=credentials,
            logger=logger,
        )
        run_install_steps(
            steps,
            credentials=credentials,
            logger=logger,
            explain=lambda output: explain_install_failure(output, pins, target, tool, credentials),
            secret_env=requirement_index_logins(manifest.content) if is_pip else {},
            runner=runner,
        )
        check_installed(dir_python, pins, target, manifest_name=str(manifest.path))
        escaping.result()


def build_layer_artifacts_using_pip_in_local(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    path_bin_pip: Path | str | None = None,
    skip_prompt: bool = False,
    verbose: bool = True,
    printer: T_PRINTER = print,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Install requirements.txt's pins for the target into ``python/`` (pip of this Python by default)."""
    with forward_logs(verbose, printer):
        _build_in_local(
            tool=LayerBuildToolEnum.pip,
            path_pyproject_toml=path_pyproject_toml,
            python_version=python_version,
            architecture=architecture,
            credentials=credentials,
            path_bin=path_bin_pip,
            skip_prompt=skip_prompt,
            runner=runner,
        )


def build_layer_artifacts_using_poetry_in_local(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    path_bin_poetry: Path | str | None = None,
    skip_prompt: bool = False,
    verbose: bool = True,
    printer: T_PRINTER = print,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Install poetry.lock's main group for the target into ``python/``.

    Poetry cannot install for another platform, so poetry checks the lock is fresh and pip installs
    its pins from the lock's sources with the lock's hashes.
    """
    with forward_logs(verbose, printer):
        _build_in_local(
            tool=LayerBuildToolEnum.poetry,
            path_pyproject_toml=path_pyproject_toml,
            python_version=python_version,
            architecture=architecture,
            credentials=credentials,
            path_bin=path_bin_poetry,
            skip_prompt=skip_prompt,
            runner=runner,
        )


def build_layer_artifacts_using_uv_in_local(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    path_bin_uv: Path | str | None = None,
    skip_prompt: bool = False,
    verbose: bool = True,
    printer: T_PRINTER = print,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Install uv.lock's runtime set (no dev groups, not the project) for the target into ``python/``."""
    with forward_logs(verbose, printer):
        _build_in_local(
            tool=LayerBuildToolEnum.uv,
            path_pyproject_toml=path_pyproject_toml,
            python_version=python_version,
            architecture=architecture,
            credentials=credentials,
            path_bin=path_bin_uv,
            skip_prompt=skip_prompt,
            runner=runner,
        )


def build_layer_artifacts_in_local(
    *,
    tool: LayerBuildToolEnum | str,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    skip_prompt: bool = False,
    verbose: bool = True,
    printer: T_PRINTER = print,
    runner: CommandRunner = SUBPROCESS,
) -> None:
    """Build with ``tool`` on this host (the tool found next to this Python or on PATH)."""
    with forward_logs(verbose, printer):
        _build_in_local(
            tool=coerce_tool(tool),
            path_pyproject_toml=path_pyproject_toml,
            python_version=python_version,
            architecture=architecture,
            credentials=credentials,
            path_bin=None,
            skip_prompt=skip_prompt,
            runner=runner,
        )
