"""Container build stage: the local builder's install, run inside a docker or podman container.

When a dependency has no wheel for the target, or a team wants Lambda's own build image,
the install runs in an image with the target's Python and architecture. Only the install
happens there: the commands come from the same pure planner as the local build
(:func:`.build.plan_install_steps`), and packaging happens on the host with the same zipper,
so one lock gives the same ``layer.zip`` from either builder.

Pure parts (engine argv, the plan handed to the in-container script, CA and credential
passing) are separate from the effects (probing the engine, pulling, running, removing).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.tags import parse_tag

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from ..errors import LayerError
from ..progress import count_installer_line
from ..typehint import T_PRINTER
from .build import (
    ERROR_TAIL_LINES,
    KEEP_ENV,
    InstallStep,
    LockedPin,
    check_installed,
    local_sources,
    pins_for_manifest,
    mask_secrets,
    pip_config_files,
    pip_transport_env,
    plan_install_steps,
    requirement_index_options,
    target_tags,
)
from .foundation import BaseLogger, Credentials, LayerPathLayout, coerce_tool
from .manifest import read_local_manifest
from .target import LayerTarget

#: AWS SAM's build images: Lambda's own OS and Python for each runtime and architecture.
DEFAULT_IMAGE_TEMPLATE = "public.ecr.aws/sam/build-python{python_version}:latest-{architecture}"

#: ``--platform`` of each Lambda architecture.
CONTAINER_PLATFORMS: dict[str, str] = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}

#: Engine architecture names (Go's and the kernel's) to Lambda's.
_ENGINE_ARCHITECTURES: dict[str, str] = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}

CONTAINER_RUNTIMES: tuple[str, ...] = ("docker", "podman")

#: What the container installs into a cached virtualenv for each tool: pinned, so that a build
#: does not depend on the image's pip (Debian's 23.0 installs this set 2x slower than 26.3).
PINNED_TOOLS: dict[LayerBuildToolEnum, tuple[str, ...]] = {
    LayerBuildToolEnum.pip: ("pip==26.3",),
    LayerBuildToolEnum.poetry: ("pip==26.3", "poetry==2.5.1"),
    LayerBuildToolEnum.uv: ("uv==0.13.9",),
}

#: Where the host's project root, cache and CA bundle appear inside the container.
DIR_PROJECT_IN_CONTAINER = "/var/task"
DIR_CACHE_IN_CONTAINER = "/var/cache/aws-lambda-artifact-builder"
PATH_CA_BUNDLE_IN_CONTAINER = "/etc/aws-lambda-artifact-builder/ca-bundle.pem"

#: Variables that name an extra trusted CA bundle on the host, in the order we look at them.
CA_BUNDLE_ENV_VARS: tuple[str, ...] = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
#: Proxy settings the container inherits by name (their values may hold a login).
PROXY_ENV_VARS: tuple[str, ...] = tuple(
    v for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY") for v in (name, name.lower())
)

#: pip settings that change only how an index is reached (from the environment or pip's config files).
PIP_TRANSPORT_ENV_VARS: tuple[str, ...] = ("PIP_PROXY", "PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES", "PIP_TRUSTED_HOST")

#: Labels on every build container, so that leftovers can be found: the build id and the project root.
CONTAINER_LABEL = "aws-lambda-artifact-builder.build"
CONTAINER_PROJECT_LABEL = "aws-lambda-artifact-builder.project"

PATH_SCRIPT_SOURCE = Path(__file__).with_name("build_container_script.py")

#: The in-container script's error lines start with this (see build_container_script.py).
SCRIPT_ERROR_PREFIX = "aws-lambda-artifact-builder error: "


def default_image(target: LayerTarget) -> str:
    """The SAM build image of the target runtime and architecture."""
    return DEFAULT_IMAGE_TEMPLATE.format(python_version=target.python_version, architecture=target.architecture)


def default_cache_dir() -> Path:
    """Host folder the container keeps tool installs and download caches in, so repeat builds are fast."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aws-lambda-artifact-builder" / "container"


def find_ca_bundle(environ: Mapping[str, str]) -> Path | None:
    """The extra CA bundle the host trusts, if one of :data:`CA_BUNDLE_ENV_VARS` names an existing file."""
    for name in CA_BUNDLE_ENV_VARS:
        value = environ.get(name, "")
        if value and Path(value).is_file():
            return Path(value).absolute()
    return None


