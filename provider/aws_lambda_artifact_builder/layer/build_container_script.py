"""Runs inside the build container as ``python -u <script> <plan.json>``.

Standard library only: the image has nothing but Python, and this library must not be
installed into it from PyPI. The host computed every install command (the same plan as the
local build, see ``build_container.py``); this script only

1. checks that the image runs the target's Python version and CPU architecture,
2. installs the pinned tools the plan needs (pip, and uv or poetry) into a virtualenv kept in
   the host-mounted cache, once per image and tool set, under a lock so that concurrent builds
   share it, and
3. runs the planned commands, replacing ``{python}``, ``{tools_python}``, ``{uv}``, ``{poetry}``.

Secrets arrive as environment variables only; they are never written to a file or printed.

Run as ``<script> --serve <socket> --idle <seconds>``, it is the main process of a kept build
container: it listens on a Unix socket in the mounted cache, which the host connects to directly
(no engine call: ``docker exec`` costs ~0.2 s, as much as a warm uv install), and runs one build
per connection (a JSON line: the plan's path, the secret and transport variables, an end token)
in a child process of its own, answering with the build's output and a last line
``<token> exit <code>``. The secrets live only in that child's environment. A connection closed
before its exit line (the host was interrupted or killed) kills its build. The agent exits, and
the engine removes the container (``--rm``), after ``--idle`` seconds without a build, when its
socket file is removed or replaced, or (``--owned``) when the connection of the process that
started it (its lease) closes.

Run as ``<script> --relay <socket> [--wait <seconds>]`` (``<engine> exec -i``), it is the host's connection where the
host cannot connect to a socket in a bind mount (Docker Desktop's VM, a remote engine): it connects to the agent
(waiting up to ``--wait`` seconds for it to listen), writes :data:`RELAY_READY` (else :data:`RELAY_NO_AGENT`) as its
first line, then copies bytes between its stdin/stdout and the socket; its stdin's end ends the connection's sending
side, as a closed connection would.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

#: A line starting with this is the error the host shows the user.
ERROR_PREFIX = "aws-lambda-artifact-builder error: "

#: ``platform.machine()`` spellings of each Lambda architecture.
MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}


#: The relay's first line: connected to the agent, what follows is the agent's; or no agent listens.
RELAY_READY = "alab-relay ready"
RELAY_NO_AGENT = "alab-relay no agent"
#: The agent's first log line: its socket listens (a host that cannot connect to it then uses the relay).
AGENT_LISTENING = "alab-agent listening"


class BuildError(Exception):
    """A failure whose message is meant for the user."""


def log(msg: str) -> None:
    print(f"[container] {msg}", flush=True)


def check_interpreter(plan: dict[str, Any]) -> None:
    """The image must run the target's Python and architecture, or the layer would not load on Lambda."""
    want_version = plan["python_version"]
    have_version = "{}.{}".format(*sys.version_info[:2])
    if have_version != want_version:
        raise BuildError(
            f"the image {plan['image']} runs Python {have_version} but the layer targets Python {want_version}; "
            f"name an image with Python {want_version}"
        )
    want_arch = plan["architecture"]
    machine = platform.machine().lower()
    if machine not in MACHINES[want_arch]:
        raise BuildError(
            f"the image {plan['image']} runs on {machine} but the layer targets {want_arch}; "
            f"the engine ignored --platform or the image has no {want_arch} variant"
        )


