"""Faults under the real `pulumi` CLI: a failing build, and Ctrl-C (SIGINT to the CLI) during `pulumi up`."""

from __future__ import annotations

import json
import os
import re
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
from test_pulumi_cli import AWS_ENV, DIR_SAMPLE_APP, aws_clients, layer_versions, stack_config


@pytest.fixture(scope="module")
def fault_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def new_stack(
    pulumi_bin: Path, dir_root: Path, moto: MotoServer, credentials: Credentials
) -> tuple[Any, PulumiProject, Path, str, str]:
    """A stack of examples/pulumi with an app (and so a layer) of its own: the moto server is shared."""
    dir_app = dir_root / "sample_app"
    shutil.copytree(DIR_SAMPLE_APP, dir_app, ignore=shutil.ignore_patterns("build", "__pycache__"))
    s3, _ = aws_clients(moto)
    bucket = f"alab-cli-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    project = PulumiProject.create(pulumi_bin, dir_root, extra_env=AWS_ENV)
    app = f"app-{uuid.uuid4().hex[:8]}"
    config = stack_config(moto, bucket, dir_app, credentials) | {"appName": app}
    project.stack_init("dev", config, {"indexPassword": credentials.password})
    return project.stack("dev"), project, dir_app, bucket, f"{app}-deps"


def state_resources(project: PulumiProject) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    deployment = json.loads(project.cli("stack", "export", "--stack", "dev").stdout)["deployment"]
    return deployment.get("resources") or [], deployment.get("pending_operations") or []


def test_a_failing_build_is_a_clear_pulumi_error_and_records_nothing(
    pulumi_bin: Path, tmp_path: Path, fault_moto: MotoServer, credentials: Credentials
) -> None:
    from pulumi import automation as auto

    stack, project, dir_app, bucket, layer = new_stack(pulumi_bin, tmp_path, fault_moto, credentials)
    set_pin(dir_app / "pyproject.toml", "alab-demo-core", "9.9.9")  # the index has no such version
    with pytest.raises(auto.CommandError) as failed:
        stack.up()
    text = str(failed.value)
    # First, plainly, among the stack's diagnostics: which layer, and why.
    # (the engine prints the stack's and the resource's sections in either order)
    stack_diagnostics = (
        text.split("Diagnostics:")[1].split("pulumi:pulumi:Stack (")[1].split("pulumi-python:dynamic")[0]
    )
    cause = "pip could not install the pins: the index at 127.0.0.1"
    assert f"error: layer '{layer}' was not deployed: {cause}" in stack_diagnostics
    assert "has no version 9.9.9 of alab-demo-core" in stack_diagnostics
    # Then the resource's own error: the SDK's traceback, ending with the same one-line cause.
    resource_error = text.split(f"LambdaLayer ({layer}):")[1]
    assert cause in resource_error and "has no version 9.9.9 of alab-demo-core" in resource_error
    s3, lam = aws_clients(fault_moto)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # no record, no artifact
    assert layer_versions(lam, layer) == []
    resources, pending = state_resources(project)
    assert [r["type"] for r in resources if r["type"].startswith("pulumi-python:dynamic")] == [] and pending == []
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