def ca_bundle_env() -> dict[str, str]:
    """Points pip, uv (``SSL_CERT_FILE``), poetry/requests and curl at the mounted bundle."""
    return {
        "PIP_CERT": PATH_CA_BUNDLE_IN_CONTAINER,
        "SSL_CERT_FILE": PATH_CA_BUNDLE_IN_CONTAINER,
        "REQUESTS_CA_BUNDLE": PATH_CA_BUNDLE_IN_CONTAINER,
        "CURL_CA_BUNDLE": PATH_CA_BUNDLE_IN_CONTAINER,
    }


def make_container_name(tool: LayerBuildToolEnum, target: LayerTarget) -> str:
    """Readable and unique, so concurrent builds of the same target never collide."""
    return f"alab-layer-{tool.value}-py{target.python_version.replace('.', '')}-{target.architecture}-{uuid.uuid4().hex[:12]}"


@dataclasses.dataclass(frozen=True)
class ContainerEngine:
    """A container engine that answered: which CLI, where it is, what it runs on."""

    runtime: str
    executable: str
    #: The engine host's architecture, in Lambda's spelling when known.
    architecture: str
    #: Containers' root is the invoking user (rootless podman or docker); ``--user`` would then be wrong.
    rootless: bool


@dataclasses.dataclass(frozen=True)
class ContainerRun:
    """Everything ``docker run``/``podman run`` gets. Secrets are passed by name, never by value."""

    engine: ContainerEngine
    image: str
    platform: str
    name: str
    build_id: str
    dir_project_root: Path
    dir_cache: Path
    path_ca_bundle: Path | None
    #: ``-e NAME``: the engine client copies the value from its own environment.
    env_names: tuple[str, ...]
    #: ``--user uid:gid`` so files in the project belong to the invoking user; None keeps the image's.
    user: str | None
    #: ``--network``; ``host`` lets the container see what the host sees (indexes or proxies on loopback).
    network: str | None
    command: tuple[str, ...]

    def argv(self) -> list[str]:
        for path in (self.dir_project_root, self.dir_cache, self.path_ca_bundle):
            if path is not None and "," in str(path):
                raise LayerError(f"cannot mount {path} into the build container: the path contains a comma")
        # No --rm through the docker CLI: podman's docker-compatible API then reports exit code 0 for a
        # failed container. The podman CLI reports it right, and --rm saves a second engine call per
        # build. The runner still removes the container itself after a failure or Ctrl-C.
        argv = [
            self.engine.executable,
            "run",
            *(["--rm"] if self.engine.runtime == "podman" else []),
            "--name",
            self.name,
            "--label",
            f"{CONTAINER_LABEL}={self.build_id}",
            "--label",
            f"{CONTAINER_PROJECT_LABEL}={self.dir_project_root}",
            "--platform",
            self.platform,
            "--mount",
            f"type=bind,source={self.dir_project_root},target={DIR_PROJECT_IN_CONTAINER}",
            "--mount",
            f"type=bind,source={self.dir_cache},target={DIR_CACHE_IN_CONTAINER}",
            "--workdir",
            DIR_PROJECT_IN_CONTAINER,
        ]
        if self.path_ca_bundle is not None:
            argv += ["--mount", f"type=bind,source={self.path_ca_bundle},target={PATH_CA_BUNDLE_IN_CONTAINER},readonly"]
        if self.user is not None:
            argv += ["--user", self.user]
        if self.network is not None:
            argv += ["--network", self.network]
        for name in self.env_names:
            argv += ["--env", name]
        # An image's entrypoint (Lambda base images have one) would swallow our command.
        argv += ["--entrypoint", ""]
        return argv + [self.image, *self.command]


def container_user(engine: ContainerEngine, uid: int, gid: int) -> str | None:
    """``uid:gid`` for a rootful engine; rootless engines already map container root to the user."""
    if engine.rootless or uid == 0:
        return None
    return f"{uid}:{gid}"


# --- effects: the engine -------------------------------------------------------------------------


def _run_quiet(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"no answer within {timeout:.0f}s")


