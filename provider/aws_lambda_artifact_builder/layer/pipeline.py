"""The deploy pipeline: plan → (claim, re-plan) → obtain the artifact → upload → publish → record → finish.

Each stage is a small function; its effects come in through :class:`DeployEffects`, after the
pattern of aws-lambda-builders' actions:

- ``gateway`` (:class:`LayerGateway`): every S3 and Lambda call a deploy makes (the plan's reads, the
  claim, upload, publish, record, grants, retention); ``workflow.AwsGateway`` is the real one;
- ``obtain_artifact`` (:data:`ObtainArtifact`): the packaged layer zip for the inputs, built and packaged
  here (``workflow.build_artifact``) or fetched from elsewhere (an artifact store) — the one seam where
  such a source plugs in;
- ``build_folder_lock`` and ``background``: how the project's build folder is shared, how the
  stale-claim clean-up overlaps the check of an unchanged plan.

Progress goes out as ``progress.Stage`` events, details to each stage's logger (``progress.get_logger``).

``workflow.deploy_layer`` composes the stages with the real effects; ``tests/unit/test_pipeline.py``
runs them with fakes. This module imports no AWS library and runs no process; it sits with the local
work (README "Layout") only because its types do: the inputs, the packaged zip and the plan (``decide``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from ..progress import Stage, get_logger, plural
from .decide import LayerPlan
from .facts import PublishedVersion, VersionFacts
from .inputs import LayerInputs, LayerPermission
from .package import LayerZipInfo

_T = TypeVar("_T")


class Claim(Protocol):
    """The deploy claim of one ``s3dir_lambda`` (``claim.DeployClaim``): held inside ``with``."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...

    def ensure_held(self) -> None:
        """Raise if the claim was lost (another deploy took over): nothing more may be written."""


class LayerGateway(Protocol):
    """Every S3 and Lambda effect of a deploy, one method per step."""

    def plan(self, inputs: LayerInputs) -> LayerPlan: ...

    def verify(self, plan: LayerPlan, inputs: LayerInputs) -> LayerPlan:
        """An unchanged plan checked once more against Lambda's own CodeSha256 (changed if it fails)."""

    def remove_stale_claim(self, inputs: LayerInputs) -> None:
        """Remove a dead run's claim; never raises (a failure is logged and left to the next deploy)."""

    def claim(self, inputs: LayerInputs) -> Claim: ...

    def check_other_records(self, inputs: LayerInputs) -> None: ...

    def find_adoptable(self, inputs: LayerInputs) -> PublishedVersion | None:
        """A version already published with this fingerprint and code of ours (crash recovery)."""

    def upload(self, inputs: LayerInputs, artifact: LayerZipInfo) -> None: ...

    def write_intent(self, inputs: LayerInputs, code_sha256: str) -> None: ...

    def publish(self, inputs: LayerInputs, code_sha256: str) -> PublishedVersion: ...

    def record(self, inputs: LayerInputs, published: PublishedVersion, expected_etag: str | None) -> VersionFacts:
        """Write the versioned manifest and move ``last-`` to the version; returns what was recorded."""

    def clear_intent(self, inputs: LayerInputs) -> None: ...

    def clear_staged(self, inputs: LayerInputs) -> None: ...

    def sync_permissions(self, facts: VersionFacts, wanted: list[LayerPermission]) -> tuple[list[str], list[str]]: ...

    def apply_retention(self, facts: VersionFacts, keep_last: int) -> list[int]: ...

    def delete_version_records(self, inputs: LayerInputs, versions: list[int]) -> list[str]: ...


#: The seam for the packaged layer: build and package it, or fetch it from elsewhere. It returns the
#: zip on the local disk (``LayerZipInfo.path``, its CodeSha256); it runs holding the build folder lock.
ObtainArtifact = Callable[[LayerInputs], LayerZipInfo]


def _now(fn: Callable[[], _T]) -> Future[_T]:
    """Run at once on this thread (the default ``background``)."""
    future: Future[_T] = Future()
    try:
        future.set_result(fn())
    except Exception as e:  # noqa: BLE001 - handed to the caller through the future
        future.set_exception(e)
    return future


@contextlib.contextmanager
def _no_lock(_inputs: LayerInputs) -> Iterator[None]:
    yield


@dataclasses.dataclass(frozen=True)
class DeployEffects:
    """What the stages do to the world, injected."""

    gateway: LayerGateway
    obtain_artifact: ObtainArtifact
    #: Held from obtaining the artifact until it is uploaded (the build folder is per project).
    build_folder_lock: Callable[[LayerInputs], AbstractContextManager[None]] = _no_lock
    background: Callable[[Callable[[], Any]], Future[Any]] = _now
    #: Describe a recorded version (its SBOM and provenance); ``built`` is false for an adopted one.
    describe: Callable[[LayerInputs, VersionFacts, bool], None] = lambda _inputs, _facts, _built: None
    #: Stage the zip at the staging key another way and return its CodeSha256: the artifact store
    #: fetches the fingerprint's zip (or builds and stores it once across runners) and copies it
    #: server-side. ``None``: ``obtain_artifact`` here, then ``gateway.upload``.
    stage_artifact: Callable[[LayerInputs, Claim], str] | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    """What converges on every deploy, changed or not: grants and retention."""

    keep_last: int | None = None
    #: ``None``: leave the grants alone; a list: exactly these.
    permissions: list[LayerPermission] | None = None


@dataclasses.dataclass(frozen=True)
class DeployOutcome:
    """The version a deploy ended on, and what it did."""

    facts: VersionFacts
    published: bool
    adopted: bool
    deleted_versions: tuple[int, ...] = ()


