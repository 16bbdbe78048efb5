"""Publish stage: the staged zip becomes a Lambda layer version, verified, then recorded in S3.

Every version this tool publishes says so in its description, together with the fingerprint
and the CodeSha256 of the zip it was meant to contain:

    aws-lambda-artifact-builder fingerprint=<sha256 hex> code-sha256=<base64>

That line is what makes crash recovery and retention safe: a run that died after publishing
but before recording is finished by the next run, which finds the version by fingerprint
(and only if Lambda's CodeSha256 equals the described one and the one a run of ours recorded in
S3 before publishing, ``layer/intent-<fingerprint>.json``, or in the version's manifest: anyone
allowed to publish can write a description); retention deletes only versions carrying it.
``PublishLayerVersion`` and ``AddLayerVersionPermission`` are never resent by botocore: after a
failed publish the version is looked up by fingerprint and code instead.

``publish_layer_version`` is the stand-alone publisher (publish what is staged, verify,
record); ``deploy_layer`` in the workflow decides whether to call these steps at all.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from s3pathlib.api import S3Path

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from ..errors import AwsError, LayerError, LayerInputError, aws_error, aws_fix
from ..progress import advance_current, forward_logs, get_logger
from ..typehint import T_PRINTER
from .clients import (
    aws_call,
    error_code,
    http_status,
    is_missing_key,
    make_clients,
    resolve_clients,
    without_automatic_retries,
)

# Re-exported: they lived here before ``facts`` (pure) held them for ``decide`` and ``pipeline``.
from .facts import DESCRIPTION_PREFIX as DESCRIPTION_PREFIX
from .facts import HasVersionFacts, VersionFacts
from .facts import PublishedVersion as PublishedVersion
from .facts import layer_description as layer_description
from .facts import parse_layer_description as parse_layer_description
from .foundation import LayerS3Layout
from .inputs import STATEMENT_PREFIX, LayerInputs, LayerPermission, resolve_layer_inputs
from .package import PackagingOptions
from .record import (
    FetchedRecord,
    LayerRecord,
    RecordConflict,
    fetch_record,
    write_last_record,
    write_versioned_manifest,
)
from .target import LayerTarget

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client


def file_code_sha256(path: Path) -> tuple[str, int]:
    """Base64 sha256 of a file (the form Lambda reports as ``CodeSha256``) and its size."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return base64.b64encode(digest.digest()).decode("ascii"), size


@dataclasses.dataclass(frozen=True)
class LayerDeployment(HasVersionFacts):
    """The layer version a deploy (or a stand-alone publish) ended on: its facts, and what the run did.
    The facts read as the deployment's own attributes (``deployment.layer_version_arn``)."""

    facts: VersionFacts
    #: True when this run published a new version; False when it found one (no change, or adopted).
    published: bool
    #: True when an existing version with this fingerprint was recorded instead of publishing again.
    adopted: bool = False
    #: Versions deleted by ``keep_last`` retention in this run.
    deleted_versions: tuple[int, ...] = ()

    @classmethod
    def from_facts(
        cls, facts: VersionFacts, *, published: bool, adopted: bool = False, deleted_versions: Iterable[int] = ()
    ) -> LayerDeployment:
        return cls(facts, published=published, adopted=adopted, deleted_versions=tuple(deleted_versions))

    @property
    def s3path_manifest(self) -> S3Path:
        return S3Path(self.facts.s3uri_manifest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "published": self.published,
            **self.facts.to_dict(),
            "adopted": self.adopted,
            "deleted_versions": list(self.deleted_versions),
        }


def _published(layer_name: str, response: Any) -> PublishedVersion:
    content = response.get("Content", {})
    return PublishedVersion(
        layer_name=layer_name,
        version=int(response["Version"]),
        layer_version_arn=response["LayerVersionArn"],
        layer_arn=response.get("LayerArn") or response["LayerVersionArn"].rsplit(":", 1)[0],
        code_sha256=content.get("CodeSha256", ""),
        code_size=int(content.get("CodeSize", 0)),
        description=response.get("Description", ""),
    )


def get_layer_version(*, lambda_client: LambdaClient, layer_name: str, version: int) -> PublishedVersion | None:
    """The version, or ``None`` when Lambda no longer has it."""
    with _reading_versions("lambda:GetLayerVersion", layer_name):
        try:
            response = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=version)
        except ClientError as e:
            if error_code(e) == "ResourceNotFoundException":
                return None
            raise
    return _published(layer_name, response)


