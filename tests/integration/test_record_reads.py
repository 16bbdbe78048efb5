"""``fetch_record`` without the body (a ``bytes=0-0`` GET) and ``fetch_record_body`` against the moto server.

The plan reads the ``last-`` object's facts first and its manifest only when it needs it; every
object a full read accepts or refuses must be accepted or refused the same way, with the same ETag.
"""

from __future__ import annotations

import pytest
from aws_lambda_artifact_builder.layer.record import (
    LayerRecord,
    RecordConflict,
    fetch_record,
    fetch_record_body,
)
from s3pathlib.api import S3Path

KEY = "apps/reads/layer/last-uv.lock"
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:reads"

RECORD = LayerRecord.of(
    layer_name="reads",
    layer_version=3,
    layer_version_arn=f"{LAYER_ARN}:3",
    layer_arn=LAYER_ARN,
    fingerprint="f" * 64,
    code_sha256="gWaFIn7gsN1tUxfqveZB+eRF+ipqgII5veA/gzLZoHs=",
    code_size=10,
    s3uri_manifest="",
    tool="uv",
    python_version="3.12",
    architecture="x86_64",
)


def _fetch(s3_client, bucket: str, *, body: bool):
    return fetch_record(
        s3_client=s3_client, s3path=S3Path(bucket, KEY), s3uri_manifest_for=lambda v: f"s3://{bucket}/v/{v}", body=body
    )


@pytest.mark.parametrize("content", [b"", b"x", b"version = 1\n" * 500], ids=["empty", "one byte", "a lock"])
@pytest.mark.parametrize("metadata", [RECORD.to_metadata(), {"layer-name": "reads"}], ids=["record", "not a record"])
def test_the_facts_alone_are_what_a_full_read_gives(content, metadata, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=content, Metadata=metadata)
    full, facts = _fetch(s3_client, bucket, body=True), _fetch(s3_client, bucket, body=False)

    assert facts.etag == full.etag == s3_client.head_object(Bucket=bucket, Key=KEY)["ETag"]
    assert facts.problem == full.problem and (facts.record is None) == (full.record is None) == (
        "fingerprint" not in metadata
    )
    if full.record is not None:
        assert facts.record == full.record  # every fact (the manifest is not compared)
        assert facts.body_read == (len(content) <= 1)  # an empty or one-byte object came whole
        assert fetch_record_body(facts, s3_client=s3_client).record.manifest_content == content.decode()


def test_a_body_replaced_since_the_facts_were_read_is_a_conflict(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"version = 1\n", Metadata=RECORD.to_metadata())
    facts = _fetch(s3_client, bucket, body=False)
    assert not facts.body_read and facts.record is not None and facts.record.manifest_content == ""
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"version = 2\n", Metadata=RECORD.to_metadata())
    with pytest.raises(RecordConflict):
        fetch_record_body(facts, s3_client=s3_client)
    s3_client.delete_object(Bucket=bucket, Key=KEY)
    with pytest.raises(RecordConflict):
        fetch_record_body(facts, s3_client=s3_client)
