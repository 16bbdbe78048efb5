"""``decide``: the plan from the record as read, Lambda's facts and the local facts, with no I/O at all."""

from __future__ import annotations

import pytest
from s3pathlib.api import S3Path

from aws_lambda_artifact_builder.layer.publish import layer_description
from aws_lambda_artifact_builder.layer.record import FetchedRecord, LayerRecord
from aws_lambda_artifact_builder.layer.workflow import LambdaFacts, LocalFacts, _FirstPage, _Listed, decide

FP, OLD_FP = "f" * 64, "0" * 64
SHA = "gWaFIn7gsN1tUxfqveZB+eRF+ipqgII5veA/gzLZoHs="
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:demo"
URI = "s3://bucket/demo/layer/last-uv.lock"


def _record(fingerprint: str = FP, version: int = 3) -> LayerRecord:
    return LayerRecord(
        layer_name="demo",
        layer_version=version,
        layer_version_arn=f"{LAYER_ARN}:{version}",
        layer_arn=LAYER_ARN,
        fingerprint=fingerprint,
        code_sha256=SHA,
        code_size=10,
        s3uri_manifest=f"s3://bucket/demo/layer/{version:06d}/uv.lock",
        tool="uv",
        python_version="3.12",
        architecture="x86_64",
    )


def _listed(version: int = 3, fingerprint: str = FP, arn: str | None = None) -> _Listed:
    return _Listed(
        version=version,
        layer_version_arn=arn or f"{LAYER_ARN}:{version}",
        description=layer_description(fingerprint=fingerprint, code_sha256=SHA),
    )


def _local(**changes) -> LocalFacts:
    values = dict(
        layer_name="demo",
        fingerprint=FP,
        dependencies={"attrs": "23.1.0"},
        python_version="3.12",
        architecture="x86_64",
        s3uri_record=URI,
    )
    values.update(changes)
    return LocalFacts(**values)


def _fetched(record: LayerRecord | None, problem: str = "") -> FetchedRecord:
    return FetchedRecord(s3path=S3Path.from_s3_uri(URI), etag='"e"' if record else None, record=record, problem=problem)


def _page(*items: _Listed, truncated: bool = False) -> _FirstPage:
    return _FirstPage(versions=frozenset(i.version for i in items), truncated=truncated, listed=items)


CASES = [
    # (id, record, lambda facts, local facts, changed, words in the reason, current version)
    (
        "first deploy",
        None,
        LambdaFacts(_page()),
        _local(),
        True,
        ["no earlier version is recorded", "first version"],
        None,
    ),
    ("first deploy adopts", None, LambdaFacts(_page(_listed(5))), _local(), True, ["adopts version 5"], None),
    (
        "unchanged",
        _record(),
        LambdaFacts(_page(_listed()), _listed()),
        _local(),
        False,
        ["matches the local manifest"],
        3,
    ),
    (
        "version gone",
        _record(),
        LambdaFacts(_page()),
        _local(recorded_dependencies={"attrs": "23.1.0"}),
        True,
        ["no longer exists in Lambda"],
        None,
    ),
    (
        "record names another ARN",
        _record(),
        LambdaFacts(_page(), _listed(arn=f"{LAYER_ARN}-other:3")),
        _local(),
        True,
        ["does not match Lambda"],
        None,
    ),
    (
        "packages changed",
        _record(OLD_FP),
        LambdaFacts(_page(_listed(fingerprint=OLD_FP)), _listed(fingerprint=OLD_FP)),
        _local(recorded_dependencies={"attrs": "22.2.0"}),
        True,
        ["runtime dependencies changed since version 3", "(1 package)"],
        3,
    ),
    (
        "recorded manifest unreadable",
        _record(OLD_FP),
        LambdaFacts(_page(_listed(fingerprint=OLD_FP)), _listed(fingerprint=OLD_FP)),
        _local(recorded_dependencies=None),
        True,
        ["cannot be read"],
        3,
    ),
    (
        "same packages, other target",
        _record(OLD_FP),
        LambdaFacts(_page(_listed(fingerprint=OLD_FP)), _listed(fingerprint=OLD_FP)),
        _local(recorded_dependencies={"attrs": "23.1.0"}, architecture="arm64"),
        True,
        ["not the package versions", "architecture x86_64 -> arm64"],
        3,
    ),
    (
        "older fingerprint format, same set",
        _record(OLD_FP),
        LambdaFacts(_page(_listed(fingerprint=OLD_FP)), _listed(fingerprint=OLD_FP)),
        _local(recorded_dependencies={"attrs": "23.1.0"}, same_set_of_older_format=True),
        False,
        ["older format"],
        3,
    ),
]


@pytest.mark.parametrize(
    ("record", "lambda_facts", "local", "changed", "words", "current"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(record, lambda_facts, local, changed, words, current):
    plan = decide(_fetched(record), lambda_facts, local)
    assert plan.changed is changed
    for word in words:
        assert word in plan.reason, plan.reason
    assert plan.current_version == current
    assert plan.fingerprint == local.fingerprint and plan.s3uri_record == URI
    if record is not None:
        assert plan.record is not None and plan.record.version_exists is (lambda_facts.recorded is not None)


def test_a_damaged_record_says_why():
    plan = decide(_fetched(None, problem="the object at x was written by another tool"), LambdaFacts(_page()), _local())
    assert plan.changed and plan.reason.startswith("the object at x was written by another tool")
    assert plan.package_changes.lines() == ["+ attrs 23.1.0"]
