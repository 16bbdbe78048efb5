"""Container build, the pure half: engine command lines, mounts, the environment and the plan.

Everything here is a value computed from values (no engine call, no file written), so that it
can be table-tested: the ``run`` argv of a kept build container (:class:`ContainerRun`), the
in-container script's plan (:func:`container_plan`) and request (:func:`agent_request`), the
install steps on container paths (:func:`plan_container_steps`) and the failure message.
The effects (probing the engine, keeping containers, running) are in ``build_container_runner``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..constants import LayerBuildToolEnum
from ..errors import LayerError
from .build import KEEP_ENV, InstallStep, LockedPin, plan_install_steps
from .foundation import Credentials, LayerPathLayout
from .install_errors import index_failure
from .target import LayerTarget

#: AWS SAM's build images: Lambda's own OS and Python for each runtime and architecture.
DEFAULT_IMAGE_TEMPLATE = "public.ecr.aws/sam/build-python{python_version}:latest-{architecture}"

#: ``--platform`` of each Lambda architecture.
CONTAINER_PLATFORMS: dict[str, str] = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}

#: Engine architecture names (Go's and the kernel's) to Lambda's.
ENGINE_ARCHITECTURES: dict[str, str] = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}

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
PIP_TRANSPORT_ENV_VARS: tuple[str, ...] = (
    "PIP_PROXY",
    "PIP_TIMEOUT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_RETRIES",
    "PIP_TRUSTED_HOST",
)

#: Labels on every build container, so that kept ones can be found: its key (:func:`agent_key`), the
#: project root and the image ID.
CONTAINER_LABEL = "aws-lambda-artifact-builder.build"
CONTAINER_PROJECT_LABEL = "aws-lambda-artifact-builder.project"
CONTAINER_IMAGE_LABEL = "aws-lambda-artifact-builder.image-id"

PATH_SCRIPT_SOURCE = Path(__file__).with_name("build_container_script.py")

#: The in-container script's error lines start with this (see build_container_script.py).
SCRIPT_ERROR_PREFIX = "aws-lambda-artifact-builder error: "


def default_image(target: LayerTarget) -> str:
    """The SAM build image of the target runtime and architecture."""
    return DEFAULT_IMAGE_TEMPLATE.format(python_version=target.python_version, architecture=target.architecture)


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
    """Readable and unique, so containers started at the same time never collide."""
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
class AgentPaths:
    """Where a kept build container's agent listens and logs, on the host and in the container (the cache mount)."""

    socket: Path
    log: Path
    lock: Path
    socket_in_container: str
    log_in_container: str


def agent_paths(dir_cache: Path, key: str) -> AgentPaths:
    """The agent files of the container ``key`` (see :func:`agent_key`), below ``<cache>/agents``."""
    dir_agents = dir_cache / "agents"
    in_container = f"{DIR_CACHE_IN_CONTAINER}/agents/{key}"
    return AgentPaths(
        socket=dir_agents / f"{key}.sock",
        log=dir_agents / f"{key}.log",
        lock=dir_agents / f"{key}.lock",
        socket_in_container=f"{in_container}.sock",
        log_in_container=f"{in_container}.log",
    )


def agent_key(parts: Sequence[object]) -> str:
    """A short stable name for everything a kept container must share with a build to serve it."""
    return hashlib.sha256(repr(tuple(parts)).encode()).hexdigest()[:20]


