"""Concurrent deploys through every front end at once converge: one version per fingerprint, all agree.

Each deploy is its own process: API children (tests/support/deploy_child.py), ``alab layer deploy``
processes, and dynamic provider processes driven like ``pulumi up`` of separate stacks, all started
together against one ``s3dir_lambda``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulumi_engine_harness import Registration, Stack
from reliability_helpers import alab_argv, check_history
from support import deploy_child
from support.projects import set_pin

LAYER = "race-deps"
PREFIX = "apps/race/"


def cli_deploy(path: Path, s3dir: str, credentials, *extra: str) -> subprocess.Popen[str]:
    argv = alab_argv(
        "layer",
        "deploy",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        s3dir,
        "--tool",
        "pip",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        "--json",
        *extra,
    )
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class PulumiUp(threading.Thread):
    """``pulumi up`` of one stack in the background: Check, then Create in its own provider process."""

    def __init__(self, stack: Stack, goal: Registration) -> None:
        super().__init__(daemon=True)
        self.stack, self.goal = stack, goal
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stack.up(self.goal)
        except BaseException as e:  # noqa: BLE001  reported by the test's assertion
            self.error = e

    def result(self) -> tuple[dict[str, Any], str]:
        self.join(timeout=300)
        assert not self.is_alive() and self.error is None, self.error
        assert self.stack.state is not None
        return self.stack.state.plain_outputs, self.stack.server.log_text()


def variant(project_copy: Callable[[str], Path], name: str, core: str) -> Path:
    path = project_copy("pip")
    dest = path.parent.with_name(name)
    shutil.move(str(path.parent), dest)
    set_pin(dest / "pyproject.toml", "alab-demo-core", core)
    return dest / "pyproject.toml"


def test_eight_deploys_of_the_same_lock_through_every_front_end_publish_one_version(
    project_copy,
    credentials,
    bucket,
    tmp_path,
    s3_client,
    lambda_client,
    open_stack,
    declare_layer,
):
    path = project_copy("pip")
    s3dir = f"s3://{bucket}/{PREFIX}"
    args = dict(layer_name=LAYER, s3dir_lambda=s3dir, tool="pip")
    path_credentials = tmp_path / "credentials.json"
    credentials.dump(path_credentials)
    stacks = [open_stack() for _ in range(2)]  # two stacks of one project, each its own provider process
    goals = [
        declare_layer(stack=name, path_pyproject_toml=str(path), credentials=credentials, **args)
        for name in ("dev", "prod")
    ]

    children = [
        deploy_child.start(dict(args, path_pyproject_toml=str(path), credentials_file=str(path_credentials)))
        for _ in range(3)
    ]
    clis = [cli_deploy(path, s3dir, credentials) for _ in range(3)]
    ups = [PulumiUp(stack, goal) for stack, goal in zip(stacks, goals, strict=True)]
    for up in ups:
        up.start()

    reports: list[tuple[str, dict[str, Any], str]] = []
    for child in children:
        output, _ = child.communicate(timeout=300)
        assert child.returncode == 0, output
        reports.append(("api", deploy_child.result_of(output), output))
    for cli in clis:
        out, err = cli.communicate(timeout=300)
        assert cli.returncode == 0, err
        reports.append(("cli", json.loads(out), err))
    for up in ups:
        outputs, log = up.result()
        reports.append(("pulumi", outputs, log))

    assert len(reports) == 8
    arns = {result["layer_version_arn"] for _, result, _ in reports}
    assert len(arns) == 1 and next(iter(arns)).endswith(f":{LAYER}:1"), reports
    assert sum(bool(result["published"]) for _, result, _ in reports) == 1
    assert sum("[build] installing" in progress for _, _, progress in reports) == 1
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert sorted(history.versions) == [1]


def test_four_deploys_of_different_locks_through_every_front_end_publish_four_versions(
    project_copy,
    credentials,
    bucket,
    tmp_path,
    s3_client,
    lambda_client,
    open_stack,
    declare_layer,
):
    s3dir = f"s3://{bucket}/{PREFIX}"
    args = dict(layer_name=LAYER, s3dir_lambda=s3dir, tool="pip")
    path_credentials = tmp_path / "credentials.json"
    credentials.dump(path_credentials)
    paths = [variant(project_copy, f"variant-{i}", core) for i, core in enumerate(["1.0.0", "1.1.0", "1.0.0", "1.1.0"])]
    stack = open_stack()
    goal = declare_layer(path_pyproject_toml=str(paths[3]), python_version="3.11", credentials=credentials, **args)

    child = deploy_child.start(dict(args, path_pyproject_toml=str(paths[0]), credentials_file=str(path_credentials)))
    clis = [
        cli_deploy(paths[1], s3dir, credentials),
        cli_deploy(paths[2], s3dir, credentials, "--python-version", "3.11"),
    ]
    up = PulumiUp(stack, goal)
    up.start()

    output, _ = child.communicate(timeout=300)
    assert child.returncode == 0, output
    results = [deploy_child.result_of(output)]
    for cli in clis:
        out, err = cli.communicate(timeout=300)
        assert cli.returncode == 0, err
        results.append(json.loads(out))
    results.append(up.result()[0])

    assert sorted(int(r["layer_version"]) for r in results) == [1, 2, 3, 4]
    assert all(r["published"] for r in results)
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert sorted(history.versions) == [1, 2, 3, 4] and history.recorded == 4
    assert {history.versions[int(r["layer_version"])] for r in results} == {r["fingerprint"] for r in results}