def _probe_engine(runtime: str, executable: str) -> ContainerEngine | str:
    """The engine when it answers, else why not."""
    if runtime == "podman":
        argv = [executable, "info", "--format", "{{.Host.Arch}} {{.Host.Security.Rootless}}"]
    else:
        argv = [executable, "info", "--format", "{{.Architecture}} {{json .SecurityOptions}}"]
    result = _run_quiet(argv)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        return f"{runtime} is installed but its engine is not answering: {reason[-1] if reason else 'no output'}"
    arch, _, rest = result.stdout.strip().partition(" ")
    rootless = rest.strip() == "true" if runtime == "podman" else "rootless" in rest
    return ContainerEngine(
        runtime=runtime,
        executable=executable,
        architecture=_ENGINE_ARCHITECTURES.get(arch.lower(), arch.lower()),
        rootless=rootless,
    )


#: How long an engine that answered is trusted without asking again (``docker info`` costs ~0.1 s).
ENGINE_PROBE_TTL_SECONDS = 300.0
_probed_engines: dict[tuple[str, ...], tuple[float, ContainerEngine]] = {}
_images_present: set[tuple[str, ...]] = set()


def _engine_key(runtime: str, executable: str) -> tuple[str, ...]:
    """What decides which engine a CLI talks to: the CLI and the variables naming its daemon."""
    hosts = tuple(os.environ.get(name, "") for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "CONTAINER_HOST"))
    return (runtime, executable, *hosts)


def _probe_engine_cached(runtime: str, executable: str) -> ContainerEngine | str:
    """``_probe_engine``, remembered per process for a few minutes when the engine answered."""
    key = _engine_key(runtime, executable)
    cached = _probed_engines.get(key)
    if cached is not None and time.monotonic() - cached[0] < ENGINE_PROBE_TTL_SECONDS:
        return cached[1]
    probed = _probe_engine(runtime, executable)
    if isinstance(probed, ContainerEngine):
        _probed_engines[key] = (time.monotonic(), probed)
    return probed


def detect_container_engine(container_runtime: str | None = None) -> ContainerEngine:
    """The named engine, or the first of docker, podman that answers; a clear error otherwise."""
    if container_runtime is not None and container_runtime not in CONTAINER_RUNTIMES:
        raise LayerError(f"container_runtime {container_runtime!r} is not one of: {', '.join(CONTAINER_RUNTIMES)}")
    candidates = [container_runtime] if container_runtime else list(CONTAINER_RUNTIMES)
    reasons = []
    for runtime in candidates:
        executable = shutil.which(runtime)
        if executable is None:
            reasons.append(f"{runtime} is not installed (not on PATH)")
            continue
        probed = _probe_engine_cached(runtime, executable)
        if isinstance(probed, ContainerEngine):
            return probed
        reasons.append(probed)
    raise LayerError(
        "no container engine to build the layer in: "
        + "; ".join(reasons)
        + ". Install and start docker or podman, or build locally"
    )


def _ensure_image(engine: ContainerEngine, image: str, target: LayerTarget, log: BaseLogger) -> None:
    """The image for the target's architecture is present, pulling it when not (remembered per process)."""
    key = (*_engine_key(engine.runtime, engine.executable), image, target.architecture)
    if key in _images_present:
        return
    inspect = _run_quiet([engine.executable, "image", "inspect", "--format", "{{.Architecture}}", image])
    if inspect.returncode == 0:
        have = _ENGINE_ARCHITECTURES.get(inspect.stdout.strip().lower(), inspect.stdout.strip())
        if have == target.architecture:
            _images_present.add(key)
            return
        log.log(f"Image {image} is here for {have}; pulling its {target.architecture} variant")
    else:
        log.log(f"Pulling image {image} for {CONTAINER_PLATFORMS[target.architecture]}")
    pull = _run_quiet(
        [engine.executable, "pull", "--platform", CONTAINER_PLATFORMS[target.architecture], image], timeout=1800
    )
    if pull.returncode != 0:
        detail = (pull.stderr or pull.stdout).strip().splitlines()
        raise LayerError(
            f"the build image {image} is not available for {target.architecture} and could not be pulled "
            f"with {engine.runtime}: {detail[-1] if detail else 'no output'}"
        )


def _binfmt_handler_exists(machine: str) -> bool:
    """Linux runs foreign binaries only through a registered binfmt_misc handler (qemu-user)."""
    dir_binfmt = Path("/proc/sys/fs/binfmt_misc")
    for path in dir_binfmt.glob(f"*{machine}*"):
        try:
            if path.read_text().startswith("enabled"):
                return True
        except OSError:
            continue
    return False


