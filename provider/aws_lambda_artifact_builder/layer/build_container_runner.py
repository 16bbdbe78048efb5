"""Container build, the effects: the engine (probe, image, removal) and the kept build containers.

A build container is kept per (engine, image ID, platform, mounts, user, network, build script)
across processes: its main process is the build script's agent (``build_container_script.py
--serve``), listening on a Unix socket in the mounted cache folder, named by the settings' key
(:func:`.build_container_plan.agent_key`). A build connects to that socket (a one-shot ``alab``
run or CI job too) and sends its request: no container start (~0.5 s), no ``exec`` (~0.2 s), which
would each cost more than a warm uv install; the first build of a process asks the engine only
for the image's ID (and, when not cached on disk, for the engine's architecture). Each build runs
in a child process of the agent with its own staging folder, HOME and TMPDIR (see
``build_container_plan.container_env``), so concurrent builds do not meet and a kept container
carries no state from one build to the next but the mounted download caches a fresh one sees too.

The agent exits, and the engine removes the container (``--rm``), after :data:`IDLE_SECONDS`
without a build. With ``ALAB_KEEP_BUILD_CONTAINER=0`` a container is its process's own (its pid
is part of the key) and the agent exits as soon as that process ends, killed or not (it holds a
lease connection). A build whose process is interrupted or killed is killed in the container
(its connection closes); the container stays for the next.

Where the host cannot connect to a socket in a bind mount (Docker Desktop's VM on macOS and Windows, a
remote ``DOCKER_HOST``), builds go through a relay instead, chosen up front (:func:`use_relay`; forced
with ``ALAB_BUILD_CONTAINER_RELAY=1``): ``<engine> exec -i <container> <python> <script> --relay <socket>``
copies the same protocol between its stdin/stdout and the agent's socket inside the container
(~0.25 s more per build: 0.35 s instead of 0.12 s for a warm uv build). A direct connection refused by an agent that says it listens switches to it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import BuildError, LayerInputError
from ..progress import count_installer_line
from .build import ERROR_TAIL_LINES, mask_secrets
from .build_container_plan import (
    CONTAINER_LABEL,
    CONTAINER_PLATFORMS,
    CONTAINER_PROJECT_LABEL,
    CONTAINER_RUNTIMES,
    ENGINE_ARCHITECTURES,
    PATH_SCRIPT_SOURCE,
    SCRIPT_ERROR_PREFIX,
    ContainerEngine,
    ContainerRun,
    agent_key,
    agent_request,
    container_failure_message,
    interpreter_command,
    parse_exit_line,
)
from .foundation import BaseLogger, Credentials
from .target import LayerTarget


def _run_quiet(
    argv: Sequence[str], *, timeout: float = 60.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=None if env is None else dict(env)
        )
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


#: How long an engine that answered is trusted without asking again (``docker info`` costs ~0.25 s): in
#: the process, and on disk for later processes while the CLI binary and the engine's socket are unchanged.
ENGINE_PROBE_TTL_SECONDS = 300.0
ENGINE_PROBE_DISK_TTL_SECONDS = 24 * 3600.0
_probed_engines: dict[tuple[str, ...], tuple[float, ContainerEngine]] = {}
_image_ids: dict[tuple[str, ...], str] = {}


def engine_key(runtime: str, executable: str) -> tuple[str, ...]:
    """What decides which engine a CLI talks to: the CLI and the variables naming its daemon."""
    hosts = tuple(os.environ.get(name, "") for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "CONTAINER_HOST"))
    return (runtime, executable, *hosts)


def _engine_stamp(key: tuple[str, ...]) -> str | None:
    """The CLI binary's and the engine socket's identity: an upgrade or a restarted engine is asked again.
    None (not cached on disk) for an engine reached over the network, which can change unseen."""
    paths = [Path(key[1])]
    for host in key[2:]:
        if host.startswith("unix://"):
            paths.append(Path(host[len("unix://") :]))
        elif host:
            return None
    try:
        stats = [p.stat() for p in paths]
    except OSError:
        return None
    return json.dumps([list(key), os.geteuid(), [(s.st_dev, s.st_ino, s.st_mtime_ns) for s in stats]])


def _probe_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aws-lambda-artifact-builder" / "engines.json"


def _read_probe_cache() -> dict[str, tuple[float, dict[str, Any]]]:
    """The probes on disk that are well formed and young enough: (when, the engine's fields) by stamp."""
    try:
        cached = json.loads(_probe_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = {}
    for stamp, entry in cached.items() if isinstance(cached, dict) else ():
        when = entry.get("time") if isinstance(entry, dict) else None
        fields = entry.get("engine") if isinstance(entry, dict) else None
        if isinstance(when, float) and isinstance(fields, dict) and time.time() - when < ENGINE_PROBE_DISK_TTL_SECONDS:
            entries[stamp] = (when, fields)
    return entries


def _probe_from_disk(stamp: str) -> ContainerEngine | None:
    entry = _read_probe_cache().get(stamp)
    try:
        return ContainerEngine(**entry[1]) if entry is not None else None
    except TypeError:
        return None


def _probe_to_disk(stamp: str, engine: ContainerEngine) -> None:
    """Best effort: a cache that cannot be written only costs the next process a probe."""
    path = _probe_cache_path()
    cached = {k: {"time": when, "engine": fields} for k, (when, fields) in _read_probe_cache().items()}
    cached[stamp] = {"time": time.time(), "engine": dataclasses.asdict(engine)}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached), encoding="utf-8")
        os.replace(tmp, path)