# ---------------------------------------------------------------------------- stages
def plan_stage(inputs: LayerInputs, fx: DeployEffects) -> LayerPlan:
    """The plan; an unchanged one is verified against Lambda while a dead run's claim is removed."""
    with Stage("plan") as stage:
        plan = fx.gateway.plan(inputs)
        if not plan.changed:
            stale = fx.background(lambda: fx.gateway.remove_stale_claim(inputs))
            plan = fx.gateway.verify(plan, inputs)
            stale.result()
        get_logger("plan").info("[plan] %s", plan.reason)
        # The record's URI is long and shown by -v's [plan] line: the story keeps to the reason.
        reason = plan.reason.replace(f" at {plan.s3uri_record}", "")
        stage.finish(f"{'change' if plan.changed else 'no change'}: {reason}")
    return plan


def obtain_and_upload(inputs: LayerInputs, claim: Claim, fx: DeployEffects) -> LayerZipInfo:
    """Build-or-fetch the zip and stage it in S3, holding the project's build folder throughout."""
    with fx.build_folder_lock(inputs):
        artifact = fx.obtain_artifact(inputs)
        claim.ensure_held()
        fx.gateway.upload(inputs, artifact)
    return artifact


def publish_stage(inputs: LayerInputs, claim: Claim, fx: DeployEffects) -> tuple[PublishedVersion, bool]:
    """The version to record and whether it was adopted: an earlier one of ours, or a new publish."""
    found = fx.gateway.find_adoptable(inputs)
    if found is not None:
        get_logger("publish").info(
            "[publish] adopting version %s, published earlier with this fingerprint", found.version
        )
        with Stage("publish") as stage:
            stage.finish(f"adopted version {found.version}, published earlier with this fingerprint")
        return found, True
    if fx.stage_artifact is not None:
        code_sha256 = fx.stage_artifact(inputs, claim)
    else:
        code_sha256 = obtain_and_upload(inputs, claim, fx).code_sha256
    claim.ensure_held()
    with Stage("publish") as stage:
        fx.gateway.write_intent(inputs, code_sha256)
        published = fx.gateway.publish(inputs, code_sha256)
        stage.finish(f"version {published.version}")
    return published, False


def record_stage(
    inputs: LayerInputs,
    published: PublishedVersion,
    *,
    adopted: bool,
    expected_etag: str | None,
    claim: Claim,
    fx: DeployEffects,
) -> VersionFacts:
    """Record the version in S3 (only while the claim is ours), then drop what publishing left."""
    claim.ensure_held()
    facts = fx.gateway.record(inputs, published, expected_etag)
    fx.describe(inputs, facts, not adopted)
    fx.gateway.clear_intent(inputs)
    if not adopted:
        fx.gateway.clear_staged(inputs)
    return facts


def finish_stage(
    inputs: LayerInputs, facts: VersionFacts, settings: Settings, fx: DeployEffects, *, published: bool, adopted: bool
) -> DeployOutcome:
    """Grants and retention, which converge on every deploy, changed or not."""
    if settings.permissions is not None:
        with Stage("grants") as stage:
            added, removed = fx.gateway.sync_permissions(facts, settings.permissions)
            granted = f"version {facts.layer_version}: granted {added or 'none'}, revoked {removed or 'none'}"
            if added or removed:
                get_logger("grants").info("[permissions] %s", granted)
            stage.finish(granted)
    deleted: list[int] = []
    if settings.keep_last is not None:
        with Stage("retain") as stage:
            deleted = fx.gateway.apply_retention(facts, settings.keep_last)
            stage.finish(f"the last {plural(settings.keep_last, 'version')}; nothing to delete")
            if deleted:
                records = fx.gateway.delete_version_records(inputs, deleted)
                get_logger("retain").info(
                    "[retention] deleted versions %s of %s (keep_last=%s) and their %s in S3",
                    deleted, facts.layer_name, settings.keep_last, plural(len(records), "record"),
                )  # fmt: skip
                stage.finish(
                    f"deleted versions {', '.join(map(str, deleted))} (keep last {settings.keep_last}) and their "
                    f"{plural(len(records), 'record')} in S3"
                )
    return DeployOutcome(facts=facts, published=published, adopted=adopted, deleted_versions=tuple(deleted))


def _recorded(plan: LayerPlan) -> VersionFacts:
    assert plan.record is not None, "an unchanged plan names its record"
    return VersionFacts.of(plan.record)


def run_deploy(
    inputs: LayerInputs, settings: Settings, fx: DeployEffects, *, before_claim: Callable[[], None] = lambda: None
) -> DeployOutcome:
    """Publish if and only if the plan says changed; ``before_claim`` runs checks that need no claim."""
    plan = plan_stage(inputs, fx)
    if not plan.changed:
        return finish_stage(inputs, _recorded(plan), settings, fx, published=False, adopted=False)
    before_claim()
    claim = fx.gateway.claim(inputs)
    with claim:
        plan = fx.gateway.verify(fx.gateway.plan(inputs), inputs)  # a concurrent deploy may have finished
        if not plan.changed:
            get_logger("plan").info("[plan] another deploy recorded version %s meanwhile", plan.current_version)
            return finish_stage(inputs, _recorded(plan), settings, fx, published=False, adopted=False)
        fx.gateway.check_other_records(inputs)
        published, adopted = publish_stage(inputs, claim, fx)
        facts = record_stage(inputs, published, adopted=adopted, expected_etag=plan.record_etag, claim=claim, fx=fx)
        return finish_stage(inputs, facts, settings, fx, published=not adopted, adopted=adopted)
