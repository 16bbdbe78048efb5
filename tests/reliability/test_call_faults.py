"""Every S3 and Lambda call of a deploy, faulted on the way (drop, delay, blackhole), then the deploy run again.

The fault proxy on loopback sits in front of moto for both clients. Per call and fault: the faulted deploy
may succeed or fail (clearly), the rerun without faults must finish, and then the invariant holds: each
fingerprint maps to exactly one published version, the ``last-`` record names it, and every ARN a deploy
returned is this layer's, verified in Lambda (``check_history``). Timeouts are short (2 s read timeout,
3 s delay) so the whole table stays quick.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_artifact_builder.api import LayerError, deploy_layer
from botocore.config import Config
from fault_proxy import Blackhole, FaultProxy, Rule
from reliability_helpers import alab, check_history

LAYER = "call-fault-deps"
PREFIX = "apps/call-faults/"
#: (method, path regex) of each call a deploy makes that a fault may hit.
CALLS = {
    "intent PUT": ("PUT", r"/layer/intent-[0-9a-f]{64}\.json"),
    "versioned manifest PUT": ("PUT", r"/layer/\d{6}/requirements\.txt"),
    "conditional last- PUT": ("PUT", r"/layer/last-requirements\.txt"),
    "staging upload PUT": ("PUT", r"/layer/[^/?]*\.zip"),
    # Asked when the deploy looks a version up by fingerprint: after a lost publish response (below).
    "GetLayerVersion": ("GET", r"/layers/[^/]+/versions/\d+(\?|$)"),
    "ListLayerVersions": ("GET", r"/layers/[^/]+/versions(\?|$)"),
}
#: Calls made only on the way back from a lost publish response: that response is dropped too.
AFTER_LOST_PUBLISH = {"GetLayerVersion"}
PUBLISH = ("POST", r"/layers/[^/]+/versions$")
FAULTS = {"drop": dict(fault="drop"), "delay": dict(fault="delay", seconds=3.0), "blackhole": dict(fault="blackhole")}


@pytest.fixture()
def proxy(aws) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(aws.endpoint_url)
    yield fault_proxy
    fault_proxy.close()


def _proxied(proxy: FaultProxy, service: str) -> Any:
    """A client through the proxy with botocore's usual retries and a read timeout shorter than the delay."""
    config = Config(read_timeout=2, connect_timeout=2, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client(service, endpoint_url=proxy.url, region_name="us-east-1", config=config)


def _verified(deployment: Any, lambda_client: Any) -> None:
    """The returned ARN is this layer's version in this account and region, with the returned code."""
    arn = deployment.layer_version_arn
    assert re.fullmatch(rf"arn:aws:lambda:us-east-1:\d{{12}}:layer:{LAYER}:{deployment.layer_version}", arn), arn
    got = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=deployment.layer_version)
    assert got["LayerVersionArn"] == arn and got["Content"]["CodeSha256"] == deployment.code_sha256


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("call", list(CALLS))
def test_a_faulted_call_then_a_rerun_leaves_one_version_per_fingerprint(
    call, fault, proxy, project_copy, credentials, s3_client, lambda_client, bucket
):
    method, path_re = CALLS[call]
    rule = proxy.add(Rule(method=method, path=path_re, **FAULTS[fault]))  # type: ignore[arg-type]
    if call in AFTER_LOST_PUBLISH:
        proxy.add(Rule(method=PUBLISH[0], path=PUBLISH[1], fault="drop"))
    path = project_copy("pip")
    target = dict(layer_name=LAYER, s3dir_lambda=f"s3://{bucket}/{PREFIX}", tool="pip", credentials=credentials)
    returned = []
    try:
        returned.append(
            deploy_layer(
                path_pyproject_toml=path,
                s3_client=_proxied(proxy, "s3"),
                lambda_client=_proxied(proxy, "lambda"),
                verbose=False,
                **target,
            )
        )
    except LayerError as e:  # a failure is allowed, as one line naming the cause
        assert "unexpected" not in str(e), e
    assert rule.hits == 1, f"the deploy never made the {call}: {proxy.seen}"
    returned.append(
        deploy_layer(
            path_pyproject_toml=path, s3_client=s3_client, lambda_client=lambda_client, verbose=False, **target
        )
    )
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert sorted(history.versions) == [1] and history.recorded == 1, history
    for deployment in returned:
        assert deployment.layer_version == 1 and deployment.fingerprint == history.versions[1]
        _verified(deployment, lambda_client)


def _cli_deploy(path: Any, bucket: str, credentials: Any, *extra: str) -> Any:
    return alab(
        "layer",
        "deploy",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        f"s3://{bucket}/{PREFIX}",
        "--tool",
        "pip",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        "--region",
        "us-east-1",
        "--json",
        *extra,
        env=dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password),
    )


def test_a_dropped_record_response_through_the_cli_then_a_rerun_leaves_one_version(
    proxy, project_copy, credentials, s3_client, lambda_client, bucket
):
    """The CLI's own clients (botocore retries, the deploy's conditional writes) against a lost ``last-`` response."""
    rule = proxy.add(Rule(method="PUT", path=CALLS["conditional last- PUT"][1], fault="drop"))
    path = project_copy("pip")
    first = _cli_deploy(path, bucket, credentials, "--endpoint-url", proxy.url)
    assert rule.hits == 1, proxy.seen
    assert "unexpected" not in first.stderr and "Traceback" not in first.stderr, first.stderr
    rerun = _cli_deploy(path, bucket, credentials, "--endpoint-url", os.environ.get("AWS_ENDPOINT_URL", ""))
    assert rerun.returncode == 0, rerun.stderr
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert sorted(history.versions) == [1] and history.recorded == 1, history
    results = [json.loads(r.stdout) for r in (first, rerun) if r.returncode == 0]
    for result in results:
        assert result["layer_version"] == 1 and result["fingerprint"] == history.versions[1], result
        got = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=1)
        assert got["LayerVersionArn"] == result["layer_version_arn"], result


def test_a_deploy_against_an_endpoint_that_never_answers_ends_at_the_deadline(aws, project_copy, monkeypatch):
    """``ALAB_AWS_DEADLINE_SECONDS`` bounds a deploy as it bounds a plan, through the API and the CLI."""
    hole = Blackhole()
    path = project_copy("pip")
    monkeypatch.setenv("ALAB_AWS_DEADLINE_SECONDS", "3")
    outcome: list[BaseException] = []
    args = dict(layer_name=LAYER, s3dir_lambda="s3://hanging/apps/", tool="pip", region="us-east-1")

    def run() -> None:
        try:
            deploy_layer(path_pyproject_toml=path, endpoint_url=hole.url, verbose=False, **args)
        except BaseException as e:  # noqa: BLE001 - inspected below
            outcome.append(e)

    try:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "deploy_layer still waits for an endpoint that never answers"
        (error,) = outcome
        assert isinstance(error, LayerError) and "ALAB_AWS_DEADLINE_SECONDS" in str(error), error
        cli = alab(
            "layer",
            "deploy",
            "--project",
            str(path),
            "--layer-name",
            LAYER,
            "--s3dir",
            "s3://hanging/apps/",
            "--tool",
            "pip",
            "--endpoint-url",
            hole.url,
            "--region",
            "us-east-1",
            env=dict(os.environ, ALAB_AWS_DEADLINE_SECONDS="3"),
            timeout=60,
        )
        assert cli.returncode != 0 and "ALAB_AWS_DEADLINE_SECONDS" in cli.stderr, cli.stderr
        assert "unexpected" not in cli.stderr and "Traceback" not in cli.stderr, cli.stderr
    finally:
        hole.close()