def _reading_versions(operation: str, layer_name: str) -> contextlib.AbstractContextManager[None]:
    return aws_call(operation, f"layer_name {layer_name!r}: could not read the layer's versions from Lambda")


def list_layer_versions(*, lambda_client: LambdaClient, layer_name: str) -> list[tuple[int, str]]:
    """``(version, description)`` of every version of the layer, newest first."""
    found: list[tuple[int, str]] = []
    paginator = lambda_client.get_paginator("list_layer_versions")
    with _reading_versions("lambda:ListLayerVersions", layer_name):
        try:
            for page in paginator.paginate(LayerName=layer_name):
                found += [(int(v["Version"]), v.get("Description", "")) for v in page.get("LayerVersions", [])]
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
    return sorted(found, reverse=True)


def find_layer_version_by_fingerprint(
    *,
    lambda_client: LambdaClient,
    layer_name: str,
    fingerprint: str,
    trusted: Callable[[PublishedVersion], bool],
) -> PublishedVersion | None:
    """The newest version with this fingerprint whose code is the described code and ``trusted``.

    The description alone proves nothing: anyone allowed to publish a version of the layer can
    write it. ``trusted`` decides from Lambda's own CodeSha256 (a zip this run built, the intent
    a run recorded in S3 before publishing, or the versioned manifest of that version).
    """
    for version, description in list_layer_versions(lambda_client=lambda_client, layer_name=layer_name):
        parsed = parse_layer_description(description)
        if parsed is None or parsed[0] != fingerprint:
            continue
        found = get_layer_version(lambda_client=lambda_client, layer_name=layer_name, version=version)
        if found is not None and found.code_sha256 == parsed[1] and trusted(found):
            return found
    return None


def delete_layer_versions(
    *, layer_name: str, versions: Iterable[int], lambda_client: LambdaClient | None = None
) -> list[int]:
    """Delete layer versions; returns those that existed and were deleted (missing ones are skipped)."""
    if lambda_client is None:
        _, lambda_client = make_clients()
    deleted = []
    for version in versions:
        if get_layer_version(lambda_client=lambda_client, layer_name=layer_name, version=version) is None:
            continue
        with aws_call("lambda:DeleteLayerVersion", f"layer_name {layer_name!r}: could not delete version {version}"):
            lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=version)
        deleted.append(version)
    return deleted


def versions_beyond_retention(
    versions: Iterable[tuple[int, str]], *, keep_last: int, current_version: int
) -> list[int]:
    """This tool's versions older than the current one, beyond the newest ``keep_last`` (current included)."""
    ours = sorted((v for v, d in versions if parse_layer_description(d) and v < current_version), reverse=True)
    return ours[max(keep_last - 1, 0) :]


def apply_retention(*, lambda_client: LambdaClient, layer_name: str, keep_last: int, current_version: int) -> list[int]:
    versions = list_layer_versions(lambda_client=lambda_client, layer_name=layer_name)
    doomed = versions_beyond_retention(versions, keep_last=keep_last, current_version=current_version)
    return delete_layer_versions(layer_name=layer_name, versions=doomed, lambda_client=lambda_client)


def delete_version_records(*, s3_client: S3Client, s3_layout: LayerS3Layout, versions: Iterable[int]) -> list[str]:
    """Delete the S3 records (``layer/NNNNNN/…``) of versions retention deleted; returns their keys.

    A record of a version Lambda no longer has would only mislead whoever reads the history (and grow the
    bucket forever); the ``last-`` record never names one, as retention keeps the current version.
    """
    deleted: list[str] = []
    for version in versions:
        s3dir = s3_layout.get_s3dir_layer_version(version)
        with aws_call("s3:DeleteObject", f"delete the record of deleted version {version}", s3path=s3dir):
            listed = s3_client.list_objects_v2(Bucket=s3dir.bucket, Prefix=s3dir.key)
            for key in sorted(obj["Key"] for obj in listed.get("Contents", [])):
                s3_client.delete_object(Bucket=s3dir.bucket, Key=key)
                deleted.append(key)
    return deleted


