"""The pure half of the container build: engine argv, the plan the container runs, CA and tag checks."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import BuildError, Credentials, LayerError, LayerPathLayout, LayerTarget
from aws_lambda_artifact_builder.constants import LayerBuildToolEnum
from aws_lambda_artifact_builder.layer import build_container_runner, build_container_script
from aws_lambda_artifact_builder.layer.build import LockedPin
from aws_lambda_artifact_builder.layer.build_container import check_wheel_tags, move_tree, remove_stale_staging
from aws_lambda_artifact_builder.layer.build_container_plan import (
    DIR_PROJECT_IN_CONTAINER,
    PATH_CA_BUNDLE_IN_CONTAINER,
    PATH_SCRIPT_SOURCE,
    ContainerEngine,
    ContainerRun,
    agent_request,
    container_failure_message,
    container_plan,
    container_user,
    default_image,
    find_ca_bundle,
    interpreter_command,
    make_container_name,
    parse_exit_line,
    plan_container_steps,
    plan_wheel_steps,
    staging_dir,
)

PASSWORD = "s3cr@t/pa%ss"
CREDS = Credentials(index_name="corp", index_url="https://pkgs.example.com/simple/", username="ci", password=PASSWORD)
X86_311 = LayerTarget(python_version="3.11", architecture="x86_64")
ROOTFUL = ContainerEngine(runtime="docker", executable="/usr/bin/docker", architecture="x86_64", rootless=False)
ROOTLESS = ContainerEngine(runtime="podman", executable="/usr/bin/podman", architecture="x86_64", rootless=True)
PINS = [
    LockedPin(
        name="alab-demo-core", version="1.0.0", index_url="https://pkgs.example.com/simple/", hashes=("sha256:aa",)
    ),
    LockedPin(
        name="alab-demo-extra", version="1.0.0", index_url="https://pkgs.example.com/simple/", hashes=("sha256:bb",)
    ),
]


def make_run(tmp_path: Path, **overrides: object) -> ContainerRun:
    """A kept build container's settings; ``overrides`` replace fields."""
    fields: dict[str, object] = dict(
        engine=ROOTFUL,
        image="img:1",
        platform="linux/amd64",
        name="alab-layer-uv-py311-x86_64-abc",
        key="k1",
        image_id="sha256:0123",
        dir_project_root=tmp_path / "proj",
        dir_cache=tmp_path / "cache",
        path_ca_bundle=tmp_path / "ca.pem",
        user="1000:1000",
        network="host",
        script="/var/task/build/lambda/script.py",
        python_version="3.11",
    )
    fields.update(overrides)
    return ContainerRun(**fields)  # type: ignore[arg-type]


def test_default_image_is_the_sam_build_image_of_the_target() -> None:
    assert default_image(X86_311) == "public.ecr.aws/sam/build-python3.11:latest-x86_64"
    assert default_image(LayerTarget("3.13", "arm64")) == "public.ecr.aws/sam/build-python3.13:latest-arm64"


def test_container_names_are_readable_and_unique_per_build() -> None:
    names = {make_container_name(LayerBuildToolEnum.uv, X86_311) for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("alab-layer-uv-py311-x86_64-") for n in names)


def test_run_argv_detaches_the_agent_and_mounts_project_cache_and_ca(tmp_path: Path) -> None:
    argv = make_run(tmp_path).argv()
    assert argv[:4] == ["/usr/bin/docker", "run", "--detach", "--rm"]  # builds reach its agent's socket
    assert argv[argv.index("--platform") + 1] == "linux/amd64"
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    assert labels == [
        "aws-lambda-artifact-builder.build=k1",
        f"aws-lambda-artifact-builder.project={tmp_path / 'proj'}",
        "aws-lambda-artifact-builder.image-id=sha256:0123",
    ]
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "--mount"]
    assert f"type=bind,source={tmp_path / 'proj'},target={DIR_PROJECT_IN_CONTAINER}" in mounts
    assert f"type=bind,source={tmp_path / 'ca.pem'},target={PATH_CA_BUNDLE_IN_CONTAINER},readonly" in mounts
    assert "--env" not in argv and "-e" not in argv  # the login and proxies travel in each build's request
    assert argv[argv.index("--user") + 1] == "1000:1000"
    assert argv[argv.index("--network") + 1] == "host"
    # The agent listens in the cache mount, logs there, and exits after its idle time.
    assert argv[argv.index("img:1") + 1 :][-5:] == [
        "/var/task/build/lambda/script.py", "--serve", "/var/cache/aws-lambda-artifact-builder/agents/k1.sock",
        "--idle", "600",
    ]  # fmt: skip
    assert "exec >>/var/cache/aws-lambda-artifact-builder/agents/k1.log 2>&1" in argv[argv.index("img:1") + 3]
    assert make_run(tmp_path, owned=True).argv()[-1] == "--owned"
    paths = make_run(tmp_path).paths
    assert (paths.socket, paths.log, paths.lock) == tuple(
        tmp_path / "cache" / "agents" / f"k1.{e}" for e in ("sock", "log", "lock")
    )


