"""Container builds with a real engine (docker and podman) against the authenticated private index.

CI gets its engine from scripts/setup-container-engine.sh: podman, a Debian image with Python 3.11
(ALAB_CONTAINER_TEST_IMAGE) and a podman API socket for the docker CLI (DOCKER_HOST). Elsewhere a
test skips when the engine or image is absent; with CI=true it fails instead.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerError,
    LayerPathLayout,
    ManifestError,
    build_layer_artifacts_in_container,
    build_layer_artifacts_in_local,
    build_layer_artifacts_using_pip_in_container,
    build_layer_artifacts_using_poetry_in_container,
    build_layer_artifacts_using_uv_in_container,
    create_layer_zip_file,
)
from aws_lambda_artifact_builder.layer import build_container_runner
from aws_lambda_artifact_builder.layer.build_container import (
    ContainerEngine,
    close_build_containers,
    detect_container_engine,
    list_build_containers,
)
from aws_lambda_artifact_builder.layer.package import read_distributions
from support.ci import IN_CI
from support.processes import files_containing, watch_processes
from support.projects import set_pin

#: The Python of the test image; the local build it is compared with targets the same.
PYTHON = os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11")
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
BUILDERS = {
    "pip": build_layer_artifacts_using_pip_in_container,
    "poetry": build_layer_artifacts_using_poetry_in_container,
    "uv": build_layer_artifacts_using_uv_in_container,
}
RUNTIME_SET = {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}
#: How the host reaches the build container's agent: its socket in the bind mount, or ``<engine> exec`` (the relay
#: of Docker Desktop and remote engines, forced here with ALAB_BUILD_CONTAINER_RELAY=1).
CONNECTIONS = {"direct": "0", "relay": "1"}


def use_connection(monkeypatch: pytest.MonkeyPatch, connection: str) -> None:
    monkeypatch.setenv("ALAB_BUILD_CONTAINER_RELAY", CONNECTIONS[connection])


def need(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def container_image() -> str:
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not image:
        need(
            f"ALAB_CONTAINER_TEST_IMAGE names no image with Python {PYTHON} "
            f"(scripts/setup-container-engine.sh builds one and prints the variable)"
        )
    return str(image)


@pytest.fixture(scope="session")
def found_engines() -> dict[str, ContainerEngine | str]:
    found: dict[str, ContainerEngine | str] = {}
    for runtime in ("docker", "podman"):
        try:
            found[runtime] = detect_container_engine(runtime)
        except LayerError as e:
            found[runtime] = str(e)
    return found


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest, found_engines: dict[str, ContainerEngine | str]) -> ContainerEngine:
    probed = found_engines[request.param]
    if isinstance(probed, str):
        need(probed)
    assert isinstance(probed, ContainerEngine)
    return probed


@pytest.fixture(scope="session")
def container_cache(dir_session: Path) -> Path:
    """One cache for the session: the first build of each tool installs it (through the host's CA)."""
    return dir_session / "container-cache"


def installed(path_pyproject: Path) -> dict[str, str]:
    dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
    return {d.name: d.version for d in read_distributions(dir_python)}


def local_zip_sha256(path_pyproject: Path, credentials: Credentials, tool: str) -> str:
    build_layer_artifacts_in_local(
        tool=tool,
        path_pyproject_toml=path_pyproject,
        python_version=PYTHON,
        architecture=ARCH,
        credentials=credentials,
        skip_prompt=True,
        verbose=False,
    )
    return create_layer_zip_file(path_pyproject_toml=path_pyproject, verbose=False).sha256


@pytest.mark.parametrize(("tool", "connection"), [("pip", "direct"), ("poetry", "direct"), ("uv", "direct"),
                                                   ("uv", "relay")])  # fmt: skip
def test_container_build_gives_the_local_builds_zip_and_keeps_the_login_secret(
    tool: str,
    connection: str,
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
):
    use_connection(monkeypatch, connection)
    path_pyproject = project_copy(tool)
    layout = LayerPathLayout(path_pyproject_toml=path_pyproject)
    local_sha256 = local_zip_sha256(path_pyproject, credentials, tool)
    # A credentials file left by an old version must not survive (nor be read).
    layout.path_private_repository_credentials_in_local.parent.mkdir(parents=True, exist_ok=True)
    layout.path_private_repository_credentials_in_local.write_text(credentials.password)
    environ_before = dict(os.environ)
    logs: list[str] = []
    build = functools.partial(
        BUILDERS[tool],
        path_pyproject_toml=path_pyproject,
        python_version=PYTHON,
        architecture=ARCH,
        credentials=credentials,
        image=container_image,
        container_runtime=engine.runtime,
        dir_cache=container_cache,
        printer=logs.append,
    )
    close_build_containers()  # the first build below starts a fresh container
    with watch_processes(monkeypatch) as watch:
        build()
    fresh = create_layer_zip_file(path_pyproject_toml=path_pyproject, verbose=False)
    with watch_processes(monkeypatch) as watch_kept:
        build()  # in the container the first build left running
    kept = create_layer_zip_file(path_pyproject_toml=path_pyproject, verbose=False)

    # byte-identical to the local build of the same lock, in a fresh container and in a kept one
    assert fresh.sha256 == kept.sha256 == local_sha256
    assert installed(path_pyproject) == RUNTIME_SET
    assert not list(layout.dir_python.glob("alab_demo_devtool*"))
    assert {p.stat().st_uid for p in layout.dir_python.rglob("*")} == {os.geteuid()}
    # No container started, nor entered but by the relay (an engine probe older than its TTL may be repeated).
    entered = [s.argv[1] for s in watch_kept.spawned if s.argv[0] == engine.executable and s.argv[1] != "info"]
    assert entered == (["exec"] if connection == "relay" else [])
    running = list_build_containers(engine, path_pyproject.parent)
    assert len(running) == 1
    close_build_containers()
    assert list_build_containers(engine, path_pyproject.parent) == []

    secrets = [credentials.password, quote(credentials.password, safe="")]
    runs = [s for s in watch.spawned if s.argv[1:2] == ["run"]]
    assert len(runs) == 1 and runs[0].argv[0] == engine.executable and running[0] in runs[0].argv
    execs = [s for s in watch.spawned + watch_kept.spawned if s.argv[1:2] == ["exec"]]
    assert len(execs) == (2 if connection == "relay" else 0)
    # The login travels in the build's request only: neither argv nor the engine client's environment has it.
    for record in runs + execs:
        assert not any(secret in v for secret in secrets for v in (record.env or {}).values())
    for record in watch.spawned + watch_kept.spawned:
        assert not any(secret in arg for secret in secrets for arg in record.argv), record.argv
    # /proc shows the processes inside the container too (same kernel): none has the login.
    assert any(re.match(r"python3? -u /var/task/build/lambda/", c) for c in watch.cmdlines)
    assert not [c for c in watch.cmdlines | watch_kept.cmdlines if any(secret in c for secret in secrets)]
    assert not [line for line in logs if any(secret in line for secret in secrets)]
    assert not layout.path_private_repository_credentials_in_local.exists()
    assert not files_containing(path_pyproject.parent, [s.encode() for s in secrets])
    assert not files_containing(container_cache, [s.encode() for s in secrets])
    assert dict(os.environ) == environ_before


def test_a_host_refused_by_the_agents_socket_relays_at_once(
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
):
    """Where a socket in a bind mount cannot be connected from the host although the platform looks local
    (the switch says direct), the agent's "listening" line and a refused connection switch to the relay within
    seconds, for the container just started and for one an earlier process left."""
    use_connection(monkeypatch, "direct")
    monkeypatch.setattr(build_container_runner, "_connect", lambda path: None)  # every connection refused
    monkeypatch.setattr(build_container_runner, "_relay_forced", False)
    path_pyproject = project_copy("uv")
    build = functools.partial(
        build_layer_artifacts_using_uv_in_container,
        path_pyproject_toml=path_pyproject,
        python_version=PYTHON,
        architecture=ARCH,
        credentials=credentials,
        image=container_image,
        container_runtime=engine.runtime,
        dir_cache=container_cache,
        verbose=False,
    )
    close_build_containers()
    started = time.monotonic()
    with watch_processes(monkeypatch) as watch:
        build()
    assert time.monotonic() - started < 20, "no wait for a connection that cannot come"
    assert [s.argv[1] for s in watch.spawned if s.argv[1:2] in (["run"], ["exec"])] == ["run", "exec"]
    assert installed(path_pyproject) == RUNTIME_SET
    monkeypatch.setattr(build_container_runner, "_relay_forced", False)  # as a later process
    with watch_processes(monkeypatch) as watch_kept:
        build()
    assert [s.argv[1] for s in watch_kept.spawned if s.argv[1:2] in (["run"], ["exec"])] == ["exec"]
    assert len(list_build_containers(engine, path_pyproject.parent)) == 1


def test_a_login_inside_requirements_reaches_pip_in_the_container_and_nothing_else(
    engine: ContainerEngine, container_image: str, container_cache: Path, project_copy, private_index
):
    """As for a local build (issue 14, item 4): the login written in requirements.txt is pip's through the
    build request's environment; a relative --find-links is the requirements file's folder's."""
    path_pyproject = project_copy("pip")
    secret = quote(private_index.password, safe="@")  # a raw "@": the user-info ends at the last one
    url = private_index.url.replace("://", f"://{private_index.username}:{secret}@")
    req = path_pyproject.parent / "requirements.txt"
    (path_pyproject.parent / "wheels").mkdir()  # empty: pip only looks there
    req.write_text(f"--index-url {url}\n--find-links ./wheels\n" + req.read_text())
    logs: list[str] = []
    build_layer_artifacts_using_pip_in_container(  # no credentials: the index and its login are the file's
        path_pyproject_toml=path_pyproject,
        python_version=PYTHON,
        architecture=ARCH,
        image=container_image,
        container_runtime=engine.runtime,
        dir_cache=container_cache,
        printer=logs.append,
    )
    assert installed(path_pyproject) == RUNTIME_SET
    layout = LayerPathLayout(path_pyproject_toml=path_pyproject)
    pieces = [secret, private_index.password.split("@")[-1]]
    plans = list(layout.dir_build_lambda_layer.glob("container-build-plan-*.json"))
    assert plans and "--find-links /var/task/wheels" in plans[0].read_text()
    # No file the build wrote holds it, not even its copy of the user's file (copied without its logins).
    assert not files_containing(layout.dir_build_lambda_layer, [s.encode() for s in pieces])
    assert not files_containing(container_cache, [s.encode() for s in pieces])
    assert not [line for line in logs if any(s in line for s in pieces)]


@pytest.mark.parametrize("connection", ["direct", "relay"])
def test_a_failed_build_names_the_problem_and_its_container_serves_the_next(
    connection: str,
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
):
    use_connection(monkeypatch, connection)
    path_pyproject = project_copy("pip")
    set_pin(path_pyproject, "alab-demo-core", "9.9.9")  # not on the index
    with pytest.raises(LayerError) as raised:
        build_layer_artifacts_in_container(
            tool="pip",
            path_pyproject_toml=path_pyproject,
            python_version=PYTHON,
            architecture=ARCH,
            credentials=credentials,
            image=container_image,
            container_runtime=engine.runtime,
            dir_cache=container_cache,
            verbose=False,
        )
    message = str(raised.value)
    assert "alab-demo-core" in message and "9.9.9" in message and "\n" not in message.strip()  # install_errors
    assert credentials.password not in message and quote(credentials.password, safe="") not in message
    # A failed build leaves nothing behind in the kept container (its own staging, HOME and TMPDIR): it stays.
    (kept,) = list_build_containers(engine, path_pyproject.parent)
    set_pin(path_pyproject, "alab-demo-core", "1.0.0")
    build_layer_artifacts_in_container(
        tool="pip",
        path_pyproject_toml=path_pyproject,
        python_version=PYTHON,
        architecture=ARCH,
        credentials=credentials,
        image=container_image,
        container_runtime=engine.runtime,
        dir_cache=container_cache,
        verbose=False,
    )
    assert installed(path_pyproject) == RUNTIME_SET
    assert list_build_containers(engine, path_pyproject.parent) == [kept]


class HangingIndex:
    """Accepts connections and never answers: a build against it waits until interrupted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def dropped(self, timeout: float) -> bool:
        """Whether every client let go of its connection within ``timeout`` (its process was killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_ = []
            for conn in self.held:
                conn.setblocking(False)
                try:
                    if conn.recv(1 << 16):
                        open_.append(conn)  # a request: still talking
                except BlockingIOError:
                    open_.append(conn)
                except OSError:
                    pass
            if not open_:
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("connection", ["direct", "relay"])
def test_ctrl_c_stops_the_build_in_the_kept_container(
    connection: str,
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    use_connection(monkeypatch, connection)  # the child inherits it
    path_pyproject = project_copy("pip")
    index = HangingIndex()
    script = textwrap.dedent(
        f"""
        from aws_lambda_artifact_builder.api import Credentials, build_layer_artifacts_in_container
        build_layer_artifacts_in_container(
            tool="pip", path_pyproject_toml={str(path_pyproject)!r}, python_version={PYTHON!r},
            architecture={ARCH!r}, image={container_image!r}, container_runtime={engine.runtime!r},
            dir_cache={str(container_cache)!r},
            credentials=Credentials(index_name="hang", index_url="http://127.0.0.1:{index.port}/simple/",
                                    username="u", password="p"),
        )
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        started: list[str] = []
        deadline = time.monotonic() + 120
        while not started and time.monotonic() < deadline and child.poll() is None:
            started = list_build_containers(engine, path_pyproject.parent)
            time.sleep(0.2)
        assert started, "the build container never appeared"
        while not index.held and time.monotonic() < deadline:  # until pip inside waits on the index
            time.sleep(0.1)
        assert index.held, "pip in the container never reached the index"
        os.kill(child.pid, signal.SIGINT)
        output, _ = child.communicate(timeout=120)
        # pip in the container was killed with the build (it would wait minutes on the index), the container stays.
        assert index.dropped(timeout=30), "pip in the container still waits on the index"
    finally:
        if child.poll() is None:
            child.kill()
        index.close()
    assert child.returncode != 0 and "KeyboardInterrupt" in output
    assert list_build_containers(engine, path_pyproject.parent) == started


@pytest.mark.parametrize("connection", ["direct", "relay"])
def test_a_process_killed_during_a_build_stops_its_build_in_the_container(
    connection: str,
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    monkeypatch: pytest.MonkeyPatch,
):
    """The build's connection to the agent closes with the process (relaying: its ``exec``'s stdin ends): the
    agent kills the build (pip waiting on a hanging index, which would wait minutes for its timeouts); the kept
    container stays."""
    use_connection(monkeypatch, connection)  # the child inherits it
    path_pyproject = project_copy("pip")
    index = HangingIndex()
    script = textwrap.dedent(
        f"""
        from aws_lambda_artifact_builder.api import Credentials, build_layer_artifacts_in_container
        build_layer_artifacts_in_container(
            tool="pip", path_pyproject_toml={str(path_pyproject)!r}, python_version={PYTHON!r},
            architecture={ARCH!r}, image={container_image!r}, container_runtime={engine.runtime!r},
            dir_cache={str(container_cache)!r},
            credentials=Credentials(index_name="hang", index_url="http://127.0.0.1:{index.port}/simple/",
                                    username="u", password="p"),
        )
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not index.held and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert index.held, "pip in the container never reached the index"
        started = list_build_containers(engine, path_pyproject.parent)
        assert len(started) == 1
        child.kill()
        child.wait()
        assert index.dropped(timeout=30), "pip in the container still waits on the index"  # alone: 15 s × 6 tries
        assert list_build_containers(engine, path_pyproject.parent) == started
    finally:
        if child.poll() is None:
            child.kill()
        index.close()


def _build_in_a_process(
    path_pyproject: Path, engine: ContainerEngine, image: str, cache: Path, credentials: Credentials, *,
    end: str = "exit", idle_seconds: int | None = None, keep: str | None = None,
) -> None:  # fmt: skip
    """One uv build in a new Python process, as a one-shot ``alab`` run; ``end="SIGKILL"`` kills it afterwards."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from aws_lambda_artifact_builder.api import Credentials, build_layer_artifacts_in_container
        from aws_lambda_artifact_builder.layer import build_container_runner
        if {idle_seconds!r} is not None:
            build_container_runner.IDLE_SECONDS = {idle_seconds!r}
        build_layer_artifacts_in_container(
            tool="uv", path_pyproject_toml={str(path_pyproject)!r}, python_version={PYTHON!r},
            architecture={ARCH!r}, image={image!r}, container_runtime={engine.runtime!r},
            dir_cache={str(cache)!r}, verbose=False,
            credentials=Credentials(index_name={credentials.index_name!r}, index_url={credentials.index_url!r},
                                    username={credentials.username!r}, password={credentials.password!r}),
        )
        print("built", flush=True)
        if {end!r} == "SIGKILL":
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, **({"ALAB_KEEP_BUILD_CONTAINER": keep} if keep is not None else {})}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert "built" in result.stdout, result.stderr


def _gone_within(engine: ContainerEngine, path_pyproject: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while list_build_containers(engine, path_pyproject.parent) and time.monotonic() < deadline:
        time.sleep(0.5)
    return list_build_containers(engine, path_pyproject.parent) == []


def test_the_next_process_reuses_the_kept_container_which_exits_when_idle(
    engine: ContainerEngine, container_image: str, container_cache: Path, project_copy, credentials: Credentials
):
    """A one-shot run leaves its container for the next run of the same settings (no start), and a
    container left without builds exits by itself (here after 20 s instead of 10 minutes)."""
    path_pyproject = project_copy("uv")
    args = (path_pyproject, engine, container_image, container_cache, credentials)
    _build_in_a_process(*args, idle_seconds=20)
    kept = list_build_containers(engine, path_pyproject.parent)
    assert len(kept) == 1
    _build_in_a_process(*args, end="SIGKILL")
    assert list_build_containers(engine, path_pyproject.parent) == kept
    assert installed(path_pyproject) == RUNTIME_SET
    assert _gone_within(engine, path_pyproject, 60)


@pytest.mark.parametrize(("end", "connection"), [("exit", "direct"), ("SIGKILL", "direct"), ("exit", "relay"),
                                                  ("SIGKILL", "relay")])  # fmt: skip
def test_with_keeping_turned_off_the_container_ends_with_the_process(
    end: str,
    connection: str,
    engine: ContainerEngine,
    container_image: str,
    container_cache: Path,
    project_copy,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
):
    """ALAB_KEEP_BUILD_CONTAINER=0: the container is the process's own; its agent exits when the process's
    lease connection closes (relaying: the end of its ``exec``'s stdin), at a normal exit or killed, and the
    engine removes the container (--rm)."""
    use_connection(monkeypatch, connection)
    path_pyproject = project_copy("uv")
    _build_in_a_process(path_pyproject, engine, container_image, container_cache, credentials, end=end, keep="0")
    assert _gone_within(engine, path_pyproject, 60)


def test_concurrent_builds_of_the_same_target_do_not_collide(
    found_engines: dict[str, ContainerEngine | str],
    container_image: str,
    container_cache: Path,
    project_copy,
    credentials: Credentials,
    tmp_path: Path,
):
    engine = next((e for e in found_engines.values() if isinstance(e, ContainerEngine)), None)
    if engine is None:
        need("no container engine: " + "; ".join(str(e) for e in found_engines.values()))
    assert engine is not None
    first = project_copy("uv")
    second = tmp_path / "second" / "pyproject.toml"
    subprocess.run(["cp", "-r", str(first.parent), str(second.parent)], check=True)
    logs: dict[Path, list[str]] = {first: [], second: []}
    errors: list[BaseException] = []

    def build(path: Path) -> None:
        try:
            build_layer_artifacts_using_uv_in_container(
                path_pyproject_toml=path,
                python_version=PYTHON,
                architecture=ARCH,
                credentials=credentials,
                image=container_image,
                container_runtime=engine.runtime,
                dir_cache=container_cache,
                printer=logs[path].append,
            )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert installed(first) == installed(second) == RUNTIME_SET
    names = [
        line.split()[3].rstrip(":")
        for p in (first, second)
        for line in logs[p]
        if line.startswith("--- build container")
    ]
    assert len(names) == 2 and names[0] != names[1]


def test_files_are_owned_by_the_invoking_user_when_that_is_not_root(
    found_engines: dict[str, ContainerEngine | str],
    container_image: str,
    project_copy,
    credentials: Credentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Pretend to be user 4321: the container must run as 4321 and leave 4321's files in the project."""
    engine = next((e for e in found_engines.values() if isinstance(e, ContainerEngine) and not e.rootless), None)
    if engine is None:
        need("no rootful container engine")
    assert engine is not None
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the project to another user")
    uid = gid = 4321
    path_pyproject = project_copy("pip")
    dir_cache = tmp_path / "cache-4321"
    dir_cache.mkdir()
    for root in (path_pyproject.parent, dir_cache):
        subprocess.run(["chown", "-R", f"{uid}:{gid}", str(root)], check=True)
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    monkeypatch.setattr(os, "getegid", lambda: gid)
    old_umask = os.umask(0)  # the real user owns the folders the host side creates; root must let 4321 in
    try:
        build_layer_artifacts_in_container(
            tool="pip",
            path_pyproject_toml=path_pyproject,
            python_version=PYTHON,
            architecture=ARCH,
            credentials=credentials,
            image=container_image,
            container_runtime=engine.runtime,
            dir_cache=dir_cache,
            verbose=False,
        )
    finally:
        os.umask(old_umask)
    created = list(LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python.iterdir())
    assert created and {p.stat().st_uid for p in created} == {uid}
    assert installed(path_pyproject) == RUNTIME_SET


# --- preflight: each failure names its cause before anything runs ---------------------------------


def test_no_engine_binary(project_copy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path_pyproject = project_copy("uv")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("UV_PYTHON", sys.executable)  # uv checks the lock with a Python; none is on this PATH
    with pytest.raises(LayerError, match="docker is not installed.*podman is not installed"):
        build_layer_artifacts_in_container(tool="uv", path_pyproject_toml=path_pyproject, python_version=PYTHON)


def test_engine_not_answering(project_copy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if subprocess.run(["which", "docker"], capture_output=True).returncode != 0:
        need("the docker CLI is not installed")
    path_pyproject = project_copy("uv")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(LayerError, match="docker is installed but its engine is not answering"):
        build_layer_artifacts_in_container(
            tool="uv", path_pyproject_toml=path_pyproject, python_version=PYTHON, container_runtime="docker"
        )


def test_unknown_container_runtime(project_copy):
    with pytest.raises(LayerError, match="container_runtime 'lxc' is not one of: docker, podman"):
        build_layer_artifacts_in_container(
            tool="uv", path_pyproject_toml=project_copy("uv"), python_version=PYTHON, container_runtime="lxc"
        )


def test_missing_manifest_fails_before_any_engine_is_asked(project_copy, monkeypatch: pytest.MonkeyPatch, tmp_path):
    path_pyproject = project_copy("uv")
    (path_pyproject.parent / "uv.lock").unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ManifestError, match="uv.lock"):
        build_layer_artifacts_in_container(tool="uv", path_pyproject_toml=path_pyproject, python_version=PYTHON)


def test_image_missing_and_not_pullable(engine: ContainerEngine, project_copy):
    with pytest.raises(
        LayerError, match="127.0.0.1:9/alab/no-such-image:never is not available .* could not be pulled"
    ):
        build_layer_artifacts_in_container(
            tool="uv",
            path_pyproject_toml=project_copy("uv"),
            python_version=PYTHON,
            architecture=ARCH,
            image="127.0.0.1:9/alab/no-such-image:never",
            container_runtime=engine.runtime,
            verbose=False,
        )


def test_architecture_not_runnable_on_this_host(engine: ContainerEngine, project_copy):
    foreign = {"x86_64": "arm64", "arm64": "x86_64"}[ARCH]
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[foreign]
    if any(Path("/proc/sys/fs/binfmt_misc").glob(f"*{machine}*")):
        pytest.skip(f"this host emulates {machine} (binfmt_misc)")
    with pytest.raises(LayerError, match=f"architecture {foreign} is not runnable on this {ARCH} host"):
        build_layer_artifacts_in_container(
            tool="uv",
            path_pyproject_toml=project_copy("uv"),
            python_version=PYTHON,
            architecture=foreign,
            image="127.0.0.1:9/never-pulled:1",
            container_runtime=engine.runtime,
            verbose=False,
        )


def test_an_image_with_another_python_is_refused_in_the_container(
    engine: ContainerEngine, container_image: str, container_cache: Path, project_copy, credentials: Credentials
):
    other = "3.12" if PYTHON != "3.12" else "3.13"
    with pytest.raises(LayerError, match=f"runs Python {PYTHON} but the layer targets Python {other}"):
        build_layer_artifacts_in_container(
            tool="pip",
            path_pyproject_toml=project_copy("pip"),
            python_version=other,
            architecture=ARCH,
            credentials=credentials,
            image=container_image,
            container_runtime=engine.runtime,
            dir_cache=container_cache,
            verbose=False,
        )