def clear_staged_zip(*, s3_client: S3Client, s3_layout: LayerS3Layout) -> None:
    """Once published and recorded, Lambda holds its own copy of the code: the staging zip (up to 250 MB
    of storage per layer) can go (best effort; the next publish overwrites it anyway)."""
    s3path = s3_layout.s3path_temp_layer_zip
    with contextlib.suppress(ClientError, BotoCoreError):
        s3_client.delete_object(Bucket=s3path.bucket, Key=s3path.key)


# ---------------------------------------------------------------------------- permissions
def _statement_ids(lambda_client: LambdaClient, layer_name: str, version: int) -> set[str]:
    try:
        policy = json.loads(
            lambda_client.get_layer_version_policy(LayerName=layer_name, VersionNumber=version)["Policy"]
        )
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise
        return set()
    return {s.get("Sid", "") for s in policy.get("Statement", [])}


def _granted(lambda_client: LambdaClient, layer_name: str, version: int, sid: str) -> bool:
    """After a failed grant (never retried automatically): did it take effect anyway?"""
    try:
        return sid in _statement_ids(lambda_client, layer_name, version)
    except (ClientError, BotoCoreError):
        return False


def sync_layer_version_permissions(
    *, lambda_client: LambdaClient, layer_name: str, version: int, permissions: list[LayerPermission]
) -> tuple[list[str], list[str]]:
    """Make this tool's grants on one version exactly ``permissions``; returns (added, removed) ids.

    An AWS failure is an :class:`AwsError` naming the layer, the operation and the fix, never botocore's.
    """
    with aws_call(
        "lambda:AddLayerVersionPermission/RemoveLayerVersionPermission/GetLayerVersionPolicy",
        f"layer_name {layer_name!r}: could not set the permissions of version {version}",
    ):
        return _sync_permissions(lambda_client, layer_name, version, permissions)


def _sync_permissions(
    lambda_client: LambdaClient, layer_name: str, version: int, permissions: list[LayerPermission]
) -> tuple[list[str], list[str]]:
    existing = _statement_ids(lambda_client, layer_name, version)
    wanted = {p.statement_id: p for p in permissions}
    added = []
    for sid, perm in sorted(wanted.items()):
        if sid in existing:
            continue
        kwargs: dict[str, Any] = {"Principal": perm.principal}
        if perm.organization_id:
            kwargs["OrganizationId"] = perm.organization_id
        try:
            without_automatic_retries(lambda_client).add_layer_version_permission(
                LayerName=layer_name,
                VersionNumber=version,
                StatementId=sid,
                Action="lambda:GetLayerVersion",
                **kwargs,
            )
        except ClientError as e:
            # Conflict: granted meanwhile by a concurrent run. A lost response: the grant may exist.
            if error_code(e) != "ResourceConflictException" and not _granted(lambda_client, layer_name, version, sid):
                raise
        except BotoCoreError:
            if not _granted(lambda_client, layer_name, version, sid):
                raise
        added.append(sid)
    removed = sorted(sid for sid in existing if sid.startswith(STATEMENT_PREFIX) and sid not in wanted)
    for sid in removed:
        lambda_client.remove_layer_version_permission(LayerName=layer_name, VersionNumber=version, StatementId=sid)
    return added, removed


# ---------------------------------------------------------------------------- publish + record
def publish_staged_zip(
    *,
    lambda_client: LambdaClient,
    layer_name: str,
    s3path_zip: S3Path,
    target: LayerTarget,
    fingerprint: str,
    code_sha256: str,
) -> PublishedVersion:
    """Publish the staged zip; a CodeSha256 other than the local zip's deletes the version and raises."""
    log = get_logger("publish")
    log.info(
        "[publish] publishing layer %s for %s %s from %s",
        layer_name,
        target.runtime,
        target.architecture,
        s3path_zip.uri,
    )
    try:
        response = without_automatic_retries(lambda_client).publish_layer_version(
            LayerName=layer_name,
            Description=layer_description(fingerprint=fingerprint, code_sha256=code_sha256),
            Content={"S3Bucket": s3path_zip.bucket, "S3Key": s3path_zip.key},
            CompatibleRuntimes=[target.runtime],  # type: ignore[list-item]
            CompatibleArchitectures=[target.architecture],  # type: ignore[list-item]
        )
    except (ClientError, BotoCoreError) as e:
        found = _published_despite(e, lambda_client, layer_name, fingerprint, code_sha256)
        if found is None and aws_fix(e, action="lambda:PublishLayerVersion"):  # refused, expired: name the fix
            action = "lambda:PublishLayerVersion"
            raise aws_error(
                e, operation=action, what=f"could not publish layer {layer_name}", resource=f"layer {layer_name}"
            ) from None
        if found is None:
            raise _publish_error(e, layer_name, s3path_zip) from None
        log.info("[publish] the publish call failed (%s), but Lambda has version %s with this code", e, found.version)
        log.info("[publish] published %s", found.layer_version_arn)
        return found
    published = _published(layer_name, response)
    if published.code_sha256 != code_sha256:
        with aws_call("lambda:DeleteLayerVersion", f"layer {layer_name}: could not delete version {published.version}"):
            lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=published.version)
        raise AwsError(
            f"layer {layer_name} version {published.version} has CodeSha256 {published.code_sha256!r}, but the "
            f"local zip has {code_sha256!r}: the staging object {s3path_zip.uri} was replaced or is missing. "
            f"The version was deleted and nothing was recorded",
            operation="lambda:PublishLayerVersion",
            fix="rerun the deploy",
        )
    log.info("[publish] published %s", published.layer_version_arn)
    return published


