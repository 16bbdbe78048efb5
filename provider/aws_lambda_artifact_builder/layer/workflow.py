"""Plan and deploy: publish a layer version only when the fingerprint recorded in S3 changed.

``plan`` reads the ``last-`` record with one S3 GET while it asks Lambda, side by side,
whether the recorded version still exists; it never builds and never writes. That GET reads
the record's facts, not its manifest body: the body is read (``If-Match`` the first ETag) only
when the fingerprint moved and the package diff or the older-format check needs it. ``deploy_layer``
plans, and when nothing changed returns the recorded version without building. Otherwise it
takes the deploy claim of the ``s3dir_lambda`` (see ``claim``), plans again under it (a
concurrent deploy may have finished meanwhile), adopts a version already published with this
fingerprint (a run that died before recording, or a return to an earlier lock) or builds,
packages, uploads and publishes, and records the version in S3.

The deploy's steps are the stages of ``pipeline.run_deploy``; this module gives them their real
effects: ``AwsGateway`` (S3 and Lambda, through ``publish``/``record``/``claim``/``upload``) and
``build_artifact`` (build and package on this machine or in a container), the default source of the
packaged zip at the pipeline's ``obtain_artifact`` seam.

The core's entry points take the spec's values (``layer/spec.py``): ``plan(spec, s3_client=, lambda_client=)``
and ``deploy(spec, options, s3_client=, lambda_client=, ...)``; every front end (CLI, Pulumi, Terraform)
builds its ``LayerSpec``/``DeployOptions`` from the spec's metadata and calls them, none re-implements
them. ``plan_layer``/``deploy_layer`` are the seed's keyword shims over them.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fcntl
import functools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from s3pathlib.api import S3Path

from ..constants import DEFAULT_PYTHON_VERSION, DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, LayerBuildToolEnum
from ..errors import LayerError, LayerInputError
from ..progress import Stage, human_size, printer_adapter
from ..typehint import T_PRINTER
from .claim import DeployClaim
from .clients import resolve_clients
from .evidence import describe_build, store_version_evidence
from .foundation import Credentials, LayerS3Layout, coerce_s3dir, coerce_tool
from .inputs import LayerInputs, LayerPermission, check_spec, parse_permissions, resolve_spec, spec_from_kwargs
from .manifest import (
    LocalManifest,
    PackageChanges,
    RuntimeSet,
    compute_fingerprint,
    diff_dependencies,
    legacy_fingerprint_v1,
    recorded_runtime_set,
)
from .package import LayerZipInfo, PackagingOptions, create_layer_zip_file
from .facts import VersionFacts
from .pipeline import Claim, DeployEffects, Settings, run_deploy
from .publish import (
    LayerDeployment,
    PublishedVersion,
    apply_retention,
    check_other_records,
    check_record_owner,
    clear_publish_intent,
    clear_staged_zip,
    delete_version_records,
    find_layer_version_by_fingerprint,
    get_layer_version,
    is_our_version,
    make_record,
    parse_layer_description,
    publish_staged_zip,
    record_layer_version,
    sync_layer_version_permissions,
    write_publish_intent,
)
from .spec import DeployOptions, LayerSpec
from .record import FetchedRecord, LayerRecord, RecordConflict, fetch_record, fetch_record_body
from .store import ArtifactStore, StoredArtifact, obtain_from_store
from .target import LayerTarget
from .upload import upload_zip

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

_T = TypeVar("_T")


class _DaemonPool:
    """Long-lived daemon worker threads, so that a plan's round trips overlap.

    Starting threads per plan costs more than the overlap saves on a busy machine. The threads
    are daemons (unlike ``ThreadPoolExecutor``'s): a plan that gave up on an endpoint that never
    answers must not keep the process from exiting while a socket read hangs.
    """

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"alab-plan-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, fn = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(e)

    def submit(self, fn: Callable[[], _T]) -> Future[_T]:
        future: Future[_T] = Future()
        self._jobs.put((future, fn))
        return future


_pools: dict[int, _DaemonPool] = {}


def _in_background(fn: Callable[[], _T]) -> Future[_T]:
    """Run one call on a worker thread; the pool is per process, so a forked child gets its own."""
    pool = _pools.get(os.getpid())
    if pool is None:
        pool = _pools[os.getpid()] = _DaemonPool(8)
    context = contextvars.copy_context()  # its stage and its front end's forwarding go with it
    return pool.submit(lambda: context.run(fn))


def aws_deadline_seconds() -> float:
    """How long a plan waits for S3 and Lambda in all (``ALAB_AWS_DEADLINE_SECONDS``, default 120)."""
    try:
        return max(float(os.environ.get("ALAB_AWS_DEADLINE_SECONDS", "120")), 0.1)
    except ValueError:
        return 120.0


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


def _lambda_error(error: ClientError | BotoCoreError, layer_name: str) -> LayerError:
    return LayerError(f"layer_name {layer_name!r}: could not read the layer's versions from Lambda: {error}")


@dataclasses.dataclass(frozen=True)
class _Listed:
    """One layer version as Lambda lists it: enough to check a record without another request."""

    version: int
    layer_version_arn: str
    description: str
    #: Only known when the version was fetched on its own (``GetLayerVersion``), not listed.
    code_sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class _FirstPage:
    """The newest versions of a layer, as one ``ListLayerVersions`` call returns them."""

    versions: frozenset[int]
    #: Whether Lambda has more (older) versions than this page holds.
    truncated: bool
    listed: tuple[_Listed, ...] = ()


def _first_page_of_versions(lambda_client: LambdaClient, layer_name: str) -> _FirstPage:
    try:
        response = lambda_client.list_layer_versions(LayerName=layer_name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return _FirstPage(versions=frozenset(), truncated=False)
        raise
    listed = tuple(
        _Listed(
            version=int(v["Version"]),
            layer_version_arn=v.get("LayerVersionArn", ""),
            description=v.get("Description", ""),
        )
        for v in response.get("LayerVersions", [])
    )
    return _FirstPage(
        versions=frozenset(v.version for v in listed), truncated=bool(response.get("NextMarker")), listed=listed
    )


def _lambda_version(lambda_client: LambdaClient, layer_name: str, version: int, page: _FirstPage) -> _Listed | None:
    """The recorded version as Lambda has it: from the page fetched alongside the record, else asked once."""
    for item in page.listed:
        if item.version == version:
            return item
    if version in page.versions:  # a page built without the listed items
        return _Listed(version=version, layer_version_arn="", description="")
    if not page.truncated or version > max(page.versions, default=0):
        return None
    found = get_layer_version(lambda_client=lambda_client, layer_name=layer_name, version=version)
    if found is None:
        return None
    return _Listed(
        version=version,
        layer_version_arn=found.layer_version_arn,
        description=found.description,
        code_sha256=found.code_sha256,
    )


def record_mismatch(record: LayerRecord, listed: _Listed | PublishedVersion) -> str:
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


def _adoptable(page: _FirstPage, fingerprint: str) -> int | None:
    """The newest listed version whose description carries this fingerprint (a deploy checks its code)."""
    for item in sorted(page.listed, key=lambda i: i.version, reverse=True):
        described = parse_layer_description(item.description)
        if described is not None and described[0] == fingerprint:
            return item.version
    return None


def _recorded_set(record: LayerRecord, inputs: LayerInputs) -> RuntimeSet | None:
    """The runtime set the recorded manifest pins, read like the local one; ``None`` if it cannot be read.

    The body is whatever the s3dir holds: a damaged or hand-edited one must make the plan say
    "changed" (and the deploy rewrite it), never stop every deploy with a parser's exception.
    """
    try:
        target = LayerTarget(python_version=record.python_version, architecture=record.architecture)
        return recorded_runtime_set(
            record.tool, record.manifest_content, inputs.path_layout.path_pyproject_toml, target
        )
    except Exception:  # noqa: BLE001 - any failure to read the recorded body means "cannot be read"
        return None


def _is_same_set_of_older_format(record: LayerRecord, inputs: LayerInputs, old: RuntimeSet | None) -> bool:
    """A record written by fingerprint format 1 whose runtime set is the local one: nothing to publish."""
    if old is None or (record.tool, record.python_version, record.architecture) != (
        inputs.tool.value,
        inputs.target.python_version,
        inputs.target.architecture,
    ):
        return False
    common: dict[str, Any] = dict(
        tool=inputs.tool,
        python_version=inputs.target.python_version,
        architecture=inputs.target.architecture,
        ignore_packages=inputs.ignore_packages,
        packaging_options=inputs.packaging_options.fingerprint_fields(),
    )
    if legacy_fingerprint_v1(manifest_content=record.manifest_content, **common) != record.fingerprint:
        return False
    return compute_fingerprint(runtime_set=old, **common) == inputs.fingerprint


@dataclasses.dataclass(frozen=True)
class _Reads:
    """The two requests of a plan, in flight side by side."""

    layer_name: str
    record: Future[FetchedRecord]
    page: Future[_FirstPage]
    #: Where the requests went, for the message when they get no answer.
    endpoint: str = ""

    def results(self) -> tuple[FetchedRecord, _FirstPage]:
        both: list[Future[Any]] = [self.record, self.page]
        deadline = aws_deadline_seconds()
        _, pending = wait(both, timeout=deadline)
        if pending:
            which = " and ".join(name for name, f in (("S3", self.record), ("Lambda", self.page)) if f in pending)
            raise LayerError(
                f"layer_name {self.layer_name!r}: no answer from {which} at {self.endpoint} within {deadline:.0f}s "
                f"(an endpoint that accepts connections but never answers?); check the endpoint and the network, "
                f"or set ALAB_AWS_DEADLINE_SECONDS to wait longer"
            )
        fetched = self.record.result()
        try:
            return fetched, self.page.result()
        except (ClientError, BotoCoreError) as e:
            raise _lambda_error(e, self.layer_name) from None


def _start_reads(inputs: LayerInputs, s3_client: S3Client, lambda_client: LambdaClient, *, body: bool) -> _Reads:
    fetch = functools.partial(
        fetch_record, s3_client=s3_client, s3path=inputs.s3path_last_manifest, s3uri_manifest_for=inputs.s3uri_manifest_for,
        body=body,
    )  # fmt: skip
    layer_name = inputs.layer_name
    return _Reads(
        layer_name=layer_name,
        record=_in_background(fetch),
        page=_in_background(lambda: _first_page_of_versions(lambda_client, layer_name)),
        endpoint=" / ".join(sorted({str(s3_client.meta.endpoint_url), str(lambda_client.meta.endpoint_url)})),
    )


def _plan(inputs: LayerInputs, s3_client: S3Client, lambda_client: LambdaClient) -> LayerPlan:
    """The record's facts first, its body only if the decision needs it.

    A record replaced between the two reads is a concurrent change (another deploy recorded):
    the plan is made again from fresh reads, the second time with the body in the one GET, so
    it stands on one version of the object and ends.
    """
    try:
        return _plan_once(inputs, s3_client, lambda_client, body=False)
    except RecordConflict:
        return _plan_once(inputs, s3_client, lambda_client, body=True)


def _plan_once(inputs: LayerInputs, s3_client: S3Client, lambda_client: LambdaClient, *, body: bool) -> LayerPlan:
    fetched, listed = _start_reads(inputs, s3_client, lambda_client, body=body).results()
    check_record_owner(fetched, layer_name=inputs.layer_name, s3dir_lambda=inputs.s3_layout.s3dir_lambda)
    return _decide(inputs, fetched, listed, lambda_client, functools.partial(fetch_record_body, s3_client=s3_client))


@dataclasses.dataclass(frozen=True)
class LambdaFacts:
    """What Lambda says, as read for one plan: the newest versions, and the recorded one."""

    listed: _FirstPage
    #: The recorded version as Lambda has it; ``None`` when it is gone (or nothing is recorded).
    recorded: _Listed | None = None


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


def _needs_recorded_set(record: LayerRecord | None, lambda_facts: LambdaFacts, fingerprint: str) -> bool:
    """Only a changed or vanished version needs the recorded manifest read (a no-op plan reads nothing)."""
    return record is not None and not (lambda_facts.recorded is not None and record.fingerprint == fingerprint)


#: Reads the manifest body of a record read without it (``RecordConflict`` if the object changed).
ReadBody = Callable[[FetchedRecord], FetchedRecord]


def _gather(
    inputs: LayerInputs, fetched: FetchedRecord, listed: _FirstPage, lambda_client: LambdaClient, read_body: ReadBody
) -> tuple[FetchedRecord, LambdaFacts, LocalFacts]:
    """The effects of a plan beyond its two reads: one more Lambda request when the listing is
    truncated, and the recorded manifest's body read only when the decision needs it."""
    record = fetched.record
    recorded = None
    if record is not None:
        recorded = _lambda_version(lambda_client, inputs.layer_name, record.layer_version, listed)
    lambda_facts = LambdaFacts(listed=listed, recorded=recorded)
    local = LocalFacts(
        layer_name=inputs.layer_name,
        fingerprint=inputs.fingerprint,
        dependencies=inputs.manifest.dependencies,
        python_version=inputs.target.python_version,
        architecture=inputs.target.architecture,
        s3uri_record=inputs.s3path_last_manifest.uri,
    )
    if record is not None and _needs_recorded_set(record, lambda_facts, inputs.fingerprint):
        fetched = read_body(fetched)
        record = fetched.record
        assert record is not None, "reading the body keeps the record"
        old_set = _recorded_set(record, inputs)
        local = dataclasses.replace(
            local,
            recorded_dependencies=old_set.dependencies if old_set is not None else None,
            same_set_of_older_format=_is_same_set_of_older_format(record, inputs, old_set),
        )
    return fetched, lambda_facts, local


def _decide(
    inputs: LayerInputs, fetched: FetchedRecord, listed: _FirstPage, lambda_client: LambdaClient, read_body: ReadBody
) -> LayerPlan:
    fetched, lambda_facts, local = _gather(inputs, fetched, listed, lambda_client, read_body)
    return decide(fetched, lambda_facts, local)


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


def decide(fetched: FetchedRecord, lambda_facts: LambdaFacts, local: LocalFacts) -> LayerPlan:
    """Would a deploy publish, and why: pure, from the record as read, Lambda's facts and the local ones."""
    uri = local.s3uri_record
    record = fetched.record
    common: dict[str, Any] = dict(
        layer_name=local.layer_name, fingerprint=local.fingerprint, s3uri_record=uri, record_etag=fetched.etag
    )
    adoptable = _adoptable(lambda_facts.listed, local.fingerprint)
    adopts = f"a deploy adopts version {adoptable}, published earlier with this fingerprint"
    if record is None:
        why = fetched.problem or f"no earlier version is recorded at {uri}"
        then = adopts if adoptable is not None else "a deploy publishes the first version"
        return _without_current(common, local, f"{why}: {then}", None)
    in_lambda = lambda_facts.recorded
    exists = in_lambda is not None
    mismatch = record_mismatch(record, in_lambda) if in_lambda is not None else ""
    record = dataclasses.replace(record, version_exists=exists)
    if mismatch:
        then = adopts if adoptable is not None else "a deploy publishes a new version"
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
    reason = _change_reason(record, exists, adoptable, adopts, old_deps, changes, local)
    return LayerPlan(changed=True, reason=reason, package_changes=changes, **common)


def _change_reason(
    record: LayerRecord,
    exists: bool,
    adoptable: int | None,
    adopts: str,
    old_deps: Mapping[str, str] | None,
    changes: PackageChanges,
    local: LocalFacts,
) -> str:
    uri = local.s3uri_record
    if not exists:
        reason = f"version {record.layer_version} recorded at {uri} no longer exists in Lambda"
        return reason + (f"; {adopts}" if adoptable is not None else "")
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


def plan(
    spec: LayerSpec,
    *,
    s3_client: S3Client | None = None,
    lambda_client: LambdaClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> LayerPlan:
    """Would a deploy of ``spec`` publish? One S3 GET (alongside one Lambda listing); no build, no write.

    The core's plan: every front end builds the :class:`LayerSpec` from the spec's metadata and calls it.
    The spec is checked before any client is made (from ``region``/``endpoint_url`` when not given).
    """
    inputs = resolve_spec(spec)
    s3_client, lambda_client = resolve_clients(s3_client, lambda_client, region, endpoint_url)
    return _plan(inputs, s3_client, lambda_client)


def plan_layer(
    *,
    layer_name: str,
    path_pyproject_toml: Path | str,
    s3dir_lambda: S3Path | str,
    tool: str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    ignore_packages: Iterable[str] | None = None,
    packaging_options: PackagingOptions | None = None,
    s3_client: S3Client | None = None,
    lambda_client: LambdaClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    **options: Any,
) -> LayerPlan:
    """:func:`plan` with the seed's keywords (and clients made from ``region``/``endpoint_url`` when absent);
    ``options``: any other option of the spec by name, so that a field added to it needs no keyword here."""
    spec, _, problems = spec_from_kwargs(
        packaging_options, layer_name=layer_name, path_pyproject_toml=path_pyproject_toml, s3dir_lambda=s3dir_lambda,
        tool=tool, python_version=python_version, architecture=architecture, ignore_packages=ignore_packages,
        **options,
    )  # fmt: skip
    _raise_problems(spec, problems)
    return plan(spec, s3_client=s3_client, lambda_client=lambda_client, region=region, endpoint_url=endpoint_url)


def _raise_problems(spec: LayerSpec, problems: list[tuple[str, str]], options: DeployOptions | None = None) -> None:
    """A shim's own problem (a ``packaging_options`` of another type) with every problem of the spec."""
    if problems:
        raise LayerInputError(check_spec(spec, options)[0] + problems)


def read_layer_record(
    *,
    s3dir_lambda: S3Path | str,
    tool: str,
    s3_client: S3Client | None = None,
    lambda_client: LambdaClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    manifest: bool = True,
) -> LayerRecord | None:
    """The ``last-`` record of ``s3dir_lambda`` for a tool, with ``version_exists`` from Lambda.

    ``manifest=False`` reads the facts alone (``manifest_content`` stays empty): what a
    provider's refresh needs, without the recorded lock's bytes.
    """
    s3_client, lambda_client = resolve_clients(s3_client, lambda_client, region, endpoint_url)
    layout = LayerS3Layout(s3dir_lambda=coerce_s3dir(s3dir_lambda))
    name = coerce_tool(tool).manifest_name
    fetched = fetch_record(
        s3_client=s3_client,
        s3path=layout.get_s3path_last_manifest(name),
        s3uri_manifest_for=lambda v: layout.get_s3path_versioned_manifest(v, name).uri,
        body=manifest,
    )
    if fetched.record is None:
        return None
    record = fetched.record
    found = get_layer_version(lambda_client=lambda_client, layer_name=record.layer_name, version=record.layer_version)
    return dataclasses.replace(record, version_exists=found is not None and not record_mismatch(record, found))


def _verified(plan: LayerPlan, inputs: LayerInputs, lambda_client: LambdaClient) -> LayerPlan:
    """An unchanged plan, once more against Lambda's own CodeSha256 before a deploy returns its ARN.

    The plan checked the listing (ARN, description); a deploy also asks for the version itself,
    so an output never names code other than the record's.
    """
    if plan.changed or plan.record is None:
        return plan
    record = plan.record
    found = get_layer_version(lambda_client=lambda_client, layer_name=inputs.layer_name, version=record.layer_version)
    why = "it no longer exists" if found is None else record_mismatch(record, found)
    if not why:
        return plan
    return dataclasses.replace(
        plan,
        changed=True,
        reason=f"the record at {plan.s3uri_record} does not match Lambda: {why}",
        current_version=None,
        current_layer_version_arn=None,
    )


# ---------------------------------------------------------------------------- deploy
@contextlib.contextmanager
def _build_folder_lock(inputs: LayerInputs, log: T_PRINTER) -> Iterator[None]:
    """Hold the project's build folder alone from the build until its zip is uploaded.

    The deploy claim is per ``s3dir_lambda``, but ``build/lambda/layer`` is per project, and each
    build wipes it: two layers of one project (two architectures, two regions) deployed at once
    by the CLI, Pulumi or Terraform must take turns. ``flock`` serialises threads and processes.
    """
    dir_build = inputs.path_layout.dir_build_lambda
    dir_build.mkdir(parents=True, exist_ok=True)
    fd = os.open(dir_build / "layer-build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[build] waiting for another deploy that builds in {dir_build}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """How ``build_artifact`` builds: where, with which image and index login, how loudly."""

    build_in: str = DEFAULT_BUILD_IN
    credentials: Credentials | None = None
    image: str | None = None
    container_runtime: str | None = None
    verbose: bool = True
    printer: T_PRINTER = print

    def log(self, msg: str) -> None:
        printer_adapter(self.verbose, self.printer, "build")(msg)


def check_build_possible(inputs: LayerInputs, settings: BuildSettings) -> None:
    """Before any claim, build or S3 write: what the lock already tells about a local build."""
    check_build_possible_for(inputs.manifest, inputs.target, settings)


def check_build_possible_for(manifest: LocalManifest, target: LayerTarget, settings: BuildSettings) -> None:
    if settings.build_in == "local":
        from .build import check_local_build_possible

        check_local_build_possible(manifest, target)


def _describe(
    inputs: LayerInputs,
    facts: VersionFacts,
    built: bool,
    *,
    s3_client: S3Client,
    settings: BuildSettings,
    staged: dict[str, StoredArtifact],
    store: ArtifactStore | None = None,
) -> None:
    """SBOM and provenance beside the record (``layer/evidence.py``; a failure there is a warning), made
    from the zip this deploy staged: the one it built, or the artifact store's checked copy (whose
    builder and build place are in the store's provenance)."""
    artifact = staged.get(inputs.fingerprint)
    stored = store.read_provenance(inputs.fingerprint) if store is not None and artifact and built else None
    store_version_evidence(
        s3_client=s3_client, inputs=inputs, record=facts, built=built, build_in=settings.build_in,
        image=settings.image, container_runtime=settings.container_runtime, printer=settings.log,
        path_zip=artifact.path_local if artifact else None, from_store=artifact.s3path_zip.uri if artifact else None,
        stored=stored,
    )  # fmt: skip


def describe_for_store(inputs: LayerInputs, settings: BuildSettings) -> Callable[[Path], Mapping[str, str]]:
    """What a run that builds for the artifact store writes beside the zip (``evidence.describe_build``)."""
    return functools.partial(
        describe_build, inputs=inputs, build_in=settings.build_in, image=settings.image,
        container_runtime=settings.container_runtime,
    )  # fmt: skip


def _stage_from_store(
    inputs: LayerInputs,
    claim: Claim,
    *,
    store: ArtifactStore,
    s3_client: S3Client,
    settings: BuildSettings,
    staged: dict[str, StoredArtifact],
) -> str:
    """The pipeline's ``stage_artifact`` with an artifact store (``layer/store.py``): the fingerprint's
    stored zip, or one built and stored once across runners, copied to this target's staging key."""
    artifact = obtain_from_store(
        store,
        inputs.fingerprint,
        build=functools.partial(build_artifact, inputs, settings),
        build_lock=functools.partial(_build_folder_lock, inputs, settings.log),
        log=settings.log,
        describe=describe_for_store(inputs, settings),
    )
    staged[inputs.fingerprint] = artifact
    claim.ensure_held()
    metadata = {"fingerprint": inputs.fingerprint}
    s3path = inputs.s3_layout.s3path_temp_layer_zip
    store.stage(artifact, s3_client=s3_client, s3path=s3path, metadata=metadata, log=settings.log)
    return artifact.code_sha256


def store_artifact(
    spec: LayerSpec,
    options: DeployOptions | None = None,
    *,
    store: ArtifactStore,
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> StoredArtifact:
    """The core's push (``alab layer push``): ``spec``'s artifact in ``store``, built (once across runners)
    and stored unless its fingerprint is there; never publishes. Only ``options.credentials`` is used."""
    options = DeployOptions() if options is None else options
    inputs = resolve_spec(spec, options)
    settings = BuildSettings(spec.build_in, options.credentials, spec.image, spec.container_runtime, verbose, printer)
    log = printer_adapter(verbose, printer, "store")
    return obtain_from_store(
        store,
        inputs.fingerprint,
        build=functools.partial(build_artifact, inputs, settings),
        build_lock=functools.partial(_build_folder_lock, inputs, log),
        log=log,
        describe=describe_for_store(inputs, settings),
    )


def build_artifact(inputs: LayerInputs, settings: BuildSettings) -> LayerZipInfo:
    """The default :data:`~.pipeline.ObtainArtifact`: build the locked runtime set into ``python/`` and zip it."""
    return build_and_package(
        inputs.manifest, inputs.tool, inputs.target, inputs.path_layout.path_pyproject_toml, settings,
        ignore_packages=inputs.ignore_packages, packaging_options=inputs.packaging_options,
    )  # fmt: skip


def build_and_package(
    manifest: LocalManifest,
    tool: LayerBuildToolEnum,
    target: LayerTarget,
    path_pyproject_toml: Path,
    settings: BuildSettings,
    *,
    ignore_packages: list[str] | None,
    packaging_options: PackagingOptions,
) -> LayerZipInfo:
    """Install the runtime set here or in a container, then zip it, each as a progress stage: a deploy's
    build and ``alab layer build`` (which has no S3 folder or layer name, so no ``LayerInputs``)."""
    from .install_plan import pins_for_manifest

    settings.log(f"[build] installing {manifest.name} for {target.runtime} {target.architecture} ({settings.build_in})")
    common: dict[str, Any] = dict(
        tool=tool,
        path_pyproject_toml=path_pyproject_toml,
        python_version=target.python_version,
        architecture=target.architecture,
        credentials=settings.credentials,
        verbose=settings.verbose,
        printer=settings.printer,
    )
    with Stage("install", total=len(pins_for_manifest(manifest))) as install:
        if settings.build_in == "local":
            from .build import build_layer_artifacts_in_local

            build_layer_artifacts_in_local(skip_prompt=True, **common)
        else:
            from .build_container import build_layer_artifacts_in_container

            build_layer_artifacts_in_container(
                image=settings.image, container_runtime=settings.container_runtime, **common
            )
        settings.log(f"[build] done in {install.elapsed:.1f}s")
        install.finish(f"{install.total} packages for {target.runtime} {target.architecture} ({settings.build_in})")
    with Stage("package", unit="bytes") as package:
        info = create_layer_zip_file(
            path_pyproject_toml=path_pyproject_toml,
            ignore_packages=ignore_packages,
            options=packaging_options,
            python_version=target.python_version,
            verbose=settings.verbose,
            printer=settings.printer,
        )
        settings.log(
            f"[package] {info.path.name}: {human_size(info.zipped_size)} zipped, {human_size(info.unzipped_size)} unzipped"
        )
        package.finish(
            f"{info.path.name} {human_size(info.zipped_size)} ({human_size(info.unzipped_size)} unzipped, "
            f"{info.file_count:,d} files)"
        )
    return info


class AwsGateway:
    """The :class:`~.pipeline.LayerGateway` of S3 and Lambda: each method one step of ``publish``/``record``/``claim``."""

    def __init__(self, s3_client: S3Client, lambda_client: LambdaClient, *, verbose: bool, printer: T_PRINTER) -> None:
        self.s3_client = s3_client
        self.lambda_client = lambda_client
        self.verbose = verbose
        self.printer = printer
        self.log: T_PRINTER = printer_adapter(verbose, printer, "deploy")

    def plan(self, inputs: LayerInputs) -> LayerPlan:
        return _plan(inputs, self.s3_client, self.lambda_client)

    def verify(self, plan: LayerPlan, inputs: LayerInputs) -> LayerPlan:
        return _verified(plan, inputs, self.lambda_client)

    def claim(self, inputs: LayerInputs) -> DeployClaim:
        return DeployClaim(
            s3_client=self.s3_client,
            s3path=inputs.s3_layout.s3path_deploy_claim,
            purpose=f"layer {inputs.layer_name} fingerprint {inputs.fingerprint[:12]}",
            printer=self.log,
        )

    def remove_stale_claim(self, inputs: LayerInputs) -> None:
        try:
            self.claim(inputs).remove_if_stale()
        except (LayerError, ClientError, BotoCoreError) as e:
            self.log(f"[claim] could not remove a stale claim ({e}); it is taken over by the next changed deploy")

    def check_other_records(self, inputs: LayerInputs) -> None:
        check_other_records(s3_client=self.s3_client, inputs=inputs)

    def find_adoptable(self, inputs: LayerInputs) -> PublishedVersion | None:
        return find_layer_version_by_fingerprint(
            lambda_client=self.lambda_client,
            layer_name=inputs.layer_name,
            fingerprint=inputs.fingerprint,
            trusted=functools.partial(is_our_version, s3_client=self.s3_client, inputs=inputs),
        )

    def upload(self, inputs: LayerInputs, artifact: LayerZipInfo) -> None:
        upload_zip(
            s3_client=self.s3_client,
            path_zip=artifact.path,
            s3path=inputs.s3_layout.s3path_temp_layer_zip,
            metadata={"fingerprint": inputs.fingerprint},
            verbose=self.verbose,
            printer=self.printer,
        )

    def write_intent(self, inputs: LayerInputs, code_sha256: str) -> None:
        write_publish_intent(s3_client=self.s3_client, inputs=inputs, code_sha256=code_sha256)

    def publish(self, inputs: LayerInputs, code_sha256: str) -> PublishedVersion:
        return publish_staged_zip(
            lambda_client=self.lambda_client,
            layer_name=inputs.layer_name,
            s3path_zip=inputs.s3_layout.s3path_temp_layer_zip,
            target=inputs.target,
            fingerprint=inputs.fingerprint,
            code_sha256=code_sha256,
            printer=self.log,
        )

    def record(self, inputs: LayerInputs, published: PublishedVersion, expected_etag: str | None) -> VersionFacts:
        with Stage("record") as stage:
            record = make_record(published=published, inputs=inputs)
            record_layer_version(
                s3_client=self.s3_client, inputs=inputs, record=record, expected_etag=expected_etag, printer=self.log
            )
            stage.finish(f"{inputs.s3path_last_manifest.basename} names version {record.layer_version}")
        return record.facts

    def clear_intent(self, inputs: LayerInputs) -> None:
        clear_publish_intent(s3_client=self.s3_client, inputs=inputs)

    def clear_staged(self, inputs: LayerInputs) -> None:
        clear_staged_zip(s3_client=self.s3_client, s3_layout=inputs.s3_layout)

    def sync_permissions(self, facts: VersionFacts, wanted: list[LayerPermission]) -> tuple[list[str], list[str]]:
        return sync_layer_version_permissions(
            lambda_client=self.lambda_client,
            layer_name=facts.layer_name,
            version=facts.layer_version,
            permissions=wanted,
        )

    def apply_retention(self, facts: VersionFacts, keep_last: int) -> list[int]:
        return apply_retention(
            lambda_client=self.lambda_client,
            layer_name=facts.layer_name,
            keep_last=keep_last,
            current_version=facts.layer_version,
        )

    def delete_version_records(self, inputs: LayerInputs, versions: list[int]) -> list[str]:
        return delete_version_records(s3_client=self.s3_client, s3_layout=inputs.s3_layout, versions=versions)


def deploy(
    spec: LayerSpec,
    options: DeployOptions | None = None,
    *,
    s3_client: S3Client | None = None,
    lambda_client: LambdaClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
    artifact_store: ArtifactStore | None = None,
) -> LayerDeployment:
    """Publish a new version of ``spec`` if and only if the fingerprint recorded in S3 differs; see the module
    and ``pipeline`` (the stages, composed here with S3, Lambda and the builder).

    The core's deploy: every front end builds the :class:`LayerSpec` and :class:`DeployOptions` from the
    spec's metadata and calls it. The spec is checked before any client is made (from ``region``/``endpoint_url``
    when not given).
    """
    options = DeployOptions() if options is None else options
    inputs = resolve_spec(spec, options)
    s3_client, lambda_client = resolve_clients(s3_client, lambda_client, region, endpoint_url)
    build = BuildSettings(spec.build_in, options.credentials, spec.image, spec.container_runtime, verbose, printer)
    staged: dict[str, StoredArtifact] = {}  # the store's artifact this deploy staged, by fingerprint
    gateway = AwsGateway(s3_client, lambda_client, verbose=verbose, printer=printer)
    effects = DeployEffects(
        gateway=gateway,
        # The artifact seam (pipeline.ObtainArtifact): an artifact store wraps or replaces this one callable.
        obtain_artifact=functools.partial(build_artifact, settings=build),
        log=gateway.log,
        build_folder_lock=functools.partial(_build_folder_lock, log=gateway.log),
        background=_in_background,
        describe=functools.partial(
            _describe, s3_client=s3_client, settings=build, staged=staged, store=artifact_store
        ),
        stage_artifact=None if artifact_store is None else functools.partial(
            _stage_from_store, store=artifact_store, s3_client=s3_client, settings=build, staged=staged
        ),
    )  # fmt: skip
    settings = Settings(keep_last=options.keep_last, permissions=parse_permissions(options.permissions))
    # A deploy that never builds (--from-store) needs no check of what a build could do.
    never_builds = artifact_store is not None and not artifact_store.may_build
    before_claim = (lambda: None) if never_builds else functools.partial(check_build_possible, inputs, build)
    outcome = run_deploy(inputs, settings, effects, before_claim=before_claim)
    return LayerDeployment.from_facts(
        outcome.facts, published=outcome.published, adopted=outcome.adopted, deleted_versions=outcome.deleted_versions
    )


def deploy_layer(
    *,
    layer_name: str,
    path_pyproject_toml: Path | str,
    s3dir_lambda: S3Path | str,
    tool: str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    ignore_packages: Iterable[str] | None = None,
    build_in: str = DEFAULT_BUILD_IN,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    keep_last: int | None = None,
    permissions: Iterable[str] | None = None,
    packaging_options: PackagingOptions | None = None,
    s3_client: S3Client | None = None,
    lambda_client: LambdaClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
    artifact_store: ArtifactStore | None = None,
    **more: Any,
) -> LayerDeployment:
    """:func:`deploy` with the seed's keywords (and clients made from ``region``/``endpoint_url`` when absent);
    ``more``: any other option of the spec by name, so that a field added to it needs no keyword here."""
    spec, options, problems = spec_from_kwargs(
        packaging_options, layer_name=layer_name, path_pyproject_toml=path_pyproject_toml, s3dir_lambda=s3dir_lambda,
        tool=tool, python_version=python_version, architecture=architecture, ignore_packages=ignore_packages,
        build_in=build_in, credentials=credentials, image=image, container_runtime=container_runtime,
        keep_last=keep_last, permissions=permissions, **more,
    )  # fmt: skip
    _raise_problems(spec, problems, options)
    return deploy(
        spec, options, s3_client=s3_client, lambda_client=lambda_client, region=region, endpoint_url=endpoint_url,
        verbose=verbose, printer=printer, artifact_store=artifact_store,
    )  # fmt: skip
