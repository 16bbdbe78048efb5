"""Faults under the real `pulumi` CLI: a failing build, and Ctrl-C (SIGINT to the CLI) during `pulumi up`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_lambda_artifact_builder.api import Credentials
from pulumi_cli import PulumiProject
from support.projects import set_pin
from support.servers import MotoServer
from test_pulumi_cli import AWS_ENV, DIR_SAMPLE_APP, LAYER, aws_clients, layer_versions, stack_config


@pytest.fixture(scope="module")
def fault_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def new_stack(pulumi_bin: Path, dir_root: Path, moto: MotoServer, credentials: Credentials) -> tuple[Any, PulumiProject, Path, str]:
    dir_app = dir_root / "sample_app"
    shutil.copytree(DIR_SAMPLE_APP, dir_app, ignore=shutil.ignore_patterns("build", "__pycache__"))
    s3, _ = aws_clients(moto)
    bucket = f"alab-cli-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    project = PulumiProject.create(pulumi_bin, dir_root, extra_env=AWS_ENV)
    config = stack_config(moto, bucket, dir_app, credentials)
    project.stack_init("dev", config, {"indexPassword": credentials.password})
    return project.stack("dev"), project, dir_app, bucket


def state_resources(project: PulumiProject) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    deployment = json.loads(project.cli("stack", "export", "--stack", "dev").stdout)["deployment"]
    return deployment.get("resources") or [], deployment.get("pending_operations") or []


def test_a_failing_build_is_a_clear_pulumi_error_and_records_nothing(
    pulumi_bin: Path, tmp_path: Path, fault_moto: MotoServer, credentials: Credentials
) -> None:
    from pulumi import automation as auto

    stack, project, dir_app, bucket = new_stack(pulumi_bin, tmp_path, fault_moto, credentials)
    set_pin(dir_app / "pyproject.toml", "alab-demo-core", "9.9.9")  # the index has no such version
    with pytest.raises(auto.CommandError) as failed:
        stack.up()
    text = str(failed.value)
    assert "error:" in text and "alab-demo-core==9.9.9" in text  # the engine's error names the cause
    s3, lam = aws_clients(fault_moto)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # no record, no artifact
    assert layer_versions(lam) == []
    resources, pending = state_resources(project)
    assert [r for r in resources if r["type"] != "pulumi:pulumi:Stack"] == [] and pending == []
    assert credentials.password not in text


def pulumi_children(pulumi_bin: Path) -> list[int]:
    """PIDs of the `pulumi` CLI processes this test process started."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and exe == str(pulumi_bin):
            pids.append(int(pid))
    return pids


def a_build_runs() -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"install\0--no-deps\0--target" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("interrupts", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_during_up_then_up_again_converges(
    pulumi_bin: Path, tmp_path: Path, fault_moto: MotoServer, credentials: Credentials, interrupts: int
) -> None:
    from pulumi import automation as auto

    stack, project, _, bucket = new_stack(pulumi_bin, tmp_path, fault_moto, credentials)
    outcome: dict[str, Any] = {}

    def up() -> None:
        try:
            outcome["result"] = stack.up()
        except auto.CommandError as e:
            outcome["error"] = e

    thread = threading.Thread(target=up)
    thread.start()
    deadline = time.monotonic() + 120
    while not a_build_runs() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert thread.is_alive(), "the up finished before its build could be interrupted"
    (pid,) = pulumi_children(pulumi_bin)
    for _ in range(interrupts):
        os.kill(pid, signal.SIGINT)
        time.sleep(0.2)
    thread.join(timeout=300)
    assert "error" in outcome, "an interrupted `pulumi up` fails"
    resources, pending = state_resources(project)
    first = {"resources": [r["type"] for r in resources], "pending": [p["type"] for p in pending]}

    if pending:  # the CLI exited with the create in flight: the engine asks the user to resolve it
        stack.refresh(clear_pending_creates=True)
        assert state_resources(project)[1] == []
    again = stack.up()
    assert again.outputs["layer_version"].value == 1, first
    _, lam = aws_clients(fault_moto)
    assert layer_versions(lam) == [1]  # published once, whatever the interruption left
    noop = stack.preview()
    assert noop.change_summary == {auto.OpType.SAME: 2}