def _publish_error(error: ClientError | BotoCoreError, layer_name: str, s3path_zip: S3Path) -> AwsError:
    """A publish that failed and created nothing: botocore's reason (or the fix), and why it is not resent."""
    mapped = aws_error(
        error,
        operation="lambda:PublishLayerVersion",
        what=f"publishing layer {layer_name} from {s3path_zip.uri} failed",
    )
    return AwsError(
        f"{mapped}. It is not sent again automatically (that could publish twice); a rerun adopts the version "
        f"if Lambda created it",
        operation=mapped.operation,
    )


def _published_despite(
    error: ClientError | BotoCoreError, lambda_client: LambdaClient, layer_name: str, fingerprint: str, code_sha256: str
) -> PublishedVersion | None:
    """After a failed publish: the version it may have created anyway (lost response, timeout, 5xx).

    A 4xx answer means Lambda refused the call, so nothing was created and nothing is looked up.
    """
    if isinstance(error, ClientError) and 400 <= http_status(error) < 500 and http_status(error) != 429:
        return None
    try:
        return find_layer_version_by_fingerprint(
            lambda_client=lambda_client,
            layer_name=layer_name,
            fingerprint=fingerprint,
            trusted=lambda v: v.code_sha256 == code_sha256,
        )
    except (ClientError, BotoCoreError):
        return None


# ---------------------------------------------------------------------------- intent (crash recovery)
def _intent_s3path(inputs: LayerInputs) -> S3Path:
    return inputs.s3_layout.get_s3path_publish_intent(inputs.fingerprint)


def write_publish_intent(*, s3_client: S3Client, inputs: LayerInputs, code_sha256: str) -> None:
    """Before publishing: record in S3 which code this fingerprint is about to be published with.

    A run that dies after publishing leaves it behind; the next run adopts a version only when
    Lambda's CodeSha256 equals it (or the version's own record), never on the description alone.
    """
    s3path = _intent_s3path(inputs)
    body = {"layer_name": inputs.layer_name, "fingerprint": inputs.fingerprint, "code_sha256": code_sha256}
    with aws_call("s3:PutObject", "record the code about to be published", s3path=s3path):
        s3_client.put_object(
            Bucket=s3path.bucket, Key=s3path.key, Body=json.dumps(body).encode("utf-8"), ContentType="application/json"
        )


def clear_publish_intent(*, s3_client: S3Client, inputs: LayerInputs) -> None:
    """Once recorded, the versioned manifest vouches for the version; the intent can go (best effort)."""
    s3path = _intent_s3path(inputs)
    with contextlib.suppress(ClientError, BotoCoreError):
        s3_client.delete_object(Bucket=s3path.bucket, Key=s3path.key)


def intended_code_sha256(s3_client: S3Client, inputs: LayerInputs) -> str | None:
    s3path = _intent_s3path(inputs)
    with aws_call("s3:GetObject", "read the code about to be published", s3path=s3path):
        try:
            data = s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key)["Body"].read()
        except ClientError as e:
            if is_missing_key(e):
                return None
            raise
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("fingerprint") != inputs.fingerprint:
        return None
    sha = raw.get("code_sha256")
    return sha if isinstance(sha, str) else None