def test_run_argv_without_ca_user_or_network(tmp_path: Path) -> None:
    argv = make_run(tmp_path, path_ca_bundle=None, user=None, network=None).argv()
    assert "--user" not in argv and "--network" not in argv
    assert not any(PATH_CA_BUNDLE_IN_CONTAINER in a for a in argv)


def test_a_comma_in_a_mounted_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="contains a comma"):
        make_run(tmp_path, dir_project_root=tmp_path / "a,b").argv()


def test_files_belong_to_the_invoking_user_on_rootful_engines_only() -> None:
    assert container_user(ROOTFUL, 1000, 100) == "1000:100"
    assert container_user(ROOTLESS, 1000, 100) is None  # container root already is the user
    assert container_user(ROOTFUL, 0, 0) is None


def test_ca_bundle_comes_from_the_first_variable_naming_a_file(tmp_path: Path) -> None:
    ca = tmp_path / "corp.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert find_ca_bundle({}) is None
    assert find_ca_bundle({"SSL_CERT_FILE": str(tmp_path / "missing.pem")}) is None
    assert find_ca_bundle({"PIP_CERT": str(ca)}) == ca
    other = tmp_path / "other.pem"
    other.write_text("x")
    assert find_ca_bundle({"SSL_CERT_FILE": str(other), "PIP_CERT": str(ca)}) == other


@pytest.mark.parametrize("tool", list(LayerBuildToolEnum))
def test_container_steps_are_the_native_local_plan_on_container_paths(tmp_path: Path, tool: LayerBuildToolEnum) -> None:
    layout = LayerPathLayout(path_pyproject_toml=tmp_path / "pyproject.toml")
    steps = plan_container_steps(
        tool=tool,
        target=X86_311,
        layout=layout,
        dir_python="/c/s/python",
        pins=PINS,
        credentials=CREDS,
        requirement_options=(),
    )
    install = steps[-1]
    assert install.argv[:3] == (
        ("{uv}", "pip", "install") if tool is LayerBuildToolEnum.uv else ("{tools_python}", "-m", "pip")
    )
    assert install.argv[install.argv.index("--target") + 1] == "/c/s/python"
    assert not any("--platform" in a or "--python-platform" in a for a in install.argv)  # native
    assert all(path.startswith("/var/task/build/lambda/layer/") for path in install.files)
    assert install.secret_env_names  # the login is needed, by name
    if tool is LayerBuildToolEnum.poetry:
        assert steps[0].argv == ("{poetry}", "check", "--lock", "--no-interaction")
        assert steps[0].cwd == "/var/task/build/lambda/layer/repo"
    else:
        assert len(steps) == 1


@pytest.mark.parametrize("tool", list(LayerBuildToolEnum))
def test_container_plan_names_secrets_but_never_holds_them(tmp_path: Path, tool: LayerBuildToolEnum) -> None:
    layout = LayerPathLayout(path_pyproject_toml=tmp_path / "pyproject.toml")
    steps = plan_container_steps(
        tool=tool,
        target=X86_311,
        layout=layout,
        dir_python="/c/s/python",
        pins=PINS,
        credentials=CREDS,
        requirement_options=(),
    )
    plan = container_plan(
        tool=tool, target=X86_311, image="img:1", steps=steps, path_ca_bundle=tmp_path / "ca.pem", dir_build="/c/s"
    )
    text = json.dumps(plan)
    assert PASSWORD not in text and "s3cr%40t" not in text
    assert plan["secret_env_names"] == sorted({n for s in steps for n in s.secret_env_names})
    assert plan["env"]["SSL_CERT_FILE"] == plan["env"]["PIP_CERT"] == PATH_CA_BUNDLE_IN_CONTAINER
    assert (
        plan["tools"]["requirements"]
        == {"pip": ["pip==26.3"], "poetry": ["pip==26.3", "poetry==2.5.1"], "uv": ["uv==0.13.9"]}[tool.value]
    )
    # Whatever a build writes outside python/ is in its own folder, so a kept container carries nothing over.
    assert plan["env"]["TMPDIR"] == "/c/s/tmp" and plan["env"]["HOME"] == "/c/s/home"
    assert plan["env"]["POETRY_CONFIG_DIR"].startswith("/c/s/home/")
    no_ca = container_plan(tool=tool, target=X86_311, image="img:1", steps=steps, path_ca_bundle=None, dir_build="/t")
    assert "SSL_CERT_FILE" not in no_ca["env"]