def _probe_engine_cached(runtime: str, executable: str) -> ContainerEngine | str:
    """``_probe_engine``, remembered when the engine answered: per process for a few minutes, on disk for a day."""
    key = engine_key(runtime, executable)
    cached = _probed_engines.get(key)
    if cached is not None and time.monotonic() - cached[0] < ENGINE_PROBE_TTL_SECONDS:
        return cached[1]
    stamp = _engine_stamp(key)
    probed = _probe_from_disk(stamp) if stamp is not None else None
    if probed is None:
        probed_now = _probe_engine(runtime, executable)
        if isinstance(probed_now, str):
            return probed_now
        probed = probed_now
        if stamp is not None:
            _probe_to_disk(stamp, probed)
    _probed_engines[key] = (time.monotonic(), probed)
    return probed


def forget_engine_probes() -> None:
    """Forget every probe, in the process and on disk (a stale one made an image check fail)."""
    _probed_engines.clear()
    _probe_cache_path().unlink(missing_ok=True)


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


def ensure_image(engine: ContainerEngine, image: str, target: LayerTarget, log: BaseLogger) -> str:
    """The ID of the image for the target's architecture, pulling it when absent (remembered per process).

    When the engine does not answer (a probe cached on disk outlived it), say so as a fresh probe would.
    """
    key = (*engine_key(engine.runtime, engine.executable), image, target.architecture)
    if key in _image_ids:
        return _image_ids[key]
    argv = [engine.executable, "image", "inspect", "--format", "{{.Id}} {{.Architecture}}", image]
    inspect = _run_quiet(argv)
    if inspect.returncode == 0:
        image_id, _, arch = inspect.stdout.strip().partition(" ")
        have = ENGINE_ARCHITECTURES.get(arch.lower(), arch)
        if have == target.architecture:
            _image_ids[key] = image_id
            return image_id
        log.log(f"Image {image} is here for {have}; pulling its {target.architecture} variant")
    else:
        probed = _probe_engine(engine.runtime, engine.executable)
        if isinstance(probed, str):
            forget_engine_probes()
            raise BuildError(f"no container engine to build the layer in: {probed}")
        log.log(f"Pulling image {image} for {CONTAINER_PLATFORMS[target.architecture]}")
    pull = _run_quiet(
        [engine.executable, "pull", "--platform", CONTAINER_PLATFORMS[target.architecture], image], timeout=1800
    )
    inspect = _run_quiet(argv) if pull.returncode == 0 else pull
    if inspect.returncode != 0:
        detail = (pull.stderr or pull.stdout or inspect.stderr).strip().splitlines()
        raise BuildError(
            f"the build image {image} is not available for {target.architecture} and could not be pulled "
            f"with {engine.runtime}: {detail[-1] if detail else 'no output'}"
        )
    _image_ids[key] = inspect.stdout.strip().partition(" ")[0]
    return _image_ids[key]


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


def engine_is_local(environ: Mapping[str, str]) -> bool:
    """The engine runs on this Linux kernel: its containers' files (sockets too) are this host's."""
    return sys.platform.startswith("linux") and not environ.get("DOCKER_HOST", "unix://").startswith(
        ("tcp://", "ssh://")
    )