@dataclasses.dataclass(frozen=True)
class ContainerRun:
    """Everything ``docker run``/``podman run`` of a kept build container gets; never a secret.

    The container's main process is the build script's agent, listening on a Unix socket in the
    cache mount (see ``build_container_script``): builds are requests sent there (see
    :func:`agent_request`), so the login and proxy settings travel in them, not in argv nor in the
    engine client's environment.
    """

    engine: ContainerEngine
    image: str
    platform: str
    name: str
    dir_project_root: Path
    dir_cache: Path
    path_ca_bundle: Path | None
    #: ``--user uid:gid`` so files in the project belong to the invoking user; None keeps the image's.
    user: str | None
    #: ``--network``; ``host`` lets the container see what the host sees (indexes or proxies on loopback).
    network: str | None
    #: The build script's path in the container and the target's Python (for the interpreter finder's error).
    script: str
    python_version: str
    #: :func:`agent_key` of the container's settings; names its agent's socket (see :func:`agent_paths`).
    key: str = ""
    #: The image ID the name pointed at (a label; part of the key).
    image_id: str = ""
    #: The agent exits after this long without a build.
    idle_seconds: int = 600
    #: Owned by one process: the agent exits when that process's lease connection closes.
    owned: bool = False

    def reuse_key(self) -> tuple[object, ...]:
        """What a kept container must share with a build to serve it: all but its name, key and lifetime."""
        return (
            self.engine,
            self.image,
            self.image_id,
            self.platform,
            self.dir_project_root,
            self.dir_cache,
            self.path_ca_bundle,
            self.user,
            self.network,
            self.script,
            self.python_version,
        )

    @property
    def paths(self) -> AgentPaths:
        return agent_paths(self.dir_cache, self.key)

    def command(self) -> tuple[str, ...]:
        return interpreter_command(
            image=self.image,
            python_version=self.python_version,
            script=self.script,
            agent_args=(
                "--serve",
                self.paths.socket_in_container,
                "--idle",
                str(self.idle_seconds),
                *(["--owned"] if self.owned else []),
            ),  # fmt: skip
            log=self.paths.log_in_container,
        )

    def argv(self) -> list[str]:
        for path in (self.dir_project_root, self.dir_cache, self.path_ca_bundle):
            if path is not None and "," in str(path):
                raise LayerError(f"cannot mount {path} into the build container: the path contains a comma")
        # --rm: the engine removes the container when its agent exits (idle, or its owner's end).
        argv = [self.engine.executable, "run", "--detach", "--rm", "--name", self.name,
                "--label", f"{CONTAINER_LABEL}={self.key}",
                "--label", f"{CONTAINER_PROJECT_LABEL}={self.dir_project_root}",
                "--label", f"{CONTAINER_IMAGE_LABEL}={self.image_id}",
                "--platform", self.platform,
                "--mount", f"type=bind,source={self.dir_project_root},target={DIR_PROJECT_IN_CONTAINER}",
                "--mount", f"type=bind,source={self.dir_cache},target={DIR_CACHE_IN_CONTAINER}",
                "--workdir", DIR_PROJECT_IN_CONTAINER]  # fmt: skip
        if self.path_ca_bundle is not None:
            argv += ["--mount", f"type=bind,source={self.path_ca_bundle},target={PATH_CA_BUNDLE_IN_CONTAINER},readonly"]
        if self.user is not None:
            argv += ["--user", self.user]
        if self.network is not None:
            argv += ["--network", self.network]
        # An image's entrypoint (Lambda base images have one) would swallow our command.
        argv += ["--entrypoint", ""]
        return argv + [self.image, *self.command()]


def container_user(engine: ContainerEngine, uid: int, gid: int) -> str | None:
    """``uid:gid`` for a rootful engine; rootless engines already map container root to the user."""
    if engine.rootless or uid == 0:
        return None
    return f"{uid}:{gid}"


def interpreter_command(
    *, image: str, python_version: str, script: str, agent_args: Sequence[str] = ("--serve",), log: str | None = None
) -> tuple[str, ...]:
    """Start the build script's agent with the image's ``python3``, else its ``python``; say so when it has neither.

    Many Debian-based images have only ``python3``, Lambda's build images both. The script itself
    then checks the version for each build (see ``build_container_script.check_interpreter``).
    A detached container's output goes to ``log`` (in the cache mount), where the host reads why
    an agent did not start: the engine forgets a removed container's output.
    """
    missing = (
        f"{SCRIPT_ERROR_PREFIX}the image {image} has neither python3 nor python on PATH: "
        f"name an image with Python {python_version}"
    )
    redirect = f"exec >>{shlex.quote(log)} 2>&1; " if log else ""
    finder = (
        f"{redirect}"
        'for py in python3 python; do if command -v "$py" >/dev/null 2>&1; then exec "$py" -u "$@"; fi; done; '
        f"echo {shlex.quote(missing)}; exit 127"
    )
    return ("sh", "-c", finder, "sh", script, *agent_args)


def agent_request(*, path_plan: str, env: Mapping[str, str], token: str) -> str:
    """One build for the agent: a JSON line with the plan's path (in the container) and the secret and
    transport variables' values, which exist only in this line; ``token`` marks the build's last line."""
    return json.dumps({"plan": path_plan, "env": dict(env), "token": token}) + "\n"


def parse_exit_line(line: str, token: str) -> tuple[str, int] | None:
    """(output before it, the build's exit code) when ``line`` ends with the agent's last line for ``token``;
    a command's output without a final newline may precede it on the same line."""
    head, _, code = line.rpartition(" exit ")
    if not head.endswith(token) or not code.isdigit():
        return None
    return head[: -len(token)], int(code)


# --- the plan the in-container script runs --------------------------------------------------------


def container_env(*, dir_build: str) -> dict[str, str]:
    """Variables every command of one build gets: caches in the mounted folder, a HOME and a TMPDIR of
    the build's own (``dir_build``, removed afterwards), so nothing one build writes is seen by the next
    in a kept container.

    ``dir_build`` is on the same mount as the install target: pip installs ``--target`` into a
    temporary folder and then moves it, which across mounts is a copy of the whole layer.
    """
    return {
        "HOME": f"{dir_build}/home",
        "TMPDIR": f"{dir_build}/tmp",
        "PIP_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/pip",
        "UV_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/uv",
        "POETRY_CACHE_DIR": f"{DIR_CACHE_IN_CONTAINER}/poetry",
        "POETRY_CONFIG_DIR": f"{dir_build}/home/.config/pypoetry",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The container's root is a throwaway user; pip's warning about it is noise.
        "PIP_ROOT_USER_ACTION": "ignore",
    }


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
    ``dir_python`` is the install target in the container (see :func:`staging_dir`); a pin's wheel
    ``path`` (a local source) is a host path in the project, shown to the installer as the container sees it.
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
    pins = [dataclasses.replace(p, path=layout.get_path_in_container(p.path)) if p.path else p for p in pins]
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


