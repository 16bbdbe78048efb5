"""Plan and deploy: publish a layer version only when the fingerprint recorded in S3 changed.

``plan`` reads the ``last-`` record with one S3 GET while it asks Lambda, side by side,
whether the recorded version still exists; it never builds and never writes. It gathers the facts;
``decide`` (``layer/decide.py``, pure) makes the decision from them. That GET reads
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
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from s3pathlib.api import S3Path

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from ..errors import AwsError, LayerError, LayerInputError
from ..progress import Stage, forward_logs, get_logger, human_size, plural, secrets
from ..typehint import T_PRINTER
from .claim import DeployClaim
from .clients import aws_call, error_code, resolve_clients

# The decision is pure (``decide``); the names it had here stay importable from here.
from .decide import (
    Adoption,
    FirstPage,
    ListedVersion,
    is_unchanged_candidate,
    needs_code_check,
    needs_recorded_set,
    versions_with_fingerprint,
)
from .decide import LambdaFacts as LambdaFacts
from .decide import LayerPlan as LayerPlan
from .decide import LocalFacts as LocalFacts
from .decide import decide as decide
from .decide import record_mismatch as record_mismatch
from .evidence import describe_build, store_version_evidence
from .facts import VersionFacts
from .foundation import Credentials, LayerS3Layout, coerce_s3dir, coerce_tool
from .inputs import LayerInputs, LayerPermission, check_spec, parse_permissions, resolve_spec, spec_from_kwargs
from .manifest import (
    LocalManifest,
    RuntimeSet,
    compute_fingerprint,
    legacy_fingerprint_v1,
    recorded_runtime_set,
)
from .package import LayerZipInfo, PackagingOptions, package_layer
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
    intended_code_sha256,
    is_our_version,
    make_record,
    publish_staged_zip,
    record_layer_version,
    recorded_code_sha256,
    sync_layer_version_permissions,
    write_publish_intent,
)
from .record import FetchedRecord, LayerRecord, RecordConflict, fetch_record, fetch_record_body
from .spec import DeployOptions, LayerSpec
from .store import ArtifactStore, StoredArtifact, obtain_from_store
from .target import LayerTarget
from .upload import upload_zip

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

_T = TypeVar("_T")

#: The names these had before they moved to ``decide`` (tests and callers import them from here).
_Listed = ListedVersion
_FirstPage = FirstPage


def _in_background(fn: Callable[[], _T]) -> Future[_T]:
    """Run one call on a thread of its own, in a copy of this context (its stage, its front end's forwarding).

    A plan overlaps its two reads (S3's record, Lambda's listing) and waits for both at most
    ``aws_deadline_seconds``: with S3 and Lambda 10 ms away the overlap makes a no-op plan cost 1.2 round
    trips instead of 2 (``benchmarks/bench_plan.py``). A new thread costs a few tens of microseconds
    against a round trip of milliseconds, so there is no pool to keep. Not ``ThreadPoolExecutor``: its
    threads are joined when the interpreter exits, so a plan that gave up on an endpoint that accepts
    connections but never answers would keep the process alive until botocore's own read timeouts (three
    attempts of 60 s); this thread is a daemon and leaves with the process.
    """
    future: Future[_T] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(fn))
        except Exception as e:  # noqa: BLE001 - handed to the waiting caller through the future
            future.set_exception(e)

    threading.Thread(target=run, name="alab-read", daemon=True).start()
    return future


def aws_deadline_seconds() -> float:
    """How long a plan waits for S3 and Lambda in all (``ALAB_AWS_DEADLINE_SECONDS``, default 120)."""
    try:
        return max(float(os.environ.get("ALAB_AWS_DEADLINE_SECONDS", "120")), 0.1)
    except ValueError:
        return 120.0


def _first_page_of_versions(lambda_client: LambdaClient, layer_name: str) -> FirstPage:
    with aws_call(
        "lambda:ListLayerVersions", f"layer_name {layer_name!r}: could not read the layer's versions from Lambda"
    ):
        try:
            response = lambda_client.list_layer_versions(LayerName=layer_name)
        except ClientError as e:
            if error_code(e) == "ResourceNotFoundException":
                return FirstPage(versions=frozenset(), truncated=False)
            raise
    listed = tuple(
        ListedVersion(
            version=int(v["Version"]),
            layer_version_arn=v.get("LayerVersionArn", ""),
            description=v.get("Description", ""),
        )
        for v in response.get("LayerVersions", [])
    )
    return FirstPage(
        versions=frozenset(v.version for v in listed), truncated=bool(response.get("NextMarker")), listed=listed
    )


def _lambda_version(
    lambda_client: LambdaClient, layer_name: str, version: int, page: FirstPage
) -> ListedVersion | None:
    """The recorded version as Lambda has it: from the page fetched alongside the record, else asked once."""
    for item in page.listed:
        if item.version == version:
            return item
    if version in page.versions:  # a page built without the listed items
        return ListedVersion(version=version, layer_version_arn="", description="")
    if not page.truncated or version > max(page.versions, default=0):
        return None
    found = get_layer_version(lambda_client=lambda_client, layer_name=layer_name, version=version)
    if found is None:
        return None
    return ListedVersion(
        version=version,
        layer_version_arn=found.layer_version_arn,
        description=found.description,
        code_sha256=found.code_sha256,
    )


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
    page: Future[FirstPage]
    #: Where the requests went, for the message when they get no answer.
    endpoint: str = ""

    def results(self) -> tuple[FetchedRecord, FirstPage]:
        both: list[Future[Any]] = [self.record, self.page]
        deadline = aws_deadline_seconds()
        _, pending = wait(both, timeout=deadline)
        if pending:
            which = " and ".join(name for name, f in (("S3", self.record), ("Lambda", self.page)) if f in pending)
            raise AwsError(
                f"layer_name {self.layer_name!r}: no answer from {which} at {self.endpoint} within {deadline:.0f}s "
                f"(an endpoint that accepts connections but never answers?)",
                operation="s3:GetObject, lambda:ListLayerVersions",
                fix="check the endpoint and the network, or set ALAB_AWS_DEADLINE_SECONDS to wait longer",
            )
        # Each read maps its own AWS failures (``clients.aws_call``): what they raise is an AwsError.
        return self.record.result(), self.page.result()


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
    fetched, lambda_facts, local = _gather(inputs, fetched, listed, s3_client, lambda_client)
    return decide(fetched, lambda_facts, local)


def _recorded_in_lambda(
    record: LayerRecord, listed: FirstPage, lambda_client: LambdaClient, layer_name: str
) -> ListedVersion | None:
    """The recorded version as Lambda has it; fetched on its own (for its CodeSha256) when two listed versions
    carry the recorded fingerprint: one of them copied the other's description (``decide.needs_code_check``)."""
    recorded = _lambda_version(lambda_client, layer_name, record.layer_version, listed)
    if recorded is None or recorded.code_sha256 is not None or not needs_code_check(record, listed):
        return recorded
    found = get_layer_version(lambda_client=lambda_client, layer_name=layer_name, version=record.layer_version)
    if found is None:
        return None
    return dataclasses.replace(recorded, code_sha256=found.code_sha256)