def _dist(dir_python: Path, name: str, *tags: str) -> None:
    dist_info = dir_python / f"{name}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    dist_info.joinpath("WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))


def test_wheel_tag_check_refuses_wheels_for_a_newer_glibc_than_lambdas(tmp_path: Path) -> None:
    dir_python = tmp_path / "python"
    _dist(dir_python, "pure", "py3-none-any")
    _dist(dir_python, "old_glibc", "cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64")
    _dist(dir_python, "from_source", "cp311-cp311-linux_x86_64")
    check_wheel_tags(dir_python, X86_311)
    _dist(dir_python, "new_glibc", "cp311-cp311-manylinux_2_28_x86_64")
    with pytest.raises(BuildError, match=r"new_glibc-1.0 \(cp311-cp311-manylinux_2_28_x86_64\)"):
        check_wheel_tags(dir_python, X86_311)
    # A manylinux_2_28 wheel is fine for 3.12, whose runtime (Amazon Linux 2023) has glibc 2.34.
    dir_312 = tmp_path / "python312"
    _dist(dir_312, "new_glibc", "cp312-cp312-manylinux_2_28_x86_64")
    check_wheel_tags(dir_312, LayerTarget("3.12", "x86_64"))


def test_wheel_tag_check_refuses_the_wrong_cpu(tmp_path: Path) -> None:
    dir_python = tmp_path / "python"
    _dist(dir_python, "arm_only", "cp311-cp311-manylinux_2_17_aarch64")
    with pytest.raises(BuildError, match="arm_only"):
        check_wheel_tags(dir_python, X86_311)


def test_staging_is_in_the_cache_mount_and_moving_it_renames_the_tree(tmp_path: Path) -> None:
    host, in_container = staging_dir(tmp_path / "cache", "b1")
    assert host == tmp_path / "cache" / "staging" / "b1"
    assert in_container == "/var/cache/aws-lambda-artifact-builder/staging/b1"
    src = host / "python"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "m.py").write_text("x = 1\n")
    inode = (src / "pkg" / "m.py").stat().st_ino
    dst = tmp_path / "project" / "python"
    dst.mkdir(parents=True)  # the layout's empty python/ folder
    move_tree(src, dst)
    assert not src.exists() and (dst / "pkg" / "m.py").stat().st_ino == inode  # renamed, not copied


def test_only_stale_staging_folders_are_removed(tmp_path: Path) -> None:
    old, young = tmp_path / "staging" / "old", tmp_path / "staging" / "young"
    for path in (old, young):
        (path / "python").mkdir(parents=True)
    os.utime(old, (1_000_000, 1_000_000))
    remove_stale_staging(tmp_path, now=1_000_000 + 2 * 24 * 3600)
    assert not old.exists() and young.exists()