def recorded_code_sha256(s3_client: S3Client, inputs: LayerInputs, version: int) -> str | None:
    s3path = S3Path(inputs.s3uri_manifest_for(version))
    with aws_call("s3:GetObject", "read the versioned manifest", s3path=s3path):
        try:
            meta = s3_client.head_object(Bucket=s3path.bucket, Key=s3path.key).get("Metadata", {})
        except ClientError as e:
            if is_missing_key(e):
                return None
            raise
    if (meta.get("layer-name"), meta.get("layer-version"), meta.get("fingerprint")) != (
        inputs.layer_name,
        str(version),
        inputs.fingerprint,
    ):
        return None
    return meta.get("code-sha256")


def is_our_version(version: PublishedVersion, *, s3_client: S3Client, inputs: LayerInputs) -> bool:
    """Lambda's CodeSha256 of a version is the one a run of ours recorded (intent or versioned manifest)."""
    return version.code_sha256 in (
        intended_code_sha256(s3_client, inputs),
        recorded_code_sha256(s3_client, inputs, version.version),
    )


def make_record(*, published: PublishedVersion, inputs: LayerInputs) -> LayerRecord:
    """The record of a version this deploy published or adopted, for the local inputs."""
    facts = VersionFacts(
        layer_name=published.layer_name,
        layer_version=published.version,
        layer_version_arn=published.layer_version_arn,
        layer_arn=published.layer_arn,
        fingerprint=inputs.fingerprint,
        code_sha256=published.code_sha256,
        code_size=published.code_size,
        s3uri_manifest=inputs.s3uri_manifest_for(published.version),
    )
    target = inputs.target
    return LayerRecord.from_facts(
        facts, tool=inputs.tool.value, python_version=target.python_version, architecture=target.architecture,
        version_exists=True,
    )  # fmt: skip


def record_layer_version(
    *,
    s3_client: S3Client,
    inputs: LayerInputs,
    record: LayerRecord,
    expected_etag: str | None,
) -> None:
    """Write the versioned manifest, then move ``last-`` to it with a conditional write.

    A conflict means another run recorded in between: it is re-read, and ``last-`` is only
    moved if it does not already name a newer version, so it always ends on the newest. Each of the
    two writes advances the running ``record`` stage by one (what a test that kills a deploy between
    them observes).
    """
    log = get_logger("record")
    s3path_versioned = S3Path(record.s3uri_manifest)
    text = inputs.manifest_text
    write_versioned_manifest(s3_client=s3_client, s3path=s3path_versioned, record=record, body=text)
    log.info("[record] wrote %s", s3path_versioned.uri)
    advance_current()
    s3path_last = inputs.s3path_last_manifest
    etag = expected_etag
    for _ in range(10):
        try:
            write_last_record(s3_client=s3_client, s3path=s3path_last, record=record, body=text, expected_etag=etag)
            log.info("[record] %s now records version %s", s3path_last.uri, record.layer_version)
            advance_current()
            return
        except RecordConflict:
            fetched = _fetch_own_record(s3_client, inputs)
            current = fetched.record
            if current is not None and current.layer_version > record.layer_version:
                log.info("[record] %s already records the newer version %s", s3path_last.uri, current.layer_version)
                advance_current()
                return
            etag = fetched.etag
    raise AwsError(
        f"could not record version {record.layer_version} in {s3path_last.uri}: too many concurrent writers",
        operation="s3:PutObject",
        fix="rerun the deploy",
    )


def check_record_owner(fetched: FetchedRecord, *, layer_name: str, s3dir_lambda: S3Path) -> None:
    """Two layers must never share one record: that would make each one's plan flip the other's."""
    record = fetched.record
    if record is not None and record.layer_name != layer_name:
        raise _shared_record(s3dir_lambda, record.layer_name, layer_name, "")


def _shared_record(s3dir_lambda: S3Path, other: str, layer_name: str, where: str) -> LayerInputError:
    return LayerInputError(
        [
            (
                "s3dir_lambda",
                f"s3dir_lambda {s3dir_lambda.uri} already records layer {other!r}{where}, not {layer_name!r}: two "
                f"layers must not share one record; give layer {layer_name!r} its own s3dir_lambda",
            )
        ]
    )


def _fetch_own_record(s3_client: S3Client, inputs: LayerInputs) -> FetchedRecord:
    """The facts of ``last-`` (owner and ETag, no body), refused when another layer owns it."""
    fetched = fetch_record(
        s3_client=s3_client,
        s3path=inputs.s3path_last_manifest,
        s3uri_manifest_for=inputs.s3uri_manifest_for,
        body=False,
    )
    check_record_owner(fetched, layer_name=inputs.layer_name, s3dir_lambda=inputs.s3_layout.s3dir_lambda)
    return fetched