def _adoption(inputs: LayerInputs, listed: FirstPage, s3_client: S3Client) -> Adoption | None:
    """The listed version with the local fingerprint a deploy would adopt (newest first), or refuse.

    A deploy adopts only code a run of ours recorded (``publish.is_our_version``); the plan asks S3 the
    same (the version's manifest, then the publish intent), comparing with the CodeSha256 the version's
    description carries. Read only on a changed plan, and only when such a version is listed.
    """
    candidates = versions_with_fingerprint(listed, inputs.fingerprint)
    intended: list[str | None] = []  # read once, at the first candidate the versioned manifest does not vouch for
    for version, described in candidates:
        if recorded_code_sha256(s3_client, inputs, version) == described:
            return Adoption(version=version, ours=True)
        if not intended:
            intended.append(intended_code_sha256(s3_client, inputs))
        if intended[0] == described:
            return Adoption(version=version, ours=True)
    return Adoption(version=candidates[0][0], ours=False) if candidates else None


def _gather(
    inputs: LayerInputs, fetched: FetchedRecord, listed: FirstPage, s3_client: S3Client, lambda_client: LambdaClient
) -> tuple[FetchedRecord, LambdaFacts, LocalFacts]:
    """The effects of a plan beyond its two reads, each only when the decision needs it: one more Lambda
    request when the listing is truncated or shows a copied description, the recorded manifest's body,
    and whether a run of ours vouches for a listed version carrying the local fingerprint."""
    record = fetched.record
    recorded = None if record is None else _recorded_in_lambda(record, listed, lambda_client, inputs.layer_name)
    lambda_facts = LambdaFacts(listed=listed, recorded=recorded)
    if not is_unchanged_candidate(record, recorded, inputs.fingerprint):
        lambda_facts = dataclasses.replace(lambda_facts, adoption=_adoption(inputs, listed, s3_client))
    local = LocalFacts(
        layer_name=inputs.layer_name,
        fingerprint=inputs.fingerprint,
        dependencies=inputs.manifest.dependencies,
        python_version=inputs.target.python_version,
        architecture=inputs.target.architecture,
        s3uri_record=inputs.s3path_last_manifest.uri,
    )
    if record is not None and needs_recorded_set(record, lambda_facts, inputs.fingerprint):
        fetched = fetch_record_body(fetched, s3_client=s3_client)
        record = fetched.record
        assert record is not None, "reading the body keeps the record"
        old_set = _recorded_set(record, inputs)
        local = dataclasses.replace(
            local,
            recorded_dependencies=old_set.dependencies if old_set is not None else None,
            same_set_of_older_format=_is_same_set_of_older_format(record, inputs, old_set),
        )
    return fetched, lambda_facts, local


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
def _build_folder_lock(inputs: LayerInputs) -> Iterator[None]:
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
            get_logger("build").info("[build] waiting for another deploy that builds in %s", dir_build)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """How ``build_artifact`` builds: where, with which image and index login."""

    build_in: str = DEFAULT_BUILD_IN
    credentials: Credentials | None = None
    image: str | None = None
    container_runtime: str | None = None


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
        image=settings.image, container_runtime=settings.container_runtime,
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
        build_lock=functools.partial(_build_folder_lock, inputs),
        describe=describe_for_store(inputs, settings),
    )
    staged[inputs.fingerprint] = artifact
    claim.ensure_held()
    metadata = {"fingerprint": inputs.fingerprint}
    s3path = inputs.s3_layout.s3path_temp_layer_zip
    store.stage(artifact, s3_client=s3_client, s3path=s3path, metadata=metadata)
    return artifact.code_sha256


