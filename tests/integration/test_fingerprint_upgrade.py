"""Upgrading over records written by fingerprint format 1 (the digest of the manifest text).

Such a record keeps its manifest body in S3; its runtime set is read the same way as the local
one, and when the two are equal nothing is published.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import deploy_layer, plan_layer
from aws_lambda_artifact_builder.layer.foundation import LayerPathLayout
from aws_lambda_artifact_builder.layer.manifest import legacy_fingerprint_v1
from aws_lambda_artifact_builder.layer.package import PackagingOptions
from aws_lambda_artifact_builder.layer.publish import layer_description
from support.layers import layer_versions
from support.projects import lock, set_pin

MANIFEST = {"pip": "requirements.txt", "uv": "uv.lock", "poetry": "poetry.lock"}


@pytest.fixture()
def target(bucket: str, s3_client, lambda_client):
    return dict(
        layer_name="upgrade-deps",
        s3dir_lambda=f"s3://{bucket}/apps/up/",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )


def _publish_as_format_1(s3_client, lambda_client, bucket: str, tool: str, zip_path: Path) -> str:
    """The world the format-1 code left behind: a version whose description carries the format-1
    fingerprint of the recorded body (same code), and the ``last-`` record pointing at it."""
    key = f"apps/up/layer/last-{MANIFEST[tool]}"
    obj = s3_client.get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read().decode()
    meta = dict(obj["Metadata"])
    old = legacy_fingerprint_v1(
        tool=tool,
        manifest_content=body,
        python_version="3.12",
        architecture="x86_64",
        packaging_options=PackagingOptions().fingerprint_fields(),
    )
    published = lambda_client.publish_layer_version(
        LayerName="upgrade-deps",
        Content={"ZipFile": zip_path.read_bytes()},
        Description=layer_description(fingerprint=old, code_sha256=meta["code-sha256"]),
        CompatibleRuntimes=["python3.12"],
        CompatibleArchitectures=["x86_64"],
    )
    assert published["Content"]["CodeSha256"] == meta["code-sha256"]
    meta.update(
        {
            "fingerprint": old,
            "layer-version": str(published["Version"]),
            "layer-version-arn": published["LayerVersionArn"],
        }
    )
    s3_client.put_object(Bucket=bucket, Key=key, Body=body.encode(), Metadata=meta)
    return old


@pytest.mark.parametrize("tool", ["pip", "uv", "poetry"])
def test_a_format_1_record_of_the_same_runtime_set_publishes_nothing(
    tool, project_copy, target, credentials, s3_client, lambda_client, bucket, private_index, dir_tool_cache
):
    path = project_copy(tool)
    deploy_layer(path_pyproject_toml=path, tool=tool, credentials=credentials, verbose=False, **target)
    zip_path = LayerPathLayout(path_pyproject_toml=path).path_build_lambda_layer_zip
    old = _publish_as_format_1(s3_client, lambda_client, bucket, tool, zip_path)
    if tool != "pip":  # a dev-group change re-locks the lock: still the same runtime set
        text = path.read_text()
        path.write_text(
            text.replace('alab-demo-devtool = "1.0.0"', "")
            if tool == "poetry"
            else text.replace('dev = ["alab-demo-devtool==1.0.0"]', "dev = []")
        )
        lock(tool, path.parent, private_index, dir_tool_cache)

    plan = plan_layer(path_pyproject_toml=path, tool=tool, **target)
    assert plan.recorded_fingerprint == old != plan.fingerprint
    assert not plan.changed, plan.reason
    assert "older format" in plan.reason and plan.package_changes.is_empty
    result = deploy_layer(path_pyproject_toml=path, tool=tool, credentials=credentials, verbose=False, **target)
    assert not result.published and result.layer_version == 2
    assert layer_versions(lambda_client, "upgrade-deps") == [1, 2]

    set_pin(path, "alab-demo-core", "1.1.0")
    lock(tool, path.parent, private_index, dir_tool_cache)
    plan = plan_layer(path_pyproject_toml=path, tool=tool, **target)
    assert plan.changed and plan.package_changes.lines() == ["~ alab-demo-core 1.0.0 -> 1.1.0"]
