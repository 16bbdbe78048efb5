"""The plan's decision: would a deploy publish, and why — pure, from facts already read.

``workflow`` reads the facts (the ``last-`` record with one S3 GET, Lambda's newest versions with
one listing, and only when the decision needs them the recorded manifest, the recorded version
on its own, and whether a run of ours vouches for a version carrying the local fingerprint); this
module decides from them with no I/O at all, so every case is a table row in
``tests/unit/test_decide.py``. It imports no AWS library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from .facts import LayerRecord, PublishedVersion, parse_layer_description
from .manifest import PackageChanges, diff_dependencies


class RecordRead(Protocol):
    """One GET of a ``last-`` object (``record.FetchedRecord``), as the decision reads it."""

    @property
    def etag(self) -> str | None: ...

    @property
    def record(self) -> LayerRecord | None: ...

    @property
    def problem(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """Whether a deploy would publish, why, and which packages moved."""

    changed: bool
    reason: str
    layer_name: str
    fingerprint: str
    current_version: int | None
    current_layer_version_arn: str | None
    #: Packages added, removed or changed between the recorded manifest and the local one.
    package_changes: PackageChanges
    recorded_fingerprint: str | None
    s3uri_record: str
    #: The record as read (with ``version_exists`` filled in), ``None`` when there is none.
    record: LayerRecord | None = dataclasses.field(default=None, repr=False)
    #: ETag of the ``last-`` object as read: a deploy replaces the record only if it is unchanged.
    record_etag: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "reason": self.reason,
            "layer_name": self.layer_name,
            "fingerprint": self.fingerprint,
            "recorded_fingerprint": self.recorded_fingerprint,
            "current_version": self.current_version,
            "current_layer_version_arn": self.current_layer_version_arn,
            "package_changes": self.package_changes.to_dict(),
            "s3uri_record": self.s3uri_record,
        }


@dataclasses.dataclass(frozen=True)
class ListedVersion:
    """One layer version as Lambda lists it: enough to check a record without another request."""

    version: int
    layer_version_arn: str
    description: str
    #: Only known when the version was fetched on its own (``GetLayerVersion``), not listed.
    code_sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class FirstPage:
    """The newest versions of a layer, as one ``ListLayerVersions`` call returns them."""

    versions: frozenset[int]
    #: Whether Lambda has more (older) versions than this page holds.
    truncated: bool
    listed: tuple[ListedVersion, ...] = ()


def record_mismatch(record: LayerRecord, listed: ListedVersion | PublishedVersion) -> str:
    """Why the recorded version is not what Lambda has (``""`` when the record holds).

    Anyone who can write the ``s3dir_lambda`` can edit the record: its ARN must be this
    layer's version (the one Lambda lists in this account and region), and the version's
    description (written by the publishing run) must carry the recorded fingerprint and
    CodeSha256, as must Lambda's own CodeSha256 where it is known.
    """
    arn = listed.layer_version_arn
    version = listed.version
    if arn and record.layer_version_arn != arn:
        return f"the record names {record.layer_version_arn}, but version {version} of this layer is {arn}"
    if arn and record.layer_arn != arn.rsplit(":", 1)[0]:
        return f"the record names layer {record.layer_arn}, but version {version} belongs to {arn.rsplit(':', 1)[0]}"
    described = parse_layer_description(listed.description)
    if described is None:
        return f"version {version} was not published by this tool (description {listed.description!r})"
    if described[0] != record.fingerprint:
        return f"version {version} carries fingerprint {described[0][:12]}…, the record says {record.fingerprint[:12]}…"
    actual = listed.code_sha256
    if described[1] != record.code_sha256 or (actual is not None and actual != record.code_sha256):
        return f"version {version} holds code {actual or described[1]}, the record says {record.code_sha256}"
    return ""


def versions_with_fingerprint(page: FirstPage, fingerprint: str) -> list[tuple[int, str]]:
    """``(version, described CodeSha256)`` of each listed version whose description carries ``fingerprint``,
    newest first: the versions a deploy could adopt, once a run of ours vouches for their code."""
    found = []
    for item in sorted(page.listed, key=lambda i: i.version, reverse=True):
        described = parse_layer_description(item.description)
        if described is not None and described[0] == fingerprint:
            found.append((item.version, described[1]))
    return found


def needs_code_check(record: LayerRecord, page: FirstPage) -> bool:
    """Whether the recorded version must be fetched on its own for Lambda's CodeSha256.

    Two listed versions carrying the recorded fingerprint mean one of them was published by
    someone else with a copied description: only Lambda's own CodeSha256 tells which.
    """
    return len(versions_with_fingerprint(page, record.fingerprint)) > 1


@dataclasses.dataclass(frozen=True)
class Adoption:
    """A listed version carrying the local fingerprint, and whether a run of ours vouches for its code."""

    version: int
    #: Its CodeSha256 is one a run of ours recorded (the publish intent, or the version's own manifest):
    #: a deploy adopts it. Otherwise someone else published it, and a deploy publishes its own.
    ours: bool


@dataclasses.dataclass(frozen=True)
class LambdaFacts:
    """What Lambda says, as read for one plan: the newest versions, and the recorded one."""

    listed: FirstPage
    #: The recorded version as Lambda has it; ``None`` when it is gone (or nothing is recorded).
    recorded: ListedVersion | None = None
    #: The version a deploy would adopt (or refuse) instead of publishing; read only for a changed plan.
    adoption: Adoption | None = None


@dataclasses.dataclass(frozen=True)
class LocalFacts:
    """What the local project says, as a plan needs it."""

    layer_name: str
    fingerprint: str
    dependencies: Mapping[str, str]
    python_version: str
    architecture: str
    s3uri_record: str
    #: The recorded manifest's runtime set, read like the local one (``None``: unreadable or not needed).
    recorded_dependencies: Mapping[str, str] | None = None
    #: The record is of an older fingerprint format and its runtime set is the local one.
    same_set_of_older_format: bool = False


def is_unchanged_candidate(record: LayerRecord | None, recorded: ListedVersion | None, fingerprint: str) -> bool:
    """The no-op case: the recorded version is in Lambda, holds, and has the local fingerprint.

    Only outside it does a plan read more than its two requests (the recorded manifest, the trust of
    a version to adopt): a no-op plan costs one S3 GET and one Lambda listing.
    """
    return (
        record is not None
        and recorded is not None
        and record.fingerprint == fingerprint
        and not record_mismatch(record, recorded)
    )


def needs_recorded_set(record: LayerRecord | None, lambda_facts: LambdaFacts, fingerprint: str) -> bool:
    """Only a changed or vanished version needs the recorded manifest read (a no-op plan reads nothing)."""
    return record is not None and not (lambda_facts.recorded is not None and record.fingerprint == fingerprint)


def _what_then(adoption: Adoption | None, otherwise: str) -> str:
    """What a changed deploy does: adopt a version of ours with this fingerprint, or publish (``otherwise``
    when no listed version carries the fingerprint)."""
    if adoption is None:
        return otherwise
    if adoption.ours:
        return f"a deploy adopts version {adoption.version}, published earlier with this fingerprint"
    return f"version {adoption.version} carries this fingerprint but not our code: a deploy publishes a new version"


def _without_current(common: dict[str, Any], local: LocalFacts, reason: str, record: LayerRecord | None) -> LayerPlan:
    """A changed plan with no version to keep: nothing recorded, or a record Lambda contradicts."""
    return LayerPlan(
        changed=True,
        reason=reason,
        current_version=None,
        current_layer_version_arn=None,
        package_changes=diff_dependencies({}, local.dependencies),
        recorded_fingerprint=record.fingerprint if record is not None else None,
        record=record,
        **common,
    )


def decide(fetched: RecordRead, lambda_facts: LambdaFacts, local: LocalFacts) -> LayerPlan:
    """Would a deploy publish, and why: pure, from the record as read, Lambda's facts and the local ones."""
    uri = local.s3uri_record
    record = fetched.record
    common: dict[str, Any] = dict(
        layer_name=local.layer_name, fingerprint=local.fingerprint, s3uri_record=uri, record_etag=fetched.etag
    )
    adoption = lambda_facts.adoption
    if record is None:
        why = fetched.problem or f"no earlier version is recorded at {uri}"
        then = _what_then(adoption, "a deploy publishes the first version")
        return _without_current(common, local, f"{why}; {then}", None)
    in_lambda = lambda_facts.recorded
    exists = in_lambda is not None
    mismatch = record_mismatch(record, in_lambda) if in_lambda is not None else ""
    record = dataclasses.replace(record, version_exists=exists)
    if mismatch:
        then = _what_then(adoption, "a deploy publishes a new version")
        return _without_current(common, local, f"the record at {uri} does not match Lambda: {mismatch}; {then}", record)
    common.update(
        current_version=record.layer_version if exists else None,
        current_layer_version_arn=record.layer_version_arn if exists else None,
        recorded_fingerprint=record.fingerprint,
        record=record,
    )
    if exists and record.fingerprint == local.fingerprint:
        reason = f"the fingerprint recorded for version {record.layer_version} at {uri} matches the local manifest"
        return LayerPlan(changed=False, reason=reason, package_changes=PackageChanges(), **common)
    if exists and local.same_set_of_older_format:
        reason = (
            f"version {record.layer_version} recorded at {uri} was fingerprinted by an older format; "
            f"its runtime set equals the local one"
        )
        return LayerPlan(changed=False, reason=reason, package_changes=PackageChanges(), **common)
    old_deps = local.recorded_dependencies
    changes = diff_dependencies(old_deps or {}, local.dependencies)
    reason = _change_reason(record, exists, old_deps, changes, local)
    if adoption is not None:
        reason += f"; {_what_then(adoption, 'a deploy publishes a new version')}"
    return LayerPlan(changed=True, reason=reason, package_changes=changes, **common)


def _change_reason(
    record: LayerRecord,
    exists: bool,
    old_deps: Mapping[str, str] | None,
    changes: PackageChanges,
    local: LocalFacts,
) -> str:
    uri = local.s3uri_record
    if not exists:
        return f"version {record.layer_version} recorded at {uri} no longer exists in Lambda"
    if old_deps is None:
        return f"the fingerprint changed since version {record.layer_version}; the recorded manifest cannot be read"
    if not changes.is_empty:
        count = len(changes.lines())
        return (
            f"the runtime dependencies changed since version {record.layer_version} "
            f"({count} package{'' if count == 1 else 's'})"
        )
    moved = [
        f"{name} {old} -> {new}"
        for name, old, new in (
            ("python_version", record.python_version, local.python_version),
            ("architecture", record.architecture, local.architecture),
        )
        if old != new
    ]
    detail = ", ".join(moved) or "the lock file, excluded packages or packaging options differ"
    return f"the fingerprint changed since version {record.layer_version}, not the package versions: {detail}"