def store_artifact(
    spec: LayerSpec,
    options: DeployOptions | None = None,
    *,
    store: ArtifactStore,
) -> StoredArtifact:
    """The core's push (``alab layer push``): ``spec``'s artifact in ``store``, built (once across runners)
    and stored unless its fingerprint is there; never publishes. Only ``options.credentials`` is used."""
    options = DeployOptions() if options is None else options
    inputs = resolve_spec(spec, options)
    settings = BuildSettings(spec.build_in, options.credentials, spec.image, spec.container_runtime)
    password = options.credentials.password if options.credentials else None
    with secrets(password):
        return obtain_from_store(
            store,
            inputs.fingerprint,
            build=functools.partial(build_artifact, inputs, settings),
            build_lock=functools.partial(_build_folder_lock, inputs),
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

    log = get_logger("build")
    log.info(
        "[build] installing %s for %s %s (%s)", manifest.name, target.runtime, target.architecture, settings.build_in
    )
    # The seed's build functions, without their verbose/printer: they log, and the caller forwards.
    common: dict[str, Any] = dict(
        tool=tool,
        path_pyproject_toml=path_pyproject_toml,
        python_version=target.python_version,
        architecture=target.architecture,
        credentials=settings.credentials,
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
        log.info("[build] done in %.1fs", install.elapsed)
        install.finish(
            f"{plural(install.total or 0, 'package')} for {target.runtime} {target.architecture} ({settings.build_in})"
        )
    with Stage("package", unit="bytes") as package:
        info = package_layer(
            path_pyproject_toml=path_pyproject_toml,
            ignore_packages=ignore_packages,
            options=packaging_options,
            python_version=target.python_version,
        )
        get_logger("package").info(
            "[package] %s: %s zipped, %s unzipped", info.path.name, human_size(info.zipped_size),
            human_size(info.unzipped_size),
        )  # fmt: skip
        package.finish(
            f"{info.path.name} {human_size(info.zipped_size)} ({human_size(info.unzipped_size)} unzipped, "
            f"{info.file_count:,d} files)"
        )
    return info


class AwsGateway:
    """The :class:`~.pipeline.LayerGateway` of S3 and Lambda: each method one step of ``publish``/``record``/``claim``."""

    def __init__(self, s3_client: S3Client, lambda_client: LambdaClient) -> None:
        self.s3_client = s3_client
        self.lambda_client = lambda_client

    def plan(self, inputs: LayerInputs) -> LayerPlan:
        return _plan(inputs, self.s3_client, self.lambda_client)

    def verify(self, plan: LayerPlan, inputs: LayerInputs) -> LayerPlan:
        return _verified(plan, inputs, self.lambda_client)

    def claim(self, inputs: LayerInputs) -> DeployClaim:
        return DeployClaim(
            s3_client=self.s3_client,
            s3path=inputs.s3_layout.s3path_deploy_claim,
            purpose=f"layer {inputs.layer_name} fingerprint {inputs.fingerprint[:12]}",
        )

    def remove_stale_claim(self, inputs: LayerInputs) -> None:
        try:
            self.claim(inputs).remove_if_stale()
        except (LayerError, ClientError, BotoCoreError) as e:
            get_logger("claim").info(
                "[claim] could not remove a stale claim (%s); it is taken over by the next changed deploy", e
            )

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
        )

    def record(self, inputs: LayerInputs, published: PublishedVersion, expected_etag: str | None) -> VersionFacts:
        with Stage("record", total=2) as stage:  # the versioned manifest, then the last- record
            record = make_record(published=published, inputs=inputs)
            record_layer_version(s3_client=self.s3_client, inputs=inputs, record=record, expected_etag=expected_etag)
            stage.finish(f"version {record.layer_version} recorded in S3 as the current one")
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
    artifact_store: ArtifactStore | None = None,
) -> LayerDeployment:
    """Publish a new version of ``spec`` if and only if the fingerprint recorded in S3 differs; see the module
    and ``pipeline`` (the stages, composed here with S3, Lambda and the builder).

    The core's deploy: every front end builds the :class:`LayerSpec` and :class:`DeployOptions` from the
    spec's metadata and calls it. The spec is checked before any client is made (from ``region``/``endpoint_url``
    when not given). It reports through ``Stage`` events and the stages' loggers (the index password masked
    in every line, ``progress.secrets``); the seed's ``verbose``/``printer`` are its callers' (``forward_logs``).
    """
    options = DeployOptions() if options is None else options
    inputs = resolve_spec(spec, options)
    s3_client, lambda_client = resolve_clients(s3_client, lambda_client, region, endpoint_url)
    password = options.credentials.password if options.credentials else None
    with secrets(password):
        return _deploy(inputs, spec, options, s3_client, lambda_client, artifact_store)