def test_containers_are_reused_for_the_same_settings_only(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert make_run(tmp_path, name="other", key="k2", idle_seconds=5).reuse_key() == run.reuse_key()
    for field, value in [
        ("image", "img:2"),
        ("image_id", "sha256:4567"),  # the same tag, pulled again
        ("dir_project_root", tmp_path / "p2"),
        ("dir_cache", tmp_path / "c2"),
        ("path_ca_bundle", None),
        ("user", None),
        ("network", None),
        ("platform", "linux/arm64"),
        ("engine", ROOTLESS),
        ("script", "/var/task/other.py"),
        ("python_version", "3.12"),
    ]:
        assert make_run(tmp_path, **{field: value}).reuse_key() != run.reuse_key(), field


def test_the_key_adds_the_mounts_identity_the_script_version_and_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_artifact_builder.layer import build_container_runner as runner

    for name in ("proj", "cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "ca.pem").write_text("x")
    run = make_run(tmp_path, key="")
    kept = runner.keyed_run(run, {})
    assert kept.key and not kept.owned and runner.keyed_run(run, {"ALAB_KEEP_BUILD_CONTAINER": "1"}).key == kept.key
    owned = runner.keyed_run(run, {"ALAB_KEEP_BUILD_CONTAINER": "0"})
    assert owned.owned and owned.key != kept.key  # the process's own
    (tmp_path / "proj").rename(tmp_path / "old")
    (tmp_path / "proj").mkdir()  # the same path, another folder
    assert runner.keyed_run(run, {}).key != kept.key
    monkeypatch.setattr(runner, "_script_digest", lambda: "another version")
    (tmp_path / "proj").rmdir()
    (tmp_path / "old").rename(tmp_path / "proj")
    assert runner.keyed_run(run, {}).key != kept.key


def test_the_agent_request_holds_the_secret_values_and_its_exit_line_is_recognised() -> None:
    line = agent_request(path_plan="/var/task/p.json", env={"UV_INDEX_CORP_PASSWORD": PASSWORD}, token="t0k")
    assert line.endswith("\n") and line.count("\n") == 1  # one line per build
    assert json.loads(line) == {"plan": "/var/task/p.json", "env": {"UV_INDEX_CORP_PASSWORD": PASSWORD}, "token": "t0k"}
    assert parse_exit_line("t0k exit 0", "t0k") == ("", 0) and parse_exit_line("t0k exit 17", "t0k") == ("", 17)
    assert parse_exit_line("other exit 0", "t0k") is None and parse_exit_line("t0k exit", "t0k") is None
    assert parse_exit_line("t0k exit 0 more", "t0k") is None
    # A command's last output without a newline shares the line.
    assert parse_exit_line("Installed 11 packagest0k exit 0", "t0k") == ("Installed 11 packages", 0)


def test_the_container_starts_the_agent_with_python3_else_python() -> None:
    command = interpreter_command(image="img:1", python_version="3.11", script="/var/task/s.py")
    assert command[:2] == ("sh", "-c") and command[-2:] == ("/var/task/s.py", "--serve")
    assert "python3 python" in command[2] and "has neither python3 nor python" in command[2]


def test_compiled_local_sources_are_built_from_their_sdists_by_the_pinned_pip_without_dependencies() -> None:
    steps = plan_wheel_steps(
        {"native-lib": "/var/task/b/native-lib-0.2.0.tar.gz", "a-lib": "/var/task/b/a.tar.gz"}, "/var/task/w"
    )
    assert [s.argv for s in steps] == [
        (
            "{tools_python}",
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-input",
            "-w",
            "/var/task/w/a-lib",
            "/var/task/b/a.tar.gz",
        ),
        (
            "{tools_python}",
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-input",
            "-w",
            "/var/task/w/native-lib",
            "/var/task/b/native-lib-0.2.0.tar.gz",
        ),
    ]
    assert all(s.env == {"PIP_CONFIG_FILE": os.devnull} and not s.secret_env_names for s in steps)
    # With a private index, the build backend may come from it: its login is a secret of the request only.
    (step,) = plan_wheel_steps({"native-lib": "/var/task/b/n.tar.gz"}, "/var/task/w", credentials=CREDS)
    assert step.secret_env_names == ("PIP_EXTRA_INDEX_URL",)
    assert step.secret_env(CREDS)["PIP_EXTRA_INDEX_URL"].startswith("https://ci:")
    plan = container_plan(
        tool=LayerBuildToolEnum.pip, target=X86_311, image="i", steps=[step], path_ca_bundle=None, dir_build="/t"
    )
    assert PASSWORD not in json.dumps(plan) and "PIP_EXTRA_INDEX_URL" in plan["secret_env_names"]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (["aws-lambda-artifact-builder error: pip install failed", "out"], "pip install failed"),
        (["exec /bin/sh: exec format error"], "architecture x86_64 is not runnable on this x86_64 docker engine"),
        (["Error: unable to upgrade to tcp, received 409"], "the image img:1 cannot run the build: it has no /bin/sh"),
        (["something else"], "the build container alab-layer-uv-py311-x86_64-abc failed with exit code 3"),
    ],
)
def test_a_failure_is_named_in_its_first_line(tmp_path: Path, tail: list[str], expected: str) -> None:
    message = container_failure_message(returncode=3, tail=tail, run=make_run(tmp_path), target=X86_311)
    assert message.splitlines()[0].startswith(expected)


def test_an_interpreter_finders_exit_whose_output_the_engine_lost_is_still_named(tmp_path: Path) -> None:
    message = container_failure_message(returncode=127, tail=[], run=make_run(tmp_path), target=X86_311)
    assert message.startswith("the image img:1 has neither python3 nor python on PATH, or no /bin/sh")
    other = container_failure_message(returncode=1, tail=[], run=make_run(tmp_path), target=X86_311)
    assert other.startswith("the build container alab-layer-uv-py311-x86_64-abc failed with exit code 1")