def plan_wheel_steps(
    sdists: Mapping[str, str], dir_out: str, *, credentials: Credentials | None = None
) -> list[InstallStep]:
    """Build local sources with compiled code into wheels for the target (``sdists``: name -> sdist path in
    the container), with the pinned pip, without their dependencies (the lock pins those). The build
    backend may come from the project's index, as on the host: its login is ``PIP_EXTRA_INDEX_URL``, a
    secret variable of the request."""
    secret = ("PIP_EXTRA_INDEX_URL",) if credentials is not None else ()
    return [
        InstallStep(
            description=f"build {name} from its sources for the target",
            argv=("{tools_python}", "-m", "pip", "wheel", "--no-deps", "--no-input", "-w", f"{dir_out}/{name}", sdist),
            env={"PIP_CONFIG_FILE": os.devnull},
            secret_env_names=secret,
        )
        for name, sdist in sorted(sdists.items())
    ]


def staging_dir(dir_cache: Path, build_id: str) -> tuple[Path, str]:
    """Where the container installs ``python/``: in the cache mount, as (host path, container path).

    The cache and the project are two mounts in the container, and files cannot be hardlinked
    across mounts: installing next to the cache lets uv hardlink as it does locally, and the host
    then renames the tree into the project, which is instant on one host filesystem.
    """
    return dir_cache / "staging" / build_id, f"{DIR_CACHE_IN_CONTAINER}/staging/{build_id}"


def container_plan(
    *,
    tool: LayerBuildToolEnum,
    target: LayerTarget,
    image: str,
    steps: Sequence[InstallStep],
    path_ca_bundle: Path | None,
    dir_build: str,
) -> dict[str, Any]:
    """What the in-container script reads (JSON): no secret, only the names of the secret variables."""
    env = container_env(dir_build=dir_build)
    if path_ca_bundle is not None:
        env.update(ca_bundle_env())
    return {
        "image": image,
        "python_version": target.python_version,
        "architecture": target.architecture,
        "dir_cache": DIR_CACHE_IN_CONTAINER,
        "tools": {"name": tool.value, "requirements": list(PINNED_TOOLS[tool])},
        "env": env,
        "keep_env": sorted(KEEP_ENV),
        "secret_env_names": sorted({n for s in steps for n in s.secret_env_names}),
        "steps": [s.to_dict() for s in steps],
    }


#: What the engines say when the command's executable (here ``sh``) is not in the image; the docker CLI
#: in front of podman's API only says "unable to upgrade to tcp, received 409".
_NO_SHELL_RE = re.compile(
    r"unable to upgrade to tcp, received 409|executable file `?sh`? not found|\"sh\": executable file not found|"
    r"exec: \"?sh\"?: .*not found|/bin/sh: no such file or directory",
    re.IGNORECASE,
)


def _installer_named(error: str) -> str:
    """Which installer a failed step ran (its argv ends the script's error line)."""
    return next((tool for tool in ("uv", "pip") if re.search(rf"\b{tool}\b", error)), "the installer")


def container_failure_message(
    *,
    returncode: int,
    tail: Sequence[str],
    run: ContainerRun,
    target: LayerTarget,
    credentials: Credentials | None = None,
) -> str:
    """One line naming the cause (the index: login, down, missing version; the script's own error, a foreign
    CPU, an image without a shell), then the output, except for an index failure: its output is in the
    verbose log already, as for a local build (``install_errors``)."""
    errors = [line[len(SCRIPT_ERROR_PREFIX) :] for line in tail if line.startswith(SCRIPT_ERROR_PREFIX)]
    output = "\n".join(line for line in tail if not line.startswith(SCRIPT_ERROR_PREFIX))
    cause = index_failure(output, [], tool=_installer_named(errors[-1] if errors else ""), credentials=credentials)
    if cause:
        return f"{cause} (the installer's output is in the verbose log)"
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
    head = errors[-1] if errors else f"the build container {run.name} failed with exit code {returncode}"
    if not errors and not output.strip() and returncode == 127:
        # The interpreter finder's exit (see interpreter_command) when the engine lost the output of a
        # container that ended at once, as podman 4 sometimes does with attached short-lived containers.
        head = (
            f"the image {run.image} has neither python3 nor python on PATH, or no /bin/sh to look for them "
            f"(exit code 127, no output): name an image with a shell and Python {target.python_version}"
        )
    return f"{head}\n{output}\ncontainer: {shlex.join(run.argv())}"