def _deploy(
    inputs: LayerInputs,
    spec: LayerSpec,
    options: DeployOptions,
    s3_client: S3Client,
    lambda_client: LambdaClient,
    artifact_store: ArtifactStore | None,
) -> LayerDeployment:
    """:func:`deploy` once its spec is checked and its clients made: the pipeline with the real effects."""
    build = BuildSettings(spec.build_in, options.credentials, spec.image, spec.container_runtime)
    staged: dict[str, StoredArtifact] = {}  # the store's artifact this deploy staged, by fingerprint
    effects = DeployEffects(
        gateway=AwsGateway(s3_client, lambda_client),
        # The artifact seam (pipeline.ObtainArtifact): an artifact store wraps or replaces this one callable.
        obtain_artifact=functools.partial(build_artifact, settings=build),
        build_folder_lock=_build_folder_lock,
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
    ``more``: any other option of the spec by name, so that a field added to it needs no keyword here.
    ``verbose``/``printer``: the seed's, as ``progress.forward_logs`` takes them."""
    spec, options, problems = spec_from_kwargs(
        packaging_options, layer_name=layer_name, path_pyproject_toml=path_pyproject_toml, s3dir_lambda=s3dir_lambda,
        tool=tool, python_version=python_version, architecture=architecture, ignore_packages=ignore_packages,
        build_in=build_in, credentials=credentials, image=image, container_runtime=container_runtime,
        keep_last=keep_last, permissions=permissions, **more,
    )  # fmt: skip
    _raise_problems(spec, problems, options)
    with forward_logs(verbose, printer):
        return deploy(
            spec, options, s3_client=s3_client, lambda_client=lambda_client, region=region, endpoint_url=endpoint_url,
            artifact_store=artifact_store,
        )  # fmt: skip