def _check_architecture_runnable(engine: ContainerEngine, target: LayerTarget) -> None:
    """Fail before pulling anything when the engine cannot run the target's CPU."""
    if engine.architecture == target.architecture:
        return
    engine_is_local = sys.platform.startswith("linux") and not os.environ.get("DOCKER_HOST", "unix://").startswith(
        ("tcp://", "ssh://")
    )
    if engine_is_local and engine.architecture == _ENGINE_ARCHITECTURES.get(platform.machine().lower()):
        if not _binfmt_handler_exists(target.machine):
            raise LayerError(
                f"architecture {target.architecture} is not runnable on this {engine.architecture} host: no "
                f"binfmt_misc handler for {target.machine} is registered. Register QEMU emulation (for example "
                f"`docker run --privileged --rm tonistiigi/binfmt --install {target.machine}`), "
                f"use a {target.architecture} machine, or build locally when every dependency has a wheel"
            )


def _remove_container(engine: ContainerEngine, name: str) -> None:
    """Remove the container whatever happened, killing it at once (podman would wait 10 s for SIGTERM)."""
    wait = ["--time", "0"] if engine.runtime == "podman" else []
    _run_quiet([engine.executable, "rm", "--force", *wait, name], timeout=120)


def list_build_containers(engine: ContainerEngine, dir_project_root: Path | None = None) -> list[str]:
    """Names of the containers, running or not, that layer builds (of one project) started and did not remove."""
    label = CONTAINER_LABEL if dir_project_root is None else f"{CONTAINER_PROJECT_LABEL}={dir_project_root}"
    result = _run_quiet([engine.executable, "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"])
    if result.returncode != 0:
        raise LayerError(f"cannot list containers with {engine.runtime}: {result.stderr.strip()}")
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


# --- the plan the in-container script runs --------------------------------------------------------


def container_env(*, path_ca_bundle: Path | None, dir_tmp: str) -> dict[str, str]:
    """Variables every command in the container gets: caches in the mounted folder, a HOME, the CA.

    ``dir_tmp`` is on the same mount as the install target: pip installs ``--target`` into a
    temporary folder and then moves it, which across mounts is a copy of the whole layer.
    """
    env = {
        # The build may run as a user without a home in the image (``--user``).
        "HOME": "/tmp",
        "TMPDIR": dir_tmp,
        "PIP_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/pip",
        "UV_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/uv",
        "POETRY_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/poetry",
        "POETRY_CONFIG_DIR": "/tmp/aws-lambda-artifact-builder-poetry-config",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The container's root is a throwaway user; pip's warning about it is noise.
        "PIP_ROOT_USER_ACTION": "ignore",
    }
    if path_ca_bundle is not None:
        env.update(ca_bundle_env())
    return env


def plan_container_steps(
    *,
    tool: LayerBuildToolEnum,
    target: LayerTarget,
    layout: LayerPathLayout,
    dir_python: str,
    pins: Sequence[LockedPin],
    credentials: Credentials | None,
    requirement_options: Sequence[str],
) -> list[InstallStep]:
    """The local build's install (same planner), with paths as the container sees them.

    ``native=True``: the container runs the target's Python and CPU, so a pin without a wheel can
    be built from source there. Poetry first checks that the lock is fresh, as the local build does.
    ``dir_python`` is the install target in the container (see :func:`staging_dir`).
    """
    steps = []
    if tool is LayerBuildToolEnum.poetry:
        steps.append(
            InstallStep(
                description="poetry check --lock (is poetry.lock fresh?)",
                argv=("{poetry}", "check", "--lock", "--no-interaction"),
                cwd=layout.get_path_in_container(layout.dir_repo),
            )
        )
    steps += plan_install_steps(
        tool=tool,
        target=target,
        pins=pins,
        dir_python=dir_python,
        dir_work=layout.get_path_in_container(layout.dir_build_lambda_layer),
        python="{python}",
        tool_command=("{uv}",) if tool is LayerBuildToolEnum.uv else ("{tools_python}", "-m", "pip"),
        credentials=credentials,
        native=True,
        requirement_options=requirement_options,
    )
    return steps


