"""Container build, the effects: the engine (probe, image, removal) and the kept build containers.

A build container is kept per (engine, image, platform, mounts, user, network) for the life of
the process and serves one build after another: its main process is the build script's agent
(``build_container_script.py --agent``), attached to the engine client's standard input and
output. A build is one request line there; starting a container (~0.5 s) or ``exec`` (~0.2 s)
would each cost more than a warm uv install. Each build runs in its own staging folder with its
own HOME and TMPDIR (see ``build_container_plan.container_env``), so a kept container carries no
state from one build to the next but the mounted download caches a fresh container sees too.

A kept container is removed at the process's exit (``atexit``), when a build in it fails or is
interrupted (Ctrl-C), and by itself when the process dies (its input closes, the agent exits,
``--rm``).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import BuildError, LayerInputError
from ..progress import count_installer_line
from .build import ERROR_TAIL_LINES, mask_secrets
from .build_container_plan import (
    CONTAINER_LABEL,
    CONTAINER_PLATFORMS,
    CONTAINER_PROJECT_LABEL,
    CONTAINER_RUNTIMES,
    ENGINE_ARCHITECTURES,
    ContainerEngine,
    ContainerRun,
    agent_request,
    container_failure_message,
    parse_exit_line,
)
from .foundation import BaseLogger, Credentials
from .target import LayerTarget


def _run_quiet(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"no answer within {timeout:.0f}s")


# --- the engine ---------------------------------------------------------------------------------------


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
        architecture=ENGINE_ARCHITECTURES.get(arch.lower(), arch.lower()),
        rootless=rootless,
    )


#: How long an engine that answered is trusted without asking again (``docker info`` costs ~0.1 s).
ENGINE_PROBE_TTL_SECONDS = 300.0
_probed_engines: dict[tuple[str, ...], tuple[float, ContainerEngine]] = {}
_images_present: set[tuple[str, ...]] = set()


def engine_key(runtime: str, executable: str) -> tuple[str, ...]:
    """What decides which engine a CLI talks to: the CLI and the variables naming its daemon."""
    hosts = tuple(os.environ.get(name, "") for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "CONTAINER_HOST"))
    return (runtime, executable, *hosts)


def _probe_engine_cached(runtime: str, executable: str) -> ContainerEngine | str:
    """``_probe_engine``, remembered per process for a few minutes when the engine answered."""
    key = engine_key(runtime, executable)
    cached = _probed_engines.get(key)
    if cached is not None and time.monotonic() - cached[0] < ENGINE_PROBE_TTL_SECONDS:
        return cached[1]
    probed = _probe_engine(runtime, executable)
    if isinstance(probed, ContainerEngine):
        _probed_engines[key] = (time.monotonic(), probed)
    return probed


def detect_container_engine(container_runtime: str | None = None) -> ContainerEngine:
    """The named engine, or the first of docker, podman that answers; a clear error otherwise."""
    import shutil

    if container_runtime is not None and container_runtime not in CONTAINER_RUNTIMES:
        raise LayerInputError(
            [
                (
                    "container_runtime",
                    f"container_runtime {container_runtime!r} is not one of: {', '.join(CONTAINER_RUNTIMES)}",
                )
            ]
        )
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
    raise BuildError(
        "no container engine to build the layer in: "
        + "; ".join(reasons)
        + ". Install and start docker or podman, or build locally"
    )


def ensure_image(engine: ContainerEngine, image: str, target: LayerTarget, log: BaseLogger) -> None:
    """The image for the target's architecture is present, pulling it when not (remembered per process)."""
    key = (*engine_key(engine.runtime, engine.executable), image, target.architecture)
    if key in _images_present:
        return
    inspect = _run_quiet([engine.executable, "image", "inspect", "--format", "{{.Architecture}}", image])
    if inspect.returncode == 0:
        have = ENGINE_ARCHITECTURES.get(inspect.stdout.strip().lower(), inspect.stdout.strip())
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
        raise BuildError(
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


def check_architecture_runnable(engine: ContainerEngine, target: LayerTarget) -> None:
    """Fail before pulling anything when the engine cannot run the target's CPU."""
    if engine.architecture == target.architecture:
        return
    engine_is_local = sys.platform.startswith("linux") and not os.environ.get("DOCKER_HOST", "unix://").startswith(
        ("tcp://", "ssh://")
    )
    native = engine_is_local and engine.architecture == ENGINE_ARCHITECTURES.get(platform.machine().lower())
    if native and not _binfmt_handler_exists(target.machine):
        raise BuildError(
            f"architecture {target.architecture} is not runnable on this {engine.architecture} host: no "
            f"binfmt_misc handler for {target.machine} is registered. Register QEMU emulation (for example "
            f"`docker run --privileged --rm tonistiigi/binfmt --install {target.machine}`), "
            f"use a {target.architecture} machine, or build locally when every dependency has a wheel"
        )


def remove_container(engine: ContainerEngine, name: str) -> None:
    """Remove the container whatever happened, killing it at once (podman would wait 10 s for SIGTERM)."""
    wait = ["--time", "0"] if engine.runtime == "podman" else []
    _run_quiet([engine.executable, "rm", "--force", *wait, name], timeout=120)


def list_build_containers(engine: ContainerEngine, dir_project_root: Path | None = None) -> list[str]:
    """Names of the containers, running or not, that layer builds (of one project) started and did not remove."""
    label = CONTAINER_LABEL if dir_project_root is None else f"{CONTAINER_PROJECT_LABEL}={dir_project_root}"
    result = _run_quiet([engine.executable, "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"])
    if result.returncode != 0:
        raise BuildError(f"cannot list containers with {engine.runtime}: {result.stderr.strip()}")
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


# --- kept build containers ------------------------------------------------------------------------------


@dataclasses.dataclass
class KeptContainer:
    """A running build container and the engine client attached to its agent."""

    run: ContainerRun
    proc: subprocess.Popen[str]
    #: The mounted folders' identity when started: a folder deleted and made again is another mount.
    identity: tuple[object, ...]
    #: One build at a time: the agent serves its input in order.
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    pid: int = dataclasses.field(default_factory=os.getpid)
    last_used: float = dataclasses.field(default_factory=time.monotonic)


#: Containers kept at most (each an idle Python, ~10 MB): a program building many projects keeps the
#: most recently used ones and removes the others.
MAX_KEPT_CONTAINERS = 4
_kept: dict[tuple[object, ...], KeptContainer] = {}
_kept_lock = threading.Lock()


def _identity(run: ContainerRun) -> tuple[object, ...]:
    stats = [os.stat(run.dir_project_root), os.stat(run.dir_cache)]
    ca = os.stat(run.path_ca_bundle) if run.path_ca_bundle is not None else None
    return (*((s.st_dev, s.st_ino) for s in stats), ca and (ca.st_dev, ca.st_ino, ca.st_mtime_ns))


def _start(run: ContainerRun, env: Mapping[str, str], logger: BaseLogger) -> KeptContainer:
    argv = run.argv()
    logger.debug(f"--- build container {run.name}: {shlex.join(argv)}")
    # Its own session: a Ctrl-C in the terminal reaches the host, which removes the container itself.
    proc = subprocess.Popen(
        argv, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    return KeptContainer(run=run, proc=proc, identity=_identity(run))


def kept_container(run: ContainerRun, env: Mapping[str, str], logger: BaseLogger) -> KeptContainer:
    """The process's container for ``run``'s settings, started (as ``run``) when there is none alive."""
    key = run.reuse_key()
    with _kept_lock:
        kept = _kept.get(key)
        if kept is not None and (kept.proc.poll() is not None or kept.identity != _identity(run)):
            _discard(kept)
            kept = None
        if kept is None:
            _evict_idle(MAX_KEPT_CONTAINERS - 1)
            kept = _kept[key] = _start(run, env, logger)
        else:
            logger.debug(f"--- build container {kept.run.name}: kept from an earlier build")
        kept.last_used = time.monotonic()
        return kept


def _evict_idle(keep: int) -> None:
    """Remove the least recently used idle containers until at most ``keep`` remain (busy ones stay)."""
    for kept in sorted(_kept.values(), key=lambda k: k.last_used)[: max(0, len(_kept) - keep)]:
        if kept.lock.acquire(blocking=False):
            try:
                _discard(kept)
            finally:
                kept.lock.release()


def _discard(kept: KeptContainer) -> None:
    """Remove the container (which ends the attached client) and forget it (not a newer one in its place)."""
    if _kept.get(kept.run.reuse_key()) is kept:
        del _kept[kept.run.reuse_key()]
    remove_container(kept.run.engine, kept.run.name)
    for stream in (kept.proc.stdin, kept.proc.stdout):
        if stream is not None:
            stream.close()
    try:
        kept.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        kept.proc.kill()
        kept.proc.wait()


def _exchange(kept: KeptContainer, request: str, token: str, credentials: Credentials | None,
              logger: BaseLogger, tail: deque[str]) -> int:  # fmt: skip
    """Send one build and stream its masked output until its exit line (or the container's end)."""
    assert kept.proc.stdin is not None and kept.proc.stdout is not None
    try:
        kept.proc.stdin.write(request)
        kept.proc.stdin.flush()
    except BrokenPipeError:
        pass  # the container is gone; its output says why
    for raw in kept.proc.stdout:
        line = raw.rstrip("\n")
        end = parse_exit_line(line, token)
        if end is not None:
            line = end[0]
        if line or end is None:
            line = mask_secrets(line, credentials)
            logger.debug(line)
            count_installer_line(line)
            tail.append(line)
        if end is not None:
            return end[1]
    return kept.proc.wait() or 1


def build_in_container(
    run: ContainerRun,
    *,
    path_plan: str,
    env: Mapping[str, str],
    request_env: Mapping[str, str],
    credentials: Credentials | None,
    target: LayerTarget,
    logger: BaseLogger,
) -> str:
    """Run one planned build in the kept container for ``run``'s settings (``env``: the engine client's
    environment; ``request_env``: the secret and transport values, sent with the request only). A failed
    or interrupted build removes the container, so the next build starts from a fresh one. Returns the
    name of the container that ran it (the provenance names its image)."""
    kept = _acquire(run, env, logger)
    token = uuid.uuid4().hex
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    code = 1
    try:
        logger.debug(f"--- build in {kept.run.name}: {path_plan}")
        request = agent_request(path_plan=path_plan, env=request_env, token=token)
        code = _exchange(kept, request, token, credentials, logger, tail)
    finally:
        if code != 0:
            with _kept_lock:
                _discard(kept)
        kept.lock.release()
    if code != 0:
        message = container_failure_message(
            returncode=code, tail=tail, run=kept.run, target=target, credentials=credentials
        )
        raise BuildError(message)
    return kept.run.name


def _acquire(run: ContainerRun, env: Mapping[str, str], logger: BaseLogger) -> KeptContainer:
    """The kept container for ``run``, locked for one build (another one if it was removed meanwhile)."""
    while True:
        kept = kept_container(run, env, logger)
        kept.lock.acquire()
        if _kept.get(run.reuse_key()) is kept:
            return kept
        kept.lock.release()


def close_build_containers() -> None:
    """Remove every container this process keeps (at exit; callable any time, e.g. between test cases)."""
    with _kept_lock:
        for kept in list(_kept.values()):
            if kept.pid == os.getpid():
                _discard(kept)
        _kept.clear()


atexit.register(close_build_containers)
