"""``decide``: the plan from the record as read, Lambda's facts and the local facts, with no I/O at all."""

from __future__ import annotations

import pytest
from aws_lambda_artifact_builder.layer.decide import (
    Adoption,
    FirstPage,
    LambdaFacts,
    ListedVersion,
    LocalFacts,
    decide,
    is_unchanged_candidate,
    needs_code_check,
    versions_with_fingerprint,
)
from aws_lambda_artifact_builder.layer.facts import layer_description
from aws_lambda_artifact_builder.layer.record import FetchedRecord, LayerRecord
from s3pathlib.api import S3Path

FP, OLD_FP = "f" * 64, "0" * 64
SHA = "gWaFIn7gsN1tUxfqveZB+eRF+ipqgII5veA/gzLZoHs="
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:demo"
URI = "s3://bucket/demo/layer/last-uv.lock"


def _record(fingerprint: str = FP, version: int = 3) -> LayerRecord:
    return LayerRecord.of(
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


def _listed(
    version: int = 3, fingerprint: str = FP, arn: str | None = None, code_sha256: str | None = None
) -> ListedVersion:
    return ListedVersion(
        version=version,
        layer_version_arn=arn or f"{LAYER_ARN}:{version}",
        description=layer_description(fingerprint=fingerprint, code_sha256=SHA),
        code_sha256=code_sha256,
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


def _page(*items: ListedVersion, truncated: bool = False) -> FirstPage:
    return FirstPage(versions=frozenset(i.version for i in items), truncated=truncated, listed=items)


OTHER_SHA = "AAAAIn7gsN1tUxfqveZB+eRF+ipqgII5veA/gzLZoHs="


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
    (
        "first deploy adopts",
        None,
        LambdaFacts(_page(_listed(5)), adoption=Adoption(5, ours=True)),
        _local(),
        True,
        ["adopts version 5"],
        None,
    ),
    (
        "a planted version with the fingerprint is not adopted",
        None,
        LambdaFacts(_page(_listed(5)), adoption=Adoption(5, ours=False)),
        _local(),
        True,
        ["version 5 carries this fingerprint but not our code: a deploy publishes a new version"],
        None,
    ),
    (
        "packages changed, a planted version with the new fingerprint",
        _record(OLD_FP),
        LambdaFacts(
            _page(_listed(fingerprint=OLD_FP), _listed(4)), _listed(fingerprint=OLD_FP), Adoption(4, ours=False)
        ),
        _local(recorded_dependencies={"attrs": "22.2.0"}),
        True,
        ["runtime dependencies changed since version 3", "version 4 carries this fingerprint but not our code"],
        3,
    ),
    (
        "packages changed back to an earlier version of ours",
        _record(OLD_FP),
        LambdaFacts(_page(_listed(fingerprint=OLD_FP), _listed(2)), _listed(fingerprint=OLD_FP), Adoption(2, True)),
        _local(recorded_dependencies={"attrs": "22.2.0"}),
        True,
        ["runtime dependencies changed since version 3", "a deploy adopts version 2"],
        3,
    ),
    (
        "the recorded version's own code is not the record's (a copied description)",
        _record(),
        LambdaFacts(_page(_listed(2), _listed()), _listed(code_sha256=OTHER_SHA), Adoption(2, ours=True)),
        _local(),
        True,
        ["does not match Lambda", f"version 3 holds code {OTHER_SHA}", "a deploy adopts version 2"],
        None,
    ),
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


def test_versions_with_the_fingerprint_are_listed_newest_first_with_their_described_code():
    page = _page(_listed(2), _listed(3, fingerprint=OLD_FP), _listed(5))
    assert versions_with_fingerprint(page, FP) == [(5, SHA), (2, SHA)]
    assert versions_with_fingerprint(page, "e" * 64) == []


def test_only_two_versions_with_the_recorded_fingerprint_need_the_recorded_one_fetched():
    assert not needs_code_check(_record(), _page(_listed(), _listed(2, fingerprint=OLD_FP)))
    assert needs_code_check(_record(), _page(_listed(), _listed(4)))


def test_the_no_op_case_is_the_recorded_version_holding_the_local_fingerprint():
    assert is_unchanged_candidate(_record(), _listed(), FP)
    assert not is_unchanged_candidate(_record(), None, FP)  # gone from Lambda
    assert not is_unchanged_candidate(_record(OLD_FP), _listed(fingerprint=OLD_FP), FP)  # fingerprint moved
    assert not is_unchanged_candidate(_record(), _listed(code_sha256=OTHER_SHA), FP)  # Lambda holds other code
    assert not is_unchanged_candidate(None, None, FP)