def _agent(path_socket: Path, *args: str) -> subprocess.Popen[bytes]:
    """The build script's agent, run on the host (it needs nothing from the container to serve)."""
    agent = subprocess.Popen([sys.executable, str(PATH_SCRIPT_SOURCE), "--serve", str(path_socket), *args])
    deadline = time.monotonic() + 30
    while not path_socket.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return agent


def _ask(path_socket: Path, plan: str, token: str) -> list[str]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path_socket))
        sock.sendall(agent_request(path_plan=plan, env={"SECRET": PASSWORD}, token=token).encode())
        return sock.makefile("r").read().splitlines()


def test_the_agent_serves_concurrent_builds_each_with_its_exit_line_then_exits_when_idle(tmp_path: Path) -> None:
    path_socket = tmp_path / "agents" / "k.sock"
    agent = _agent(path_socket, "--idle", "3")
    try:
        assert stat.S_IMODE(path_socket.stat().st_mode) & 0o077 == 0  # the user's only: requests carry logins
        answers: dict[str, list[str]] = {}
        threads = [
            threading.Thread(target=lambda t=t: answers.setdefault(t, _ask(path_socket, f"/nowhere/{t}.json", t)))
            for t in ("t1", "t2", "t3")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for token, lines in answers.items():
            assert lines[-1] == f"{token} exit 1", lines  # each build its own child and exit line
            assert any(f"/nowhere/{token}.json" in line and "not visible" in line for line in lines), lines
        assert agent.wait(timeout=30) == 0  # idle for 3 s
        assert not path_socket.exists()
    finally:
        agent.kill()


def test_the_agent_exits_when_its_socket_is_removed_or_its_owner_ends(tmp_path: Path) -> None:
    path_socket = tmp_path / "s.sock"
    agent = _agent(path_socket, "--idle", "600")
    try:
        path_socket.unlink()  # the cache folder was cleaned: nothing can reach it any more
        assert agent.wait(timeout=30) == 0
    finally:
        agent.kill()
    agent = _agent(path_socket, "--idle", "600", "--owned")
    try:
        lease = socket.socket(socket.AF_UNIX)
        lease.connect(str(path_socket))
        lease.sendall(b'{"lease": true}\n')
        time.sleep(1.5)
        assert agent.poll() is None  # its owner lives
        lease.close()  # the owner's process ended
        assert agent.wait(timeout=30) == 0
    finally:
        agent.kill()


@pytest.mark.parametrize(
    ("platform", "environ", "relay"),
    [
        ("linux", {}, False),
        ("linux", {"DOCKER_HOST": "unix:///run/user/1000/podman/podman.sock"}, False),
        ("linux", {"DOCKER_HOST": "tcp://10.0.0.5:2376"}, True),
        ("linux", {"DOCKER_HOST": "ssh://builder@host"}, True),
        ("darwin", {}, True),  # Docker Desktop: the engine runs in a VM
        ("win32", {}, True),
        ("linux", {"ALAB_BUILD_CONTAINER_RELAY": "1"}, True),
        ("darwin", {"ALAB_BUILD_CONTAINER_RELAY": "0"}, False),
    ],
)
def test_the_relay_is_chosen_where_the_engine_is_not_this_linux_host_or_when_asked(
    platform: str, environ: dict[str, str], relay: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert build_container_runner.use_relay(environ) is relay


def test_the_relay_speaks_the_agents_protocol_over_its_stdin_and_stdout(tmp_path: Path) -> None:
    """What ``<engine> exec -i ... --relay`` runs: its first line, then the agent's answer to the request it copies."""
    assert build_container_runner.RELAY_READY == build_container_script.RELAY_READY
    assert build_container_runner.AGENT_LISTENING == build_container_script.AGENT_LISTENING
    path_socket = tmp_path / "agents" / "k.sock"
    relay = [sys.executable, str(PATH_SCRIPT_SOURCE), "--relay", str(path_socket)]
    absent = subprocess.run(relay, capture_output=True, text=True, timeout=30)
    assert (absent.returncode, absent.stdout) == (3, f"{build_container_script.RELAY_NO_AGENT}\n")
    agent = _agent(path_socket, "--idle", "600")
    try:
        request = agent_request(path_plan="/nowhere/r.json", env={"SECRET": PASSWORD}, token="t1")
        proc = subprocess.Popen([*relay, "--wait", "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request)
        proc.stdin.flush()  # and kept open: its end would end the connection, and kill the build
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("t1 exit"):
                break
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0 and lines[0] == build_container_runner.RELAY_READY, lines
        assert lines[-1] == "t1 exit 1" and any("not visible" in line for line in lines), lines
    finally:
        agent.kill()
