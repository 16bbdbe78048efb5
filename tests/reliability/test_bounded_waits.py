"""Every wait ends: a hanging endpoint, a lost claim-create response, a damaged or dead run's claim.

Each case is one that used to wait for minutes (or crash) and must now end at once with a clear result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_artifact_builder.api import LayerError, deploy_layer, plan_layer
from aws_lambda_artifact_builder.layer.claim import ClaimHolder, DeployClaim
from botocore.config import Config
from fault_proxy import Blackhole, FaultProxy, Rule
from reliability_helpers import alab, check_history
from s3pathlib.api import S3Path

LAYER = "waits-deps"
PREFIX = "apps/waits/"


@pytest.fixture()
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def test_a_plan_against_an_endpoint_that_never_answers_ends_with_a_clear_message(
    aws, blackhole, project_copy, monkeypatch
):
    path = project_copy("pip")
    monkeypatch.setenv("ALAB_AWS_DEADLINE_SECONDS", "3")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            plan_layer(
                path_pyproject_toml=path,
                layer_name=LAYER,
                s3dir_lambda="s3://hanging/apps/",
                tool="pip",
                endpoint_url=blackhole.url,
                region="us-east-1",
            )
        except BaseException as e:  # noqa: BLE001 - inspected below
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "plan_layer still waits for an endpoint that never answers"
    (error,) = outcome
    assert isinstance(error, LayerError) and "no answer from S3 and Lambda" in str(error), error
    assert blackhole.url in str(error)

    cli = alab(
        "layer",
        "plan",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        "s3://hanging/apps/",
        "--tool",
        "pip",
        "--endpoint-url",
        blackhole.url,
        "--region",
        "us-east-1",
        env=dict(os.environ, ALAB_AWS_DEADLINE_SECONDS="3"),
        timeout=60,
    )
    assert cli.returncode == 6 and "no answer from" in cli.stderr and "unexpected" not in cli.stderr, cli.stderr


def _claim(s3_client, bucket: str, **kwargs) -> DeployClaim:
    return DeployClaim(
        s3_client=s3_client, s3path=S3Path(f"s3://{bucket}/{PREFIX}layer/deploy-claim.json"), purpose="test", **kwargs
    )


def test_a_lost_claim_create_response_is_recognised_as_our_own_claim(aws, s3_client, bucket):
    proxy = FaultProxy(aws.endpoint_url)
    try:
        proxy.add(Rule(method="PUT", path=r"deploy-claim\.json", fault="drop"))
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        proxied = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1", config=config)
        claim = _claim(proxied, bucket, wait_seconds=5)
        claim.acquire()  # used to wait for its own claim until wait_seconds ran out
        try:
            body = json.loads(
                s3_client.get_object(Bucket=bucket, Key=f"{PREFIX}layer/deploy-claim.json")["Body"].read()
            )
            assert body["token"] == claim.holder.token
            claim.ensure_held()
        finally:
            claim.release()
        puts = [seen for seen in proxy.seen if seen[0] == "PUT"]
        assert puts[0][2] == "drop" and len(puts) >= 2
    finally:
        proxy.close()


@pytest.mark.parametrize(
    "pid", ["1234", None, -5, True, 1.5, [1]], ids=["string", "null", "negative", "bool", "float", "list"]
)
def test_a_claim_with_a_malformed_pid_is_stale(pid, s3_client, bucket, caplog):
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder.claim")
    me = dataclasses.asdict(ClaimHolder.current("someone else"))
    s3_client.put_object(
        Bucket=bucket,
        Key=f"{PREFIX}layer/deploy-claim.json",
        Body=json.dumps(dict(me, token="other", pid=pid)).encode(),
    )
    claim = _claim(s3_client, bucket, wait_seconds=3)
    claim.acquire()
    claim.release()
    lines = [r.getMessage() for r in caplog.records if r.name == "aws_lambda_artifact_builder.claim"]
    assert any("took over" in line and "unreadable" in line for line in lines), lines


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_unchanged_rerun_removes_a_dead_runs_claim(
    project_copy, credentials, s3_client, lambda_client, bucket, caplog
):
    path = project_copy("pip")
    target = dict(
        layer_name=LAYER,
        s3dir_lambda=f"s3://{bucket}/{PREFIX}",
        tool="pip",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    dead = dataclasses.replace(ClaimHolder.current("a crashed deploy"), pid=_dead_pid())
    s3_client.put_object(Bucket=bucket, Key=f"{PREFIX}layer/deploy-claim.json", Body=dead.to_bytes())
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder.claim")
    again = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    assert not again.published and not again.adopted
    lines = [r.getMessage() for r in caplog.records if r.name == "aws_lambda_artifact_builder.claim"]
    assert any(line.startswith("[claim] removed") for line in lines), lines
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert not history.claim_left


def test_a_live_claim_is_left_alone_by_an_unchanged_rerun(project_copy, credentials, s3_client, lambda_client, bucket):
    path = project_copy("pip")
    target = dict(
        layer_name=LAYER,
        s3dir_lambda=f"s3://{bucket}/{PREFIX}",
        tool="pip",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    live = ClaimHolder.current("a deploy in progress")
    s3_client.put_object(Bucket=bucket, Key=f"{PREFIX}layer/deploy-claim.json", Body=live.to_bytes())
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    got = s3_client.get_object(Bucket=bucket, Key=f"{PREFIX}layer/deploy-claim.json")["Body"].read()
    assert json.loads(got)["token"] == live.token


def test_after_the_record_is_deleted_the_plan_says_the_deploy_adopts(
    project_copy, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    target = dict(
        layer_name=LAYER,
        s3dir_lambda=f"s3://{bucket}/{PREFIX}",
        tool="pip",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    s3_client.delete_object(Bucket=bucket, Key=f"{PREFIX}layer/last-requirements.txt")
    plan = plan_layer(path_pyproject_toml=path, **target)
    assert plan.changed and "adopts version 1" in plan.reason and "first version" not in plan.reason, plan.reason
    deployment = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    assert deployment.adopted and deployment.layer_version == 1
