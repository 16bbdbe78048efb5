"""Lost and late responses of non-idempotent Lambda calls, through a fault proxy in front of moto.

``PublishLayerVersion`` creates a new version each time it is sent: a response dropped on the way
back, or one slower than the client's read timeout, must never lead to a second version for the
same fingerprint. The deploy looks the version up instead of resending, and records it.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_artifact_builder.api import deploy_layer, plan_layer
from botocore.config import Config
from fault_proxy import FaultProxy, Rule
from reliability_helpers import check_history

LAYER = "faulty-deps"
PUBLISH = Rule(method="POST", path=r"/layers/[^/]+/versions$", fault="")
GRANT = Rule(method="POST", path=r"/layers/[^/]+/versions/\d+/policy$", fault="")


@pytest.fixture()
def proxy(aws) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(aws.endpoint_url)
    yield fault_proxy
    fault_proxy.close()


def _proxied_lambda(proxy: FaultProxy, *, read_timeout: float = 3):
    """A client with botocore's usual retries (standard mode, 3 attempts) and a short read timeout."""
    config = Config(read_timeout=read_timeout, connect_timeout=2, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("lambda", endpoint_url=proxy.url, region_name="us-east-1", config=config)


def _rule(template: Rule, fault: str, **kwargs) -> Rule:
    return Rule(method=template.method, path=template.path, fault=fault, **kwargs)


@pytest.mark.parametrize(
    "fault",
    [dict(fault="drop"), dict(fault="delay", seconds=6)],
    ids=["response dropped", "response past the read timeout"],
)
def test_a_lost_publish_response_leaves_exactly_one_version_and_it_is_recorded(
    fault, proxy, project_copy, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    target = dict(layer_name=LAYER, s3dir_lambda=f"s3://{bucket}/apps/faulty/", tool="pip", s3_client=s3_client)
    rule = proxy.add(_rule(PUBLISH, **fault))
    lines: list[str] = []
    deployment = deploy_layer(
        path_pyproject_toml=path,
        credentials=credentials,
        lambda_client=_proxied_lambda(proxy),
        printer=lines.append,
        **target,
    )
    assert rule.hits == 1
    publishes = [seen for seen in proxy.seen if seen[0] == "POST" and seen[1].endswith("/versions")]
    assert len(publishes) == 1, f"the publish was sent again: {publishes}"
    history = check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix="apps/faulty/",
        layer_name=LAYER,
        manifest_name="requirements.txt",
    )
    assert sorted(history.versions) == [1] and history.recorded == 1
    assert deployment.layer_version == 1 and deployment.fingerprint == history.versions[1]
    got = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=1)
    assert (
        got["LayerVersionArn"] == deployment.layer_version_arn
        and got["Content"]["CodeSha256"] == deployment.code_sha256
    )
    assert any("Lambda has version 1 with this code" in line for line in lines), lines
    assert not plan_layer(path_pyproject_toml=path, lambda_client=lambda_client, **target).changed


def test_a_lost_grant_response_is_checked_not_resent(
    proxy, project_copy, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    target = dict(layer_name=LAYER, s3dir_lambda=f"s3://{bucket}/apps/faulty/", tool="pip", s3_client=s3_client)
    rule = proxy.add(_rule(GRANT, "drop"))
    deploy_layer(
        path_pyproject_toml=path,
        credentials=credentials,
        lambda_client=_proxied_lambda(proxy),
        permissions=["111122223333"],
        verbose=False,
        **target,
    )
    assert rule.hits == 1
    grants = [seen for seen in proxy.seen if seen[0] == "POST" and seen[1].endswith("/policy")]
    assert len(grants) == 1, f"the grant was sent again: {grants}"
    policy = lambda_client.get_layer_version_policy(LayerName=LAYER, VersionNumber=1)["Policy"]
    assert "alab-account-111122223333" in policy


def test_a_publish_refused_by_lambda_is_an_error_and_nothing_is_recorded(
    proxy, project_copy, credentials, s3_client, lambda_client, bucket
):
    """A publish that fails for good (the response is lost and the version was not created) fails clearly."""
    from aws_lambda_artifact_builder.api import LayerError

    path = project_copy("pip")
    target = dict(layer_name=LAYER, s3dir_lambda=f"s3://{bucket}/apps/faulty/", tool="pip", s3_client=s3_client)
    proxy.add(_rule(PUBLISH, "blackhole"))
    with pytest.raises(LayerError, match="not sent again automatically"):
        deploy_layer(
            path_pyproject_toml=path,
            credentials=credentials,
            lambda_client=_proxied_lambda(proxy, read_timeout=2),
            verbose=False,
            **target,
        )
    publishes = [seen for seen in proxy.seen if seen[0] == "POST" and seen[1].endswith("/versions")]
    assert len(publishes) == 1
    assert (
        check_history(
            s3_client=s3_client,
            lambda_client=lambda_client,
            bucket=bucket,
            prefix="apps/faulty/",
            layer_name=LAYER,
            manifest_name="requirements.txt",
            settled=False,
        ).versions
        == {}
    )
