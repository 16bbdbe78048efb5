"""``VersionFacts``: the facts of a published version travel unchanged through the record, a deployment
and the Pulumi and Terraform outputs (one value object, not field-by-field copies)."""

from __future__ import annotations

import dataclasses

from aws_lambda_artifact_builder.layer.facts import VERSION_FACTS, VersionFacts
from aws_lambda_artifact_builder.layer.publish import LayerDeployment, deployment_from_record
from aws_lambda_artifact_builder.layer.record import LayerRecord

FACTS = VersionFacts(
    layer_name="demo",
    layer_version=7,
    layer_version_arn="arn:aws:lambda:us-east-1:123456789012:layer:demo:7",
    layer_arn="arn:aws:lambda:us-east-1:123456789012:layer:demo",
    fingerprint="e" * 64,
    code_sha256="C" * 43 + "=",
    code_size=1234,
    s3uri_manifest="s3://bucket/demo/layer/000007/uv.lock",
)


def test_a_record_and_a_deployment_carry_the_same_facts():
    record = LayerRecord.from_facts(FACTS, tool="uv", python_version="3.12", architecture="arm64")
    assert record.facts == FACTS and record.architecture == "arm64"
    deployment = deployment_from_record(record, published=True, deleted_versions=[5, 6])
    assert deployment.facts == FACTS
    assert (deployment.published, deployment.deleted_versions) == (True, (5, 6))
    assert LayerDeployment.from_facts(FACTS, published=False, adopted=True).facts == FACTS


def test_the_record_metadata_holds_every_fact():
    record = LayerRecord.from_facts(FACTS, tool="uv", python_version="3.12", architecture="x86_64")
    meta = record.to_metadata()
    for name in VERSION_FACTS:
        if name != "s3uri_manifest":  # the key the metadata is stored at, not a value in it
            assert meta[name.replace("_", "-")] == str(getattr(FACTS, name))


def test_every_fact_is_an_output_of_the_pulumi_and_terraform_resources():
    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer, _outputs
    from aws_lambda_artifact_builder.terraform_provider.resource import LAYER_SCHEMA

    assert set(VERSION_FACTS) <= set(LambdaLayer.__annotations__)
    assert set(VERSION_FACTS) <= {a.name for a in LAYER_SCHEMA.attributes}
    deployment = LayerDeployment.from_facts(FACTS, published=True)
    outs = _outputs({"layer_name": "demo", "credentials": {"password": "x"}}, deployment, [7])
    assert {k: outs[k] for k in VERSION_FACTS} == dataclasses.asdict(FACTS)
    assert "credentials" not in outs and outs["published_versions"] == [7]