def tool_env(plan: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Environment for installing a build tool: the plan's settings without the index login."""
    env = {k: v for k, v in environ.items() if k not in plan["secret_env_names"]}
    env.update(plan["env"])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def ensure_tools(plan: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """The executables the plan's argv placeholders stand for, installing the pinned tools when missing.

    ``{python}`` is the image's interpreter (the target); ``{tools_python}`` the virtualenv's, which
    runs the pinned pip; ``{uv}``/``{poetry}`` its scripts.
    """
    spec = plan["tools"]
    requirements = spec["requirements"]
    # One virtualenv per image interpreter and tool set: a venv made by another image may not run here.
    key = hashlib.sha256(
        "\0".join([plan["image"], os.path.realpath(sys.executable), *requirements]).encode()
    ).hexdigest()[:12]
    dir_tools = Path(plan["dir_cache"]) / "tools"
    dir_venv = dir_tools / f"{spec['name']}-py{plan['python_version']}-{plan['architecture']}-{key}"
    path_ready = dir_venv / ".ready"
    dir_tools.mkdir(parents=True, exist_ok=True)
    with open(dir_tools / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path_ready.exists():
            log(f"using cached {' '.join(requirements)}")
        else:
            log(f"installing {' '.join(requirements)} into the build cache")
            shutil.rmtree(dir_venv, ignore_errors=True)
            run(
                [sys.executable, "-m", "venv", str(dir_venv)],
                env=tool_env(plan, environ),
                what="creating the tools venv",
            )
            run(
                [str(dir_venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
                env=tool_env(plan, environ),
                what=f"installing {' '.join(requirements)}",
            )
            path_ready.write_text("\n".join(requirements))
    dir_bin = dir_venv / "bin"
    return {
        "{python}": sys.executable,
        "{tools_python}": str(dir_bin / "python"),
        "{uv}": str(dir_bin / "uv"),
        "{poetry}": str(dir_bin / "poetry"),
    }


def run(argv: list[str], *, env: dict[str, str], what: str, cwd: str | None = None) -> None:
    # No input: nothing a build runs may wait on a terminal.
    result = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BuildError(f"{what} failed with exit code {result.returncode}: {' '.join(argv)}")


def step_env(plan: dict[str, Any], step: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Like the local build: drop inherited installer settings (but the login and transport ones), add the step's."""
    keep = set(plan["keep_env"]) | set(step["secret_env_names"])
    prefixes = tuple(step["unset_env"])
    env = {k: v for k, v in environ.items() if k in keep or not k.startswith(prefixes)}
    env.update(plan["env"])
    env.update(step["env"])
    missing = [name for name in step["secret_env_names"] if name not in env]
    if missing:
        raise BuildError(f"{step['description']} needs {', '.join(missing)}, which the engine did not pass in")
    return env


def run_steps(plan: dict[str, Any], tools: dict[str, str], environ: dict[str, str]) -> None:
    for step in plan["steps"]:
        for path, text in step["files"].items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        argv = [tools.get(arg, arg) for arg in step["argv"]]
        log(f"--- {step['description']}: {' '.join(argv)}")
        run(argv, env=step_env(plan, step, environ), what=step["description"], cwd=step["cwd"])


def write_build_facts(path_plan: str, plan: dict[str, Any], tools: dict[str, str], environ: dict[str, str]) -> None:
    """``container-build-facts.json`` beside the plan: the installer's version as it answers in here (the
    provenance's tool version; the host adds the ID of the image that ran)."""
    name = plan["tools"]["name"]
    argv = [tools["{tools_python}"], "-m", "pip"] if name == "pip" else [tools["{" + name + "}"]]
    # The pinned tools never change in their venv: asked once, remembered there.
    path_version = Path(tools["{tools_python}"]).parent.parent / ".tool-version"
    version = path_version.read_text(encoding="utf-8") if path_version.exists() else None
    if not version:
        try:
            done = subprocess.run([*argv, "--version"], env=tool_env(plan, environ), capture_output=True, text=True)
            version = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
        except OSError:
            version = None
        if version:
            with contextlib.suppress(OSError):
                path_tmp = path_version.with_name(f".tool-version.{os.getpid()}")
                path_tmp.write_text(version, encoding="utf-8")
                os.replace(path_tmp, path_version)
    facts = {"tool_version": version}
    log(f"installer in the container: {version}")
    Path(path_plan).with_name("container-build-facts.json").write_text(json.dumps(facts), encoding="utf-8")


def main(path_plan: str, environ: dict[str, str] | None = None) -> int:
    """One build; ``environ`` is the container's environment plus what the host passed in."""
    environ = dict(os.environ) if environ is None else environ
    try:
        try:
            plan = json.loads(Path(path_plan).read_text(encoding="utf-8"))
        except OSError as e:
            raise BuildError(f"the build plan is not visible in the container: {e}") from None
        # Everything the build writes outside python/ goes below the build's own folder (HOME, TMPDIR).
        for name in ("TMPDIR", "HOME"):
            Path(plan["env"][name]).mkdir(parents=True, exist_ok=True)
        check_interpreter(plan)
        tools = ensure_tools(plan, environ)
        write_build_facts(path_plan, plan, tools, environ)
        run_steps(plan, tools, environ)
    except BuildError as e:
        print(ERROR_PREFIX + str(e), file=sys.stderr, flush=True)
        return 1
    return 0


class Agent:
    """The listening socket, its builds in flight and when it was last used."""

    def __init__(self, path_socket: str, idle_seconds: float, owned: bool) -> None:
        self.path_socket = path_socket
        self.idle_seconds = idle_seconds
        self.owned = owned
        self.lock = threading.Lock()
        self.active = 0
        self.last_used = time.monotonic()
        self.lease_ended = False
        os.umask(0o077)  # the socket carries logins: the invoking user's only
        Path(path_socket).parent.mkdir(parents=True, exist_ok=True)
        Path(path_socket).unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path_socket)
        self.sock.listen(64)
        self.sock.settimeout(1.0)
        self.inode = os.stat(path_socket).st_ino
        print(f"{AGENT_LISTENING} {path_socket}", flush=True)

    def should_exit(self) -> bool:
        try:
            replaced = os.stat(self.path_socket).st_ino != self.inode
        except OSError:
            replaced = True
        with self.lock:
            idle = self.active == 0 and time.monotonic() - self.last_used > self.idle_seconds
        return replaced or idle or self.lease_ended

    def serve(self) -> int:
        while not self.should_exit():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
        with contextlib.suppress(OSError):
            if os.stat(self.path_socket).st_ino == self.inode:
                os.unlink(self.path_socket)
        return 0

    def handle(self, conn: socket.socket) -> None:
        with self.lock:
            self.active += 1
        try:
            line = conn.makefile("rb").readline()
            request = json.loads(line) if line.strip() else {}
            if request.get("lease"):
                conn.recv(1)  # the owner's connection: it closes when its process ends
                self.lease_ended = self.owned
            elif request:
                build(conn, request)
        except (OSError, ValueError):
            pass  # the host went away; nothing to answer
        finally:
            conn.close()
            with self.lock:
                self.active -= 1
                self.last_used = time.monotonic()


def build(conn: socket.socket, request: dict[str, Any]) -> None:
    """One build in a child process (forked: no interpreter start) whose output goes to the host, then its exit
    line; a connection closed early (the host interrupted or killed) kills the build and everything it started."""
    env = {**os.environ, **request["env"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only runs main()
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            for fd in (1, 2):
                os.dup2(conn.fileno(), fd)
            code = main(request["plan"], env)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable and not _receive(conn):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
    conn.sendall(f"{request['token']} exit {os.waitstatus_to_exitcode(status)}\n".encode())


def _receive(conn: socket.socket) -> bytes:
    """What the host sent after its request: nothing until it closes (b"") or resets the connection."""
    try:
        return conn.recv(1)
    except OSError:
        return b""


def agent(argv: list[str]) -> int:
    """``--serve SOCKET --idle SECONDS [--owned]`` (see the module docstring)."""
    path_socket, idle = argv[argv.index("--serve") + 1], float(argv[argv.index("--idle") + 1])
    return Agent(path_socket, idle, "--owned" in argv).serve()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def relay(argv: list[str]) -> int:
    """``--relay SOCKET [--wait SECONDS]`` (see the module docstring)."""
    path_socket = argv[argv.index("--relay") + 1]
    deadline = time.monotonic() + (float(argv[argv.index("--wait") + 1]) if "--wait" in argv else 0.0)
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path_socket)
            break
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                _write_all(fd_out, f"{RELAY_NO_AGENT}\n".encode())
                return 3
            time.sleep(0.02)
    _write_all(fd_out, f"{RELAY_READY}\n".encode())
    sending = True
    with sock:
        while True:
            readable, _, _ = select.select([sock, fd_in] if sending else [sock], [], [])
            if sock in readable:
                data = sock.recv(65536)
                if not data:
                    return 0
                _write_all(fd_out, data)
            if sending and fd_in in readable:
                data = os.read(fd_in, 65536)
                if data:
                    sock.sendall(data)
                else:
                    sock.shutdown(socket.SHUT_WR)  # the host closed: the agent sees the connection's end
                    sending = False


if __name__ == "__main__":
    if "--serve" in sys.argv:
        sys.exit(agent(sys.argv))
    sys.exit(relay(sys.argv) if "--relay" in sys.argv else main(sys.argv[1]))