def staging_dir(dir_cache: Path, build_id: str) -> tuple[Path, str]:
    """Where the container installs ``python/``: in the cache mount, as (host path, container path).

    The cache and the project are two mounts in the container, and files cannot be hardlinked
    across mounts: installing next to the cache lets uv hardlink as it does locally, and the host
    then renames the tree into the project, which is instant on one host filesystem.
    """
    return dir_cache / "staging" / build_id, f"{DIR_CACHE_IN_CONTAINER}/staging/{build_id}"


#: A staging folder this old belongs to a build that was killed (a running build finishes long before).
STALE_STAGING_SECONDS = 24 * 3600


def remove_stale_staging(dir_cache: Path, now: float) -> None:
    """Remove what killed builds left in the cache; a concurrent build's folder is young and stays."""
    for path in (dir_cache / "staging").glob("*"):
        try:
            if now - path.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def move_tree(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (absent or an empty folder): a rename when possible, else a copy."""
    try:
        os.replace(src, dst)
    except OSError:
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(src)


def container_plan(
    *,
    tool: LayerBuildToolEnum,
    target: LayerTarget,
    image: str,
    steps: Sequence[InstallStep],
    path_ca_bundle: Path | None,
    dir_tmp: str,
) -> dict[str, Any]:
    """What the in-container script reads (JSON): no secret, only the names of the secret variables."""
    return {
        "image": image,
        "python_version": target.python_version,
        "architecture": target.architecture,
        "dir_cache": DIR_CACHE_IN_CONTAINER,
        "tools": {"name": tool.value, "requirements": list(PINNED_TOOLS[tool])},
        "env": container_env(path_ca_bundle=path_ca_bundle, dir_tmp=dir_tmp),
        "keep_env": sorted(KEEP_ENV),
        "secret_env_names": sorted({n for s in steps for n in s.secret_env_names}),
        "steps": [s.to_dict() for s in steps],
    }


def check_wheel_tags(dir_python: Path, target: LayerTarget) -> None:
    """Refuse wheels the target cannot load, which an image newer than Lambda's OS may pick.

    A wheel built from source in the container (``linux_*`` tag) is the point of a container build
    and passes; a ``manylinux`` wheel for a newer glibc than the runtime's does not.
    """
    accepted = target_tags(target)
    problems = []
    for path_wheel in sorted(dir_python.glob("*.dist-info/WHEEL")):
        tags = set()
        for line in path_wheel.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Tag:"):
                tags |= set(parse_tag(line.partition(":")[2].strip()))
        if not tags or tags & accepted:
            continue
        if all(t.platform.startswith("linux_") for t in tags):
            continue
        shown = ", ".join(sorted(str(t) for t in tags))
        problems.append(f"{path_wheel.parent.name[: -len('.dist-info')]} ({shown})")
    if problems:
        raise LayerError(
            f"the container installed wheels that {target.runtime} on {target.architecture} (glibc "
            f"{target.glibc[0]}.{target.glibc[1]}, {target.machine}) cannot load: {'; '.join(problems)}. The image "
            f"does not match Lambda's runtime: use the default image {default_image(target)}"
        )


# --- running ----------------------------------------------------------------------------------------


def _container_failure_message(
    *, name: str, returncode: int, tail: Sequence[str], run: ContainerRun, target: LayerTarget
) -> str:
    errors = [line[len(SCRIPT_ERROR_PREFIX) :] for line in tail if line.startswith(SCRIPT_ERROR_PREFIX)]
    output = "\n".join(line for line in tail if not line.startswith(SCRIPT_ERROR_PREFIX))
    if "exec format error" in output.lower():
        return (
            f"architecture {target.architecture} is not runnable on this {run.engine.architecture} "
            f"{run.engine.runtime} engine (exec format error): register QEMU emulation for {target.machine} "
            f"or build on a {target.architecture} machine"
        )
    no_shell = _NO_SHELL_RE.search(output)
    if not errors and no_shell:
        return (
            f"the image {run.image} cannot run the build: it has no /bin/sh to find its Python with "
            f"({no_shell.group(0)}); name an image with a shell and Python {target.python_version}"
        )
    head = errors[-1] if errors else f"the build container {name} failed with exit code {returncode}"
    return f"{head}\n{output}\ncontainer: {shlex.join(run.argv())}"


#: What the engines say when the command's executable (here ``sh``) is not in the image; the docker CLI
#: in front of podman's API only says "unable to upgrade to tcp, received 409".
_NO_SHELL_RE = re.compile(
    r"unable to upgrade to tcp, received 409|executable file `?sh`? not found|\"sh\": executable file not found|"
    r"exec: \"?sh\"?: .*not found|/bin/sh: no such file or directory",
    re.IGNORECASE,
)


def interpreter_command(*, image: str, python_version: str, script: str, plan: str) -> tuple[str, ...]:
    """Run the build script with the image's ``python3``, else its ``python``; say so when it has neither.

    Many Debian-based images have only ``python3``, Lambda's build images both. The script itself
    then checks the version (see ``build_container_script.check_interpreter``).
    """
    missing = (
        f"{SCRIPT_ERROR_PREFIX}the image {image} has neither python3 nor python on PATH: "
        f"name an image with Python {python_version}"
    )
    finder = (
        'for py in python3 python; do if command -v "$py" >/dev/null 2>&1; then exec "$py" -u "$@"; fi; done; '
        f"echo {shlex.quote(missing)}; exit 127"
    )
    return ("sh", "-c", finder, "sh", script, plan)


def run_in_container(
    run: ContainerRun,
    *,
    env: Mapping[str, str],
    credentials: Credentials | None,
    target: LayerTarget,
    logger: BaseLogger,
) -> None:
    """Run the build container, streaming its masked output, and remove it whatever happens (Ctrl-C too)."""
    argv = run.argv()
    logger.debug(f"--- build container {run.name}: {shlex.join(argv)}")
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    proc = subprocess.Popen(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    finished = False
    try:
        for raw in proc.stdout:
            line = mask_secrets(raw.rstrip("\n"), credentials)
            logger.debug(line)
            count_installer_line(line)
            tail.append(line)
        proc.wait()
        finished = True
    finally:
        # On an interrupt the engine client may still be attached: removing the container ends it.
        # A podman container that ran to its end removed itself (--rm).
        if not (finished and run.engine.runtime == "podman" and proc.returncode == 0):
            _remove_container(run.engine, run.name)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if proc.returncode != 0:
        raise LayerError(
            _container_failure_message(name=run.name, returncode=proc.returncode, tail=tail, run=run, target=target)
        )


def build_layer_artifacts_in_container(
    *,
    tool: LayerBuildToolEnum | str,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Fill ``LayerPathLayout.dir_python`` by running the local build's install in a container.

    ``image`` defaults to the SAM build image of the target; any image whose ``python`` is the
    target's version can be named. ``dir_cache`` (default :func:`default_cache_dir`) keeps the
    pinned build tool and download caches between builds. ``network="host"`` lets the container
    reach what the host reaches (an index or proxy on loopback); ``None`` uses the engine's default.
    The previous build in ``build/lambda/layer`` is removed without asking: this is a batch build.
    """
    tool = coerce_tool(tool)
    logger = BaseLogger(verbose=verbose, printer=printer)
    target = LayerTarget(python_version=python_version, architecture=architecture)
    layout = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml))
    manifest = read_local_manifest(layout.path_pyproject_toml, tool, target)
    pins = pins_for_manifest(manifest)
    if local_sources(manifest):
        names = ", ".join(f"{p.name} ({p.source})" for p in local_sources(manifest))
        raise LayerError(f"{manifest.path}: local sources are built only by a local build for now: {names}")
    image = image or default_image(target)
    engine = detect_container_engine(container_runtime)
    _check_architecture_runnable(engine, target)
    _ensure_image(engine, image, target, logger)
    dir_cache = Path(dir_cache).absolute() if dir_cache is not None else default_cache_dir()
    dir_cache.mkdir(parents=True, exist_ok=True)
    # What the host's installers would use to reach an index: the environment over pip's config files.
    host_env = {**pip_transport_env(pip_config_files(os.environ)), **os.environ}
    path_ca_bundle = find_ca_bundle(host_env)

    logger.log(
        f"Build a layer for {target.runtime} {target.architecture} from {manifest.path} with {tool.value} "
        f"in {image} ({engine.runtime})"
    )
    # Earlier versions wrote the index login here; never leave it on disk, never read it.
    layout.path_private_repository_credentials_in_local.unlink(missing_ok=True)
    layout.clean(skip_prompt=True)
    layout.mkdirs()
    layout.copy_pyproject_toml(printer=logger.debug)
    layout.copy_file(manifest.path, layout.dir_repo / manifest.path.name, printer=logger.debug)
    layout.copy_build_script(PATH_SCRIPT_SOURCE, printer=logger.debug)
    build_id = uuid.uuid4().hex
    remove_stale_staging(dir_cache, time.time())
    dir_staging, dir_staging_in_container = staging_dir(dir_cache, build_id)
    dir_staging.mkdir(parents=True)
    steps = plan_container_steps(
        tool=tool,
        target=target,
        layout=layout,
        dir_python=f"{dir_staging_in_container}/python",
        pins=pins,
        credentials=credentials,
        requirement_options=requirement_index_options(manifest.content) if tool is LayerBuildToolEnum.pip else (),
    )
    plan = container_plan(
        tool=tool,
        target=target,
        image=image,
        steps=steps,
        path_ca_bundle=path_ca_bundle,
        dir_tmp=f"{dir_staging_in_container}/tmp",
    )
    path_plan = layout.dir_build_lambda_layer / "container-build-plan.json"
    path_plan.write_text(json.dumps(plan, indent=2, sort_keys=True), encoding="utf-8")

    # The login goes into the engine client's environment only; argv names the variables.
    secrets: dict[str, str] = {}
    for step in steps:
        secrets.update(step.secret_env(credentials))
    # Transport settings follow by name too: a proxy URL may hold a login.
    transport = tuple(name for name in (*PROXY_ENV_VARS, *PIP_TRANSPORT_ENV_VARS) if host_env.get(name))
    run = ContainerRun(
        engine=engine,
        image=image,
        platform=CONTAINER_PLATFORMS[target.architecture],
        name=make_container_name(tool, target),
        build_id=build_id,
        dir_project_root=layout.dir_project_root,
        dir_cache=dir_cache,
        path_ca_bundle=path_ca_bundle,
        env_names=tuple(sorted(secrets)) + transport,
        user=container_user(engine, os.geteuid(), os.getegid()),
        network=network,
        command=interpreter_command(
            image=image,
            python_version=target.python_version,
            script=layout.path_build_lambda_layer_in_container_script_in_container,
            plan=layout.get_path_in_container(path_plan),
        ),
    )
    try:
        run_in_container(run, env={**host_env, **secrets}, credentials=credentials, target=target, logger=logger)
        move_tree(dir_staging / "python", layout.dir_python)
    finally:
        shutil.rmtree(dir_staging, ignore_errors=True)
    check_installed(layout.dir_python, pins, target, manifest_name=str(manifest.path))
    check_wheel_tags(layout.dir_python, target)
    logger.log(f"Installed {len(pins)} distributions into {layout.dir_python}")