#: ``1``: reach the build container's agent through ``<engine> exec`` (a relay), never its socket; ``0``: directly.
RELAY_ENV_VAR = "ALAB_BUILD_CONTAINER_RELAY"


def use_relay(environ: Mapping[str, str]) -> bool:
    """Whether builds reach the agent through the relay: the switch, else whether the engine is not local."""
    switch = environ.get(RELAY_ENV_VAR, "").strip().lower()
    if switch in ("1", "yes", "true", "on"):
        return True
    if switch in ("0", "no", "false", "off"):
        return False
    return not engine_is_local(environ)


def check_architecture_runnable(engine: ContainerEngine, target: LayerTarget) -> None:
    """Fail before pulling anything when the engine cannot run the target's CPU."""
    if engine.architecture == target.architecture:
        return
    native = engine_is_local(os.environ) and engine.architecture == ENGINE_ARCHITECTURES.get(platform.machine().lower())
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
    """Names of the build containers (of one project) that are kept, running or not yet removed by the engine."""
    label = CONTAINER_LABEL if dir_project_root is None else f"{CONTAINER_PROJECT_LABEL}={dir_project_root}"
    result = _run_quiet([engine.executable, "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"])
    if result.returncode != 0:
        raise BuildError(f"cannot list containers with {engine.runtime}: {result.stderr.strip()}")
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


# --- kept build containers ------------------------------------------------------------------------------

#: How long a kept build container waits for the next build before its agent exits and the engine removes it.
IDLE_SECONDS = 600
#: ``0`` (or ``no``/``false``/``off``): each process starts its own container, which ends with the process.
KEEP_ENV_VAR = "ALAB_KEEP_BUILD_CONTAINER"
#: How long a started container may take until its agent listens (the image is already present).
START_TIMEOUT_SECONDS = 30.0
#: How long a host may fail to connect to an agent that says it listens before it uses the relay.
CONNECT_GRACE_SECONDS = 1.0
#: The relay's first line and the agent's first log line (as ``build_container_script`` writes them).
RELAY_READY = "alab-relay ready"
AGENT_LISTENING = "alab-agent listening"


