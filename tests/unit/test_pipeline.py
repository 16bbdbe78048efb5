"""The deploy pipeline's stages with fake effects: which S3/Lambda steps run, in which order, and which never do.

No server, no build: the gateway records every call, ``obtain_artifact`` stands in for the builder (or an
artifact store), so each path of ``run_deploy`` is checked step by step.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_artifact_builder.errors import BuildError, ConflictError
from aws_lambda_artifact_builder.layer.facts import VersionFacts
from aws_lambda_artifact_builder.layer.inputs import parse_permissions
from aws_lambda_artifact_builder.layer.manifest import PackageChanges
from aws_lambda_artifact_builder.layer.pipeline import DeployEffects, Settings, run_deploy
from aws_lambda_artifact_builder.layer.publish import PublishedVersion
from aws_lambda_artifact_builder.layer.record import LayerRecord
from aws_lambda_artifact_builder.layer.workflow import LayerPlan
from aws_lambda_artifact_builder.progress import forward_logs, observe
from s3pathlib.api import S3Path

FP = "f" * 64
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:demo"
SHA_RECORDED = "A" * 43 + "="
SHA_BUILT = "B" * 43 + "="
#: The stages pass the inputs on; the record stage names the record's object in its progress line.
INPUTS: Any = SimpleNamespace(
    layer_name="demo", fingerprint=FP, s3path_last_manifest=S3Path("b", "l/layer/last-uv.lock")
)


def _record(version: int) -> LayerRecord:
    facts = VersionFacts("demo", version, f"{LAYER_ARN}:{version}", LAYER_ARN, FP, SHA_RECORDED, 10, "s3://b/l/uv.lock")
    return LayerRecord.from_facts(facts, tool="uv", python_version="3.12", architecture="x86_64")


def _plan(changed: bool, version: int | None = 3) -> LayerPlan:
    record = _record(version) if version else None
    return LayerPlan(
        changed=changed,
        reason="changed" if changed else "unchanged",
        layer_name="demo",
        fingerprint=FP,
        current_version=version,
        current_layer_version_arn=record.layer_version_arn if record else None,
        package_changes=PackageChanges(),
        recorded_fingerprint=FP if record else None,
        s3uri_record="s3://b/l/last-uv.lock",
        record=record,
        record_etag='"etag-3"' if record else None,
    )


def _published(version: int, sha: str) -> PublishedVersion:
    return PublishedVersion("demo", version, f"{LAYER_ARN}:{version}", LAYER_ARN, sha, 10, "")


class FakeClaim:
    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway

    def __enter__(self) -> FakeClaim:
        self.gateway.calls.append("claim")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gateway.calls.append("release")

    def ensure_held(self) -> None:
        self.gateway.calls.append("ensure_held")
        if self.gateway.lose_claim_at == self.gateway.calls.count("ensure_held"):
            raise ConflictError("the claim was taken over", operation="s3:PutObject")  # as DeployClaim does


@dataclasses.dataclass
class FakeGateway:
    plans: list[LayerPlan]
    #: What ``verify`` turns each plan into (by default: the plan itself).
    verified: dict[int, LayerPlan] = dataclasses.field(default_factory=dict)
    adoptable: PublishedVersion | None = None
    lose_claim_at: int | None = None
    calls: list[str] = dataclasses.field(default_factory=list)
    uploaded: list[Any] = dataclasses.field(default_factory=list)

    def plan(self, inputs: Any) -> LayerPlan:
        self.calls.append("plan")
        return self.plans.pop(0)

    def verify(self, plan: LayerPlan, inputs: Any) -> LayerPlan:
        self.calls.append("verify")
        return self.verified.get(id(plan), plan)

    def remove_stale_claim(self, inputs: Any) -> None:
        self.calls.append("remove_stale_claim")

    def claim(self, inputs: Any) -> FakeClaim:
        return FakeClaim(self)

    def check_other_records(self, inputs: Any) -> None:
        self.calls.append("check_other_records")

    def find_adoptable(self, inputs: Any) -> PublishedVersion | None:
        self.calls.append("find_adoptable")
        return self.adoptable

    def upload(self, inputs: Any, artifact: Any) -> None:
        self.calls.append("upload")
        self.uploaded.append(artifact)

    def write_intent(self, inputs: Any, code_sha256: str) -> None:
        self.calls.append(f"write_intent {code_sha256[:1]}")

    def publish(self, inputs: Any, code_sha256: str) -> PublishedVersion:
        self.calls.append("publish")
        return _published(4, code_sha256)

    def record(self, inputs: Any, published: PublishedVersion, expected_etag: str | None) -> VersionFacts:
        self.calls.append(f"record {published.version} if-match {expected_etag}")
        return dataclasses.replace(_record(published.version).facts, code_sha256=published.code_sha256)

    def clear_intent(self, inputs: Any) -> None:
        self.calls.append("clear_intent")

    def clear_staged(self, inputs: Any) -> None:
        self.calls.append("clear_staged")

    def sync_permissions(self, facts: VersionFacts, wanted: list[Any]) -> tuple[list[str], list[str]]:
        self.calls.append(f"sync_permissions {facts.layer_version}")
        return [p.statement_id for p in wanted], []

    def apply_retention(self, facts: VersionFacts, keep_last: int) -> list[int]:
        self.calls.append(f"apply_retention {facts.layer_version} keep {keep_last}")
        return list(range(1, facts.layer_version - keep_last + 1))

    def delete_version_records(self, inputs: Any, versions: list[int]) -> list[str]:
        self.calls.append(f"delete_version_records {versions}")
        return [f"layer/{v:06d}/uv.lock" for v in versions]


def _effects(gateway: FakeGateway, artifact_sha: str = SHA_BUILT, **kwargs: Any) -> DeployEffects:
    def obtain(inputs: Any) -> Any:
        gateway.calls.append("obtain_artifact")
        return SimpleNamespace(path=Path("/nowhere/layer.zip"), code_sha256=artifact_sha)

    @contextlib.contextmanager
    def lock(inputs: Any) -> Iterator[None]:
        gateway.calls.append("lock")
        try:
            yield
        finally:
            gateway.calls.append("unlock")

    return DeployEffects(gateway=gateway, obtain_artifact=obtain, build_folder_lock=lock, **kwargs)


def test_an_unchanged_plan_builds_nothing_and_takes_no_claim():
    gateway = FakeGateway(plans=[_plan(changed=False)])
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway))
    assert gateway.calls == ["plan", "remove_stale_claim", "verify"]
    assert (outcome.published, outcome.adopted, outcome.facts.layer_version) == (False, False, 3)
    assert outcome.facts == _record(3).facts


def test_a_change_builds_uploads_publishes_and_records_in_order_under_the_claim():
    gateway = FakeGateway(plans=[_plan(changed=True), _plan(changed=True)])
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway))
    assert gateway.calls == [
        "plan",
        "claim",
        "plan",
        "verify",
        "check_other_records",
        "find_adoptable",
        "lock",
        "obtain_artifact",
        "ensure_held",
        "upload",
        "unlock",
        "ensure_held",
        "write_intent B",
        "publish",
        "ensure_held",
        'record 4 if-match "etag-3"',
        "clear_intent",
        "clear_staged",
        "release",
    ]
    assert (outcome.published, outcome.adopted, outcome.facts.layer_version) == (True, False, 4)
    assert outcome.facts.code_sha256 == SHA_BUILT


def test_an_adoptable_version_is_recorded_without_building_and_the_staged_zip_is_left():
    gateway = FakeGateway(plans=[_plan(changed=True, version=None)] * 2, adoptable=_published(7, SHA_RECORDED))
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway))
    assert "obtain_artifact" not in gateway.calls and "publish" not in gateway.calls
    assert gateway.calls[-4:] == ["ensure_held", "record 7 if-match None", "clear_intent", "release"]
    assert (outcome.published, outcome.adopted, outcome.facts.layer_version) == (False, True, 7)


def test_a_deploy_that_finished_meanwhile_is_returned_after_the_claim_without_building():
    gateway = FakeGateway(plans=[_plan(changed=True), _plan(changed=False, version=5)])
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway))
    assert gateway.calls == ["plan", "claim", "plan", "verify", "release"]
    assert (outcome.published, outcome.facts.layer_version) == (False, 5)


def test_an_unchanged_plan_that_fails_verification_publishes():
    unchanged = _plan(changed=False)
    gateway = FakeGateway(plans=[unchanged, _plan(changed=True)], verified={id(unchanged): _plan(changed=True)})
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway))
    assert "publish" in gateway.calls and outcome.published


def test_a_claim_lost_during_the_build_uploads_publishes_and_records_nothing():
    gateway = FakeGateway(plans=[_plan(changed=True)] * 2, lose_claim_at=1)
    with pytest.raises(ConflictError, match="taken over"):
        run_deploy(INPUTS, Settings(), _effects(gateway))
    assert gateway.calls[-3:] == ["ensure_held", "unlock", "release"]
    assert not {"upload", "publish", "clear_staged"} & set(gateway.calls)
    assert not [c for c in gateway.calls if c.startswith(("record", "write_intent"))]


def test_the_checks_before_the_claim_stop_the_deploy_before_any_claim():
    gateway = FakeGateway(plans=[_plan(changed=True)])

    def refuse() -> None:
        raise BuildError("no wheel for the target")  # as check_build_possible does

    with pytest.raises(BuildError, match="no wheel"):
        run_deploy(INPUTS, Settings(), _effects(gateway), before_claim=refuse)
    assert gateway.calls == ["plan"]


def test_grants_and_retention_converge_on_the_version_ended_on_changed_or_not():
    settings = Settings(keep_last=2, permissions=parse_permissions(["123456789012"]))
    gateway = FakeGateway(plans=[_plan(changed=False, version=5)])
    outcome = run_deploy(INPUTS, settings, _effects(gateway))
    assert gateway.calls[-3:] == ["sync_permissions 5", "apply_retention 5 keep 2", "delete_version_records [1, 2, 3]"]
    assert outcome.deleted_versions == (1, 2, 3)


def test_the_artifact_seam_uploads_and_publishes_whatever_the_source_returns():
    """An artifact store replaces ``obtain_artifact``: its zip is the one staged, intended and published."""
    gateway = FakeGateway(plans=[_plan(changed=True)] * 2)
    outcome = run_deploy(INPUTS, Settings(), _effects(gateway, artifact_sha=SHA_RECORDED))
    assert [a.code_sha256 for a in gateway.uploaded] == [SHA_RECORDED]
    assert "write_intent A" in gateway.calls and outcome.facts.code_sha256 == SHA_RECORDED


def test_progress_goes_to_the_stages_loggers_and_events():
    """The stages take no printer: details go to each stage's logger, progress to ``Stage`` events."""
    lines: list[str] = []
    events: list[str] = []
    gateway = FakeGateway(plans=[_plan(changed=True, version=None)] * 2, adoptable=_published(7, SHA_RECORDED))
    with forward_logs(True, lines.append), observe(lambda e: events.append(f"{e.stage} {e.state}")):
        run_deploy(INPUTS, Settings(), _effects(gateway))
    assert lines == ["[plan] changed", "[publish] adopting version 7, published earlier with this fingerprint"]
    assert events == ["plan started", "plan done", "publish started", "publish done"]