def build_layer_artifacts_using_pip_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Install requirements.txt's pins with the image's pip (see :func:`build_layer_artifacts_in_container`)."""
    build_layer_artifacts_in_container(
        tool=LayerBuildToolEnum.pip,
        path_pyproject_toml=path_pyproject_toml,
        python_version=python_version,
        architecture=architecture,
        credentials=credentials,
        image=image,
        container_runtime=container_runtime,
        dir_cache=dir_cache,
        network=network,
        verbose=verbose,
        printer=printer,
    )


def build_layer_artifacts_using_poetry_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Check poetry.lock with the pinned poetry, then pip-install its main group, as the local build does."""
    build_layer_artifacts_in_container(
        tool=LayerBuildToolEnum.poetry,
        path_pyproject_toml=path_pyproject_toml,
        python_version=python_version,
        architecture=architecture,
        credentials=credentials,
        image=image,
        container_runtime=container_runtime,
        dir_cache=dir_cache,
        network=network,
        verbose=verbose,
        printer=printer,
    )


def build_layer_artifacts_using_uv_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Install uv.lock's runtime set with the pinned uv (see :func:`build_layer_artifacts_in_container`)."""
    build_layer_artifacts_in_container(
        tool=LayerBuildToolEnum.uv,
        path_pyproject_toml=path_pyproject_toml,
        python_version=python_version,
        architecture=architecture,
        credentials=credentials,
        image=image,
        container_runtime=container_runtime,
        dir_cache=dir_cache,
        network=network,
        verbose=verbose,
        printer=printer,
    )