def check_other_records(*, s3_client: S3Client, inputs: LayerInputs) -> None:
    """The records of the other tools in the same ``s3dir_lambda`` must name this layer too.

    A plan reads only its own tool's record (one request); before publishing, a deploy also
    makes sure no other layer records into this folder through another tool's manifest.
    """
    for tool in LayerBuildToolEnum:
        if tool is inputs.tool:
            continue
        s3path = inputs.s3_layout.get_s3path_last_manifest(tool.manifest_name)
        with aws_call("s3:GetObject", "read the other tools' records", s3path=s3path):
            try:
                metadata = s3_client.head_object(Bucket=s3path.bucket, Key=s3path.key).get("Metadata", {})
            except ClientError as e:
                if is_missing_key(e):
                    continue
                raise
        other = metadata.get("layer-name")
        if other and other != inputs.layer_name:
            raise _shared_record(inputs.s3_layout.s3dir_lambda, other, inputs.layer_name, f" (in {s3path.uri})")


def publish_layer_version(
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
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> LayerDeployment:
    """Publish the zip staged by ``upload_layer_zip_to_s3``, verify it, and record it in S3.

    Publishes unconditionally and takes no claim: ``deploy_layer`` is the entry point that
    publishes only on a change and is safe under concurrency; this is its publishing step
    for callers who run build, package and upload themselves. The arguments must be those
    the zip was built with: they make the fingerprint that is recorded. ``verbose``/``printer``: the
    seed's, as ``progress.forward_logs`` takes them.
    """
    with forward_logs(verbose, printer):
        return _publish_and_record(
            layer_name=layer_name, path_pyproject_toml=path_pyproject_toml, s3dir_lambda=s3dir_lambda, tool=tool,
            python_version=python_version, architecture=architecture, ignore_packages=ignore_packages,
            packaging_options=packaging_options, s3_client=s3_client, lambda_client=lambda_client, region=region,
            endpoint_url=endpoint_url,
        )  # fmt: skip


def _publish_and_record(
    *,
    layer_name: str,
    path_pyproject_toml: Path | str,
    s3dir_lambda: S3Path | str,
    tool: str,
    python_version: str,
    architecture: str,
    ignore_packages: Iterable[str] | None,
    packaging_options: PackagingOptions | None,
    s3_client: S3Client | None,
    lambda_client: LambdaClient | None,
    region: str | None,
    endpoint_url: str | None,
) -> LayerDeployment:
    inputs = resolve_layer_inputs(
        layer_name=layer_name,
        path_pyproject_toml=path_pyproject_toml,
        s3dir_lambda=s3dir_lambda,
        tool=tool,
        python_version=python_version,
        architecture=architecture,
        ignore_packages=ignore_packages,
        packaging_options=packaging_options,
    )
    s3_client, lambda_client = resolve_clients(s3_client, lambda_client, region, endpoint_url)
    path_zip = inputs.path_layout.path_build_lambda_layer_zip
    if not path_zip.is_file():
        raise LayerError(f"no layer zip at {path_zip}: build and package the layer first")
    fetched = _fetch_own_record(s3_client, inputs)  # the ETag to replace
    code_sha256, _ = file_code_sha256(path_zip)
    write_publish_intent(s3_client=s3_client, inputs=inputs, code_sha256=code_sha256)
    published = publish_staged_zip(
        lambda_client=lambda_client,
        layer_name=inputs.layer_name,
        s3path_zip=inputs.s3_layout.s3path_temp_layer_zip,
        target=inputs.target,
        fingerprint=inputs.fingerprint,
        code_sha256=code_sha256,
    )
    record = make_record(published=published, inputs=inputs)
    record_layer_version(s3_client=s3_client, inputs=inputs, record=record, expected_etag=fetched.etag)
    clear_publish_intent(s3_client=s3_client, inputs=inputs)
    return deployment_from_record(record, published=True)


def deployment_from_record(
    record: LayerRecord, *, published: bool, adopted: bool = False, deleted_versions: Iterable[int] = ()
) -> LayerDeployment:
    return LayerDeployment.from_facts(
        record.facts, published=published, adopted=adopted, deleted_versions=deleted_versions
    )
