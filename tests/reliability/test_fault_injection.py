"""SIGKILL a deploy at every step boundary, then rerun: one new version for the change, nothing orphaned.

The deploying child (tests/support/deploy_child.py) kills itself right after the progress event that ends a
step (a stage done, or one of the record stage's two writes), i.e. exactly at the boundary, with whatever it
wrote so far left behind. A rerun must
finish the change with exactly one new version, and a later change (deployed through the CLI) must not
trip over anything the killed run left: its deploy claim, a staged zip, a versioned manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import deploy_layer, plan_layer
from aws_lambda_artifact_builder.progress import observe
from reliability_helpers import alab, check_history
from support import deploy_child
from support.projects import set_pin

LAYER = "fault-deps"


@dataclasses.dataclass(frozen=True)
class Boundary:
    name: str
    #: The progress event sent right after the step (``[stage, state]`` or ``[stage, state, done]``): the child dies there.
    die_at: list[Any]
    #: Whether the new version exists in Lambda when the child dies.
    published: bool
    #: Whether the ``last-`` record already names it.
    recorded: bool = False


BOUNDARIES = [
    Boundary("after build", ["install", "done"], published=False),
    Boundary("after package", ["package", "done"], published=False),
    Boundary("after upload", ["upload", "done"], published=False),
    Boundary("after publish", ["publish", "done"], published=True),
    Boundary("after the versioned manifest", ["record", "progress", 1], published=True),
    Boundary("after the last- record", ["record", "progress", 2], published=True, recorded=True),
]


@pytest.fixture()
def target(bucket: str, tmp_path: Path, credentials) -> dict[str, Any]:
    path_credentials = tmp_path / "credentials.json"
    credentials.dump(path_credentials)
    return dict(
        layer_name=LAYER, s3dir_lambda=f"s3://{bucket}/apps/fault/", tool="pip", credentials_file=str(path_credentials)
    )


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=[b.name for b in BOUNDARIES])
def test_a_deploy_killed_at_a_step_boundary_is_finished_by_the_rerun_with_one_new_version(
    boundary: Boundary,
    target,
    project_copy,
    credentials,
    s3_client,
    lambda_client,
    bucket,
):
    api_args = {k: v for k, v in target.items() if k != "credentials_file"}
    history_args = dict(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix="apps/fault/",
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    path = project_copy("pip")
    first = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **api_args)
    assert first.published and first.layer_version == 1

    # The change: a new pin. The child dies at the boundary.
    set_pin(path, "alab-demo-core", "1.1.0")
    child = deploy_child.start(dict(target, path_pyproject_toml=str(path), die_at=boundary.die_at))
    output, _ = child.communicate(timeout=180)
    assert child.returncode == -9, f"the child was to die {boundary.name}:\n{output}"
    assert deploy_child.is_event(deploy_child.events_of(output)[-1], boundary.die_at), output
    killed = check_history(settled=False, **history_args)
    assert sorted(killed.versions) == ([1, 2] if boundary.published else [1])
    assert killed.recorded == (2 if boundary.recorded else 1)
    assert killed.claim_left, "the killed run held the deploy claim"

    # The rerun: exactly one new version for the change, whether it publishes, adopts or finds it recorded.
    lines: list[str] = []
    stages: list[str] = []
    with observe(lambda e: stages.append(e.stage) if e.state == "done" else None):
        rerun = deploy_layer(path_pyproject_toml=path, credentials=credentials, printer=lines.append, **api_args)
    assert rerun.layer_version == 2, lines
    assert rerun.published == (not boundary.published), lines
    assert rerun.adopted == (boundary.published and not boundary.recorded), lines
    assert ("install" in stages) == (not boundary.published), stages
    if not boundary.recorded:  # a rerun that had work to do took the dead run's claim over at once
        assert any(line.startswith("[claim] took over") for line in lines), lines
    history = check_history(settled=not boundary.recorded, **history_args)
    assert sorted(history.versions) == [1, 2] and history.recorded == 2
    assert not plan_layer(path_pyproject_toml=path, **api_args).changed

    # A later change, through the CLI, is not tripped up by anything the killed run left behind (its build
    # folder stays in the project, as it would on a CI runner's workspace).
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    later = alab(
        "layer",
        "deploy",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        target["s3dir_lambda"],
        "--tool",
        "pip",
        "--python-version",
        "3.11",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        "--json",
        env=env,
    )
    assert later.returncode == 0, later.stderr
    deployment = json.loads(later.stdout)
    assert deployment["published"] and deployment["layer_version"] == 3
    final = check_history(**history_args)
    assert sorted(final.versions) == [1, 2, 3] and final.recorded == 3
    assert len(set(final.versions.values())) == 3