class _Channel:
    """One connection to an agent: its socket, or a relay process's stdin/stdout. Closing it ends the
    connection (the agent kills a build still running on it)."""

    def __init__(self, sock: socket.socket | None = None, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.sock, self.proc = sock, proc
        if sock is not None:
            stream = sock.makefile("rw", encoding="utf-8", errors="replace", newline="\n")
            self.reader: IO[str] = stream
            self.writer: IO[str] = stream
        else:
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            self.reader = io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace", newline="\n")
            self.writer = io.TextIOWrapper(proc.stdin, encoding="utf-8", newline="\n", write_through=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            self.reader.close()
        if self.sock is not None:
            self.sock.close()


#: This process's containers by key (those it started, or whose agent it reached) and its lease connections.
_used: dict[str, ContainerRun] = {}
_leases: dict[str, _Channel] = {}
#: Set when a direct connection was refused by an agent that listens: this process uses the relay from then on.
_relay_forced = False


def keep_across_processes(environ: Mapping[str, str]) -> bool:
    return environ.get(KEEP_ENV_VAR, "1").strip().lower() not in ("0", "no", "false", "off")


def _script_digest() -> str:
    return hashlib.sha256(PATH_SCRIPT_SOURCE.read_bytes()).hexdigest()


def _identity(run: ContainerRun) -> tuple[object, ...]:
    """The mounted folders' identity: a folder deleted and made again is another mount."""
    stats = [os.stat(run.dir_project_root), os.stat(run.dir_cache)]
    ca = os.stat(run.path_ca_bundle) if run.path_ca_bundle is not None else None
    return (*((s.st_dev, s.st_ino) for s in stats), ca and (ca.st_dev, ca.st_ino, ca.st_mtime_ns))


def keyed_run(run: ContainerRun, environ: Mapping[str, str]) -> ContainerRun:
    """``run`` with its key: its settings, its mounts' identity, the build script's version, the user's
    uid (the socket is the user's), and the process's pid when containers are not kept across processes."""
    owned = not keep_across_processes(environ)
    parts = (*run.reuse_key(), _identity(run), _script_digest(), os.geteuid(), os.getpid() if owned else None)
    return dataclasses.replace(run, key=agent_key(parts), idle_seconds=IDLE_SECONDS, owned=owned)


def _connect(path: Path) -> socket.socket | None:
    """A connection to the agent listening at ``path``, or None when none does (a stale socket file too).
    A path longer than a socket address may be is reached through its folder's descriptor."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = None
    try:
        address = str(path)
        if len(os.fsencode(address)) > 100:
            fd = os.open(path.parent, os.O_PATH)
            address = f"/proc/self/fd/{fd}/{path.name}"
        sock.connect(address)
    except OSError:
        sock.close()
        return None
    finally:
        if fd is not None:
            os.close(fd)
    return sock


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """One starter per key across processes (and threads: each opens its own file description)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _name_file(run: ContainerRun) -> Path:
    """The running container's name for its key, written by the host that started it (the relay execs into it)."""
    return run.paths.lock.with_suffix(".name")


def _relay(run: ContainerRun, env: Mapping[str, str], name: str, wait: float = 0.0) -> _Channel | None:
    """A connection through ``<engine> exec -i <name> ... --relay``, or None when no agent answers there."""
    agent_args = ("--relay", run.paths.socket_in_container, "--wait", str(wait))
    command = interpreter_command(image=run.image, python_version=run.python_version, script=run.script,
                                  agent_args=agent_args)  # fmt: skip
    proc = subprocess.Popen(
        [run.engine.executable, "exec", "-i", name, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(env),
        start_new_session=True,  # a terminal's Ctrl-C reaches this process, which closes the connection
    )
    assert proc.stdout is not None
    if proc.stdout.readline().decode(errors="replace").strip() == RELAY_READY:
        return _Channel(proc=proc)
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()
    return None


def _connect_any(run: ContainerRun, env: Mapping[str, str]) -> _Channel | None:
    """A connection to a listening agent of ``run``'s key, directly or through the relay, else None."""
    global _relay_forced
    relay = _relay_forced or use_relay(os.environ)
    if not relay:
        sock = _connect(run.paths.socket)
        if sock is not None:
            return _Channel(sock=sock)
        if not run.paths.socket.exists():
            return None
    # Relaying, or a socket file no connection reaches (stale, or a socket this host cannot connect to).
    try:
        name = _name_file(run).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    channel = _relay(run, env, name) if name else None
    if channel is not None and not relay:
        _relay_forced = True
    return channel


def _open_agent(run: ContainerRun, env: Mapping[str, str], target: LayerTarget, logger: BaseLogger) -> _Channel:
    """A connection to the agent of the container for ``run``'s key, started when none listens."""
    channel = _connect_any(run, env)
    if channel is None:
        with _file_lock(run.paths.lock):
            channel = _connect_any(run, env)
            if channel is None:
                channel = _start(run, env, target, logger)
                _used[run.key] = run
                return channel
    logger.debug(f"--- build container {run.key}: kept from an earlier build")
    _used.setdefault(run.key, run)
    return channel


def _start(run: ContainerRun, env: Mapping[str, str], target: LayerTarget, logger: BaseLogger) -> _Channel:
    """Start the container detached and wait until its agent listens; in owned mode, hold its lease."""
    global _relay_forced
    paths = run.paths
    paths.socket.unlink(missing_ok=True)
    paths.log.unlink(missing_ok=True)
    _name_file(run).unlink(missing_ok=True)
    _remove_old_agent_files(paths.log.parent, time.time())
    argv = run.argv()
    logger.debug(f"--- build container {run.name}: {shlex.join(argv)}")
    started = _run_quiet(argv, env=env, timeout=600)
    if started.returncode != 0:
        tail = (started.stderr + started.stdout).strip().splitlines()[-ERROR_TAIL_LINES:]
        raise BuildError(container_failure_message(returncode=started.returncode, tail=tail, run=run, target=target))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    next_check = time.monotonic() + 1.0
    listening_since: float | None = None
    channel: _Channel | None = None
    while channel is None:
        if _relay_forced or use_relay(os.environ):
            # Inside the container the relay waits for the agent; it ends at once when the container does.
            channel = _relay(run, env, run.name, wait=START_TIMEOUT_SECONDS)
            if channel is not None:
                break
            log = paths.log.read_text(errors="replace") if paths.log.exists() else ""
            failed = True
        else:
            sock = _connect(paths.socket)
            if sock is not None:
                channel = _Channel(sock=sock)
                break
            log = paths.log.read_text(errors="replace") if paths.log.exists() else ""
            failed = SCRIPT_ERROR_PREFIX in log or "Traceback" in log
            if AGENT_LISTENING in log and listening_since is None:
                listening_since = time.monotonic()
            if listening_since is not None and time.monotonic() - listening_since > CONNECT_GRACE_SECONDS:
                # The agent listens but this host cannot connect to its socket: relay from now on.
                logger.debug(f"--- build container {run.key}: its socket refuses this host; relaying")
                _relay_forced = True
                continue
            if not failed and time.monotonic() > next_check:
                failed = not _is_running(run)
                next_check = time.monotonic() + 1.0
        if failed or time.monotonic() > deadline:
            remove_container(run.engine, run.name)
            code = 127 if "neither python3 nor python" in log else 1
            waited = f"its agent did not listen at {paths.socket} within {START_TIMEOUT_SECONDS:.0f} s"
            fix = f"; where this host cannot reach a socket in a bind mount, set {RELAY_ENV_VAR}=1"
            tail = log.strip().splitlines()[-ERROR_TAIL_LINES:] or [waited + fix]
            raise BuildError(container_failure_message(returncode=code, tail=tail, run=run, target=target))
        time.sleep(0.02)
    _name_file(run).write_text(run.name, encoding="utf-8")
    if run.owned:
        _hold_lease(run, env, relayed=channel.proc is not None)
    return channel


def _hold_lease(run: ContainerRun, env: Mapping[str, str], *, relayed: bool) -> None:
    """Owned mode: a connection that closes when this process ends (relaying: its ``exec``'s stdin ends)."""
    lease = _relay(run, env, run.name) if relayed else None
    if not relayed and (sock := _connect(run.paths.socket)) is not None:
        lease = _Channel(sock=sock)
    if lease is not None:
        lease.writer.write('{"lease": true}\n')
        lease.writer.flush()
        _leases[run.key] = lease


#: An agent's log and lock this old belong to a container long gone (an agent exits after IDLE_SECONDS).
STALE_AGENT_FILE_SECONDS = 24 * 3600


def _remove_old_agent_files(dir_agents: Path, now: float) -> None:
    for path in [*dir_agents.glob("*.log"), *dir_agents.glob("*.lock"), *dir_agents.glob("*.name")]:
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_AGENT_FILE_SECONDS:
                path.unlink()


def _is_running(run: ContainerRun) -> bool:
    state = _run_quiet([run.engine.executable, "container", "inspect", "--format", "{{.State.Running}}", run.name])
    return state.returncode == 0 and state.stdout.strip() == "true"


def _exchange(reader: IO[str], writer: IO[str], request: str, token: str, credentials: Credentials | None,
              logger: BaseLogger, tail: deque[str]) -> int:  # fmt: skip
    """Send one build and stream its masked output until its exit line (or the connection's end)."""
    writer.write(request)
    writer.flush()
    for raw in reader:
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
    return 1


def build_in_container(
    run: ContainerRun,
    *,
    path_plan: str,
    env: Mapping[str, str],
    request_env: Mapping[str, str],
    credentials: Credentials | None,
    target: LayerTarget,
    logger: BaseLogger,
) -> None:
    """Run one planned build in the kept container for ``run``'s key (``env``: the engine client's
    environment; ``request_env``: the secret and transport values, sent with the request only).
    An interrupted build (Ctrl-C, an exception) closes its connection, which kills it in the container."""
    channel = _open_agent(run, env, target, logger)
    token = uuid.uuid4().hex
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    logger.debug(f"--- build in {run.key}: {path_plan}")
    request = agent_request(path_plan=path_plan, env=request_env, token=token)
    try:
        code = _exchange(channel.reader, channel.writer, request, token, credentials, logger, tail)
    except BrokenPipeError:
        code = 1  # the agent is gone; its container's removal says why, if anything
    finally:
        channel.close()
    if code != 0:
        message = container_failure_message(returncode=code, tail=tail, run=run, target=target, credentials=credentials)
        raise BuildError(message)


def close_build_containers() -> None:
    """Remove every build container this process started or used (a later build starts a fresh one)."""
    for key, run in list(_used.items()):
        lease = _leases.pop(key, None)
        if lease is not None:
            lease.close()
        found = _run_quiet([run.engine.executable, "ps", "--quiet", "--filter", f"label={CONTAINER_LABEL}={key}"])
        for container in found.stdout.split():
            remove_container(run.engine, container)
        run.paths.socket.unlink(missing_ok=True)
        del _used[key]
