"""Upgrading over records written by fingerprint format 1 (the digest of the manifest text).

Such a record keeps its manifest body in S3; its runtime set is read the same way as the local
one, and when the two are equal nothing is published.
"""

from __future__ import annotations

import pytest

from aws_lambda_artifact_builder.api import deploy_layer, plan_layer
from aws_lambda_artifact_builder.layer.manifest import legacy_fingerprint_v1
from aws_lambda_artifact_builder.layer.package import PackagingOptions
from support.layers import layer_versions
from support.projects import lock, set_pin

MANIFEST = {"pip": "requirements.txt", "uv": "uv.lock", "poetry": "poetry.lock"}


@pytest.fixture()
def target(bucket: str, s3_client, lambda_client):
    return dict(layer_name="upgrade-deps", s3dir_lambda=f"s3://{bucket}/apps/up/", s3_client=s3_client, lambda_client=lambda_client)


def _rewrite_as_format_1(s3_client, bucket: str, tool: str) -> str:
    """Make the ``last-`` record look written by format 1: same body, the format-1 fingerprint."""
    key = f"apps/up/layer/last-{MANIFEST[tool]}"
    obj = s3_client.get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read().decode()
    meta = dict(obj["Metadata"])
    meta["fingerprint"] = legacy_fingerprint_v1(
        tool=tool,
        manifest_content=body,
        python_version="3.12",
        architecture="x86_64",
        packaging_options=PackagingOptions().fingerprint_fields(),
    )
    s3_client.put_object(Bucket=bucket, Key=key, Body=body.encode(), Metadata=meta)
    return meta["fingerprint"]


@pytest.mark.parametrize("tool", ["pip", "uv", "poetry"])
def test_a_format_1_record_of_the_same_runtime_set_publishes_nothing(
    tool, project_copy, target, credentials, s3_client, lambda_client, bucket, private_index, dir_tool_cache
):
    path = project_copy(tool)
    deploy_layer(path_pyproject_toml=path, tool=tool, credentials=credentials, verbose=False, **target)
    old = _rewrite_as_format_1(s3_client, bucket, tool)
    if tool != "pip":  # a dev-group change re-locks the lock: still the same runtime set
        text = path.read_text()
        path.write_text(text.replace('alab-demo-devtool = "1.0.0"', "") if tool == "poetry" else text.replace('dev = ["alab-demo-devtool==1.0.0"]', "dev = []"))
        lock(tool, path.parent, private_index, dir_tool_cache)

    plan = plan_layer(path_pyproject_toml=path, tool=tool, **target)
    assert plan.recorded_fingerprint == old != plan.fingerprint
    assert not plan.changed, plan.reason
    assert "older format" in plan.reason and plan.package_changes.is_empty
    result = deploy_layer(path_pyproject_toml=path, tool=tool, credentials=credentials, verbose=False, **target)
    assert not result.published and result.layer_version == 1
    assert layer_versions(lambda_client, "upgrade-deps") == [1]

    set_pin(path, "alab-demo-core", "1.1.0")
    lock(tool, path.parent, private_index, dir_tool_cache)
    plan = plan_layer(path_pyproject_toml=path, tool=tool, **target)
    assert plan.changed and plan.package_changes.lines() == ["~ alab-demo-core 1.0.0 -> 1.1.0"]