@pytest.mark.parametrize("interrupts", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_during_up_then_up_again_converges(
    pulumi_bin: Path, tmp_path: Path, fault_moto: MotoServer, credentials: Credentials, interrupts: int
) -> None:
    from pulumi import automation as auto

    stack, project, dir_app, bucket, layer = new_stack(pulumi_bin, tmp_path, fault_moto, credentials)
    outcome: dict[str, Any] = {}
    building = threading.Event()

    def on_output(line: str) -> None:
        if re.search(r"\] plan +\d", line):  # the deploy's first stage line: the provider's Create is in flight
            building.set()

    def up() -> None:
        try:
            outcome["result"] = stack.up(on_output=on_output)
        except auto.CommandError as e:
            outcome["error"] = e

    thread = threading.Thread(target=up)
    thread.start()
    assert building.wait(timeout=120), "the build never started"
    (pid,) = pulumi_children(pulumi_bin)
    for _ in range(interrupts):
        os.kill(pid, signal.SIGINT)  # Ctrl-C in a terminal
        time.sleep(0.1)
    thread.join(timeout=300)
    resources, pending = state_resources(project)
    first = {
        "failed": "error" in outcome,
        "resources": [r["type"] for r in resources],
        "pending": [p["type"] for p in pending],
    }
    assert "error" in outcome, "an interrupted `pulumi up` reports the cancellation"
    if interrupts == 1:
        # One Ctrl-C: the engine lets the Create in flight finish (published, recorded, in the state), then stops.
        assert "error: update canceled" in str(outcome["error"])
        assert first["pending"] == [] and first["resources"][-1].endswith(":LambdaLayer"), first
    else:
        # Twice: the CLI exits at once; the Create is left as a pending operation in the state.
        assert first["pending"] == ["creating"] and not first["resources"][-1].endswith(":LambdaLayer"), first
    # `pulumi up` again: the engine warns about the pending create and runs the Create again (v3.274.1 does not
    # refuse); the deploy adopts or publishes exactly once.
    again = stack.up()
    assert ("1 pending operations from previous deployment" in again.stdout) == (interrupts == 2)
    assert again.outputs["layer_version"].value == 1, first
    resources, pending = state_resources(project)
    assert resources[-1]["type"].endswith(":LambdaLayer")
    if interrupts == 2:
        # The pending create stays in the state until the user resolves it, as the warning says: `pulumi refresh`
        # (interactive) or `pulumi refresh --clear-pending-creates`.
        assert [p["type"] for p in pending] == ["creating"]
        stack.refresh(clear_pending_creates=True)
        resources, pending = state_resources(project)
        assert resources[-1]["type"].endswith(":LambdaLayer")
    assert pending == []
    _, lam = aws_clients(fault_moto)
    assert layer_versions(lam, layer) == [1]  # published once, whatever the interruption left
    noop = stack.preview()
    assert noop.change_summary == {auto.OpType.SAME: 2}


def test_inputs_unknown_during_preview_are_checked_at_up(
    pulumi_bin: Path, tmp_path: Path, fault_moto: MotoServer, credentials: Credentials
) -> None:
    """The layer's name comes from a resource that does not exist yet: preview shows it unknown, up deploys."""
    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer
    from noop_provider import Noop
    from pulumi import automation as auto

    dir_app = tmp_path / "sample_app"
    shutil.copytree(DIR_SAMPLE_APP, dir_app, ignore=shutil.ignore_patterns("build", "__pycache__"))
    s3, lam = aws_clients(fault_moto)
    bucket, layer = f"alab-cli-{uuid.uuid4().hex[:8]}", f"app-{uuid.uuid4().hex[:8]}-deps"
    s3.create_bucket(Bucket=bucket)

    def program() -> None:
        upstream = Noop("upstream")
        LambdaLayer(
            "deps",
            layer_name=upstream.id.apply(lambda _id: layer),
            tool="pip",
            credentials=credentials,
            path_pyproject_toml=str(dir_app / "pyproject.toml"),
            s3dir_lambda=f"s3://{bucket}/lambda/app/",
        )

    project = PulumiProject.create(
        pulumi_bin,
        tmp_path,
        name="unknowns",
        program=program,
        extra_env=AWS_ENV | {"PYTHONPATH": str(Path(__file__).resolve().parent)},
    )
    project.stack_init("dev", {"aws:region": "us-east-1", "alab:endpointUrl": fault_moto.endpoint_url})
    stack = project.stack("dev")
    preview = stack.preview(diff=True)
    assert preview.change_summary == {auto.OpType.CREATE: 3}
    assert re.search(r"layer_name *: \[unknown\]", preview.stdout)
    assert re.search(r'packages *: \{\s*alab-demo-core *: "1\.0\.0"', preview.stdout)  # known: the lock is read
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    stack.up()
    assert layer_versions(lam, layer) == [1]
    assert stack.preview().change_summary == {auto.OpType.SAME: 3}
