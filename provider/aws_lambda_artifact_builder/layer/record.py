"""The S3 record of published layer versions: the source of truth for "did the manifest change?".

After a publish the manifest is written twice below ``s3dir_lambda``: at
``layer/{NNNNNN}/<manifest>`` (history) and at ``layer/last-<manifest>`` (the record every
plan reads). Both carry the facts of the version as object metadata, so one GET of the
``last-`` object answers a plan: the metadata says which version and fingerprint are current
and the body (the normalised manifest) gives the package-level diff. The body (a lock of up to
a megabyte or more) matters only when the fingerprint moved, so a plan GETs ``bytes=0-0`` (the
metadata and the whole object's ETag come with the 206) and reads the body with a second GET,
``If-Match`` that ETag, only when its decision needs it (``fetch_record_body``).

The ``last-`` object is only ever replaced with a conditional write (``If-Match`` on the ETag
the writer read, or ``If-None-Match: *`` when there was none), so two writers can never both
believe they recorded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from s3pathlib.api import S3Path

from .clients import aws_call, error_code, http_status, is_missing_key, is_precondition_failure
from .clients import s3_error as s3_error  # re-exported: where it used to live
from .facts import FIELDS_TO_META, META_FORMAT, RECORD_FORMAT
from .facts import LayerRecord as LayerRecord  # re-exported: where it used to live

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

#: What each text field must look like; the record is only ever trusted after these checks.
_FIELD_PATTERNS: dict[str, str] = {
    "layer_name": r"[A-Za-z0-9_-]{1,64}",
    "layer_version_arn": r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]{1,64}:[0-9]+",
    "layer_arn": r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]{1,64}",
    "fingerprint": r"[0-9a-f]{64}",
    "code_sha256": r"[A-Za-z0-9+/]{43}=",
    "tool": r"pip|poetry|uv",
    "python_version": r"3\.[0-9]{1,2}",
    "architecture": r"x86_64|arm64",
}


@dataclasses.dataclass(frozen=True)
class FetchedRecord:
    """One GET of a ``last-`` object: the record if it is ours, and the ETag a replacement must match."""

    s3path: S3Path
    #: ``None`` when no object exists at the key.
    etag: str | None
    record: LayerRecord | None
    #: Why an existing object is not a usable record (written by another tool, damaged metadata).
    problem: str = ""
    #: Whether ``record.manifest_content`` holds the body (``False``: only the metadata was read).
    body_read: bool = True


def record_from_metadata(metadata: dict[str, str], *, body: str, s3uri_manifest: str) -> LayerRecord:
    """Parse object metadata into a record; ``ValueError`` names what is missing or wrong."""
    if metadata.get(META_FORMAT) != RECORD_FORMAT:
        raise ValueError(f"record format {metadata.get(META_FORMAT)!r} is not {RECORD_FORMAT!r}")
    missing = [key for key in FIELDS_TO_META.values() if key not in metadata]
    if missing:
        raise ValueError(f"metadata lacks {', '.join(missing)}")
    values: dict[str, Any] = {name: metadata[key] for name, key in FIELDS_TO_META.items()}
    for name in ("layer_version", "code_size"):
        if not re.fullmatch(r"[0-9]{1,12}", values[name]):
            raise ValueError(f"{FIELDS_TO_META[name]} {values[name]!r} is not a number")
        values[name] = int(values[name])
    for name, pattern in _FIELD_PATTERNS.items():
        if not re.fullmatch(pattern, values[name]):
            raise ValueError(f"{FIELDS_TO_META[name]} {values[name]!r} is not well-formed")
    return LayerRecord.of(**values, s3uri_manifest=s3uri_manifest, manifest_content=body)


class RecordConflict(Exception):
    """The ``last-`` object changed since it was read: another writer recorded in between."""


def fetch_record(
    *, s3_client: S3Client, s3path: S3Path, s3uri_manifest_for: Callable[[int], str], body: bool = True
) -> FetchedRecord:
    """GET the ``last-`` object once; ``s3uri_manifest_for(version)`` names the versioned copy.

    ``body=False`` asks for the first byte only: the record's facts and ETag without the manifest
    (``fetch_record_body`` reads it later). An empty object has no first byte (416): it is read whole.
    """
    ranged: dict[str, Any] = {} if body else {"Range": "bytes=0-0"}
    with aws_call("s3:GetObject", "read the layer record", s3path=s3path):
        try:
            response = s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key, **ranged)
        except ClientError as e:
            if is_missing_key(e):
                return FetchedRecord(s3path=s3path, etag=None, record=None)
            if ranged and (error_code(e) == "InvalidRange" or http_status(e) == 416):
                return fetch_record(s3_client=s3_client, s3path=s3path, s3uri_manifest_for=s3uri_manifest_for)
            raise
        data = response["Body"].read()
    # A server that ignores Range sends 200 and the whole body; so does a one-byte object.
    whole = not ranged or _is_whole(response.get("ContentRange"), len(data))
    etag = response["ETag"]
    metadata = response.get("Metadata", {})
    try:
        record = record_from_metadata(
            metadata, body=data.decode("utf-8", errors="replace") if whole else "", s3uri_manifest=""
        )
        facts = dataclasses.replace(record.facts, s3uri_manifest=s3uri_manifest_for(record.layer_version))
        record = dataclasses.replace(record, facts=facts)
    except ValueError as e:
        return FetchedRecord(s3path=s3path, etag=etag, record=None, problem=f"{s3path.uri} is not a layer record: {e}")
    return FetchedRecord(s3path=s3path, etag=etag, record=record, body_read=whole)


def _is_whole(content_range: str | None, received: int) -> bool:
    """Whether a ranged GET returned the whole object (``Content-Range: bytes 0-0/<size>``)."""
    if not content_range:
        return True
    total = content_range.rpartition("/")[2]
    return total.isdigit() and int(total) == received


def fetch_record_body(fetched: FetchedRecord, *, s3_client: S3Client) -> FetchedRecord:
    """The record with its manifest body: a GET ``If-Match`` the ETag read first.

    ``RecordConflict`` when the object changed (or vanished) since: the facts in hand no longer
    describe the body there, and the caller reads the record again.
    """
    if fetched.body_read or fetched.record is None or fetched.etag is None:
        return fetched
    s3path = fetched.s3path
    with aws_call("s3:GetObject", "read the layer record", s3path=s3path):
        try:
            response = s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key, IfMatch=fetched.etag)
        except ClientError as e:
            if is_precondition_failure(e) or is_missing_key(e):
                raise RecordConflict(s3path.uri) from None
            raise
        body = response["Body"].read().decode("utf-8", errors="replace")
    record = dataclasses.replace(fetched.record, manifest_content=body)
    return dataclasses.replace(fetched, record=record, body_read=True)


def write_versioned_manifest(*, s3_client: S3Client, s3path: S3Path, record: LayerRecord, body: str) -> None:
    """The history copy of one version's manifest; rewriting it with the same facts is harmless."""
    with aws_call("s3:PutObject", "write the versioned manifest", s3path=s3path):
        s3_client.put_object(
            Bucket=s3path.bucket,
            Key=s3path.key,
            Body=body.encode("utf-8"),
            ContentType="text/plain; charset=utf-8",
            Metadata=record.to_metadata(),
        )


def write_last_record(
    *, s3_client: S3Client, s3path: S3Path, record: LayerRecord, body: str, expected_etag: str | None
) -> str:
    """Replace the ``last-`` object only if it is still the one read (``None``: only if absent)."""
    condition: dict[str, Any] = {"IfMatch": expected_etag} if expected_etag is not None else {"IfNoneMatch": "*"}
    with aws_call("s3:PutObject", "write the layer record", s3path=s3path):
        try:
            response = s3_client.put_object(
                Bucket=s3path.bucket,
                Key=s3path.key,
                Body=body.encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
                Metadata=record.to_metadata(),
                **condition,
            )
        except ClientError as e:
            if is_precondition_failure(e) or (expected_etag is not None and is_missing_key(e)):
                raise RecordConflict(s3path.uri) from None
            raise
    return str(response["ETag"])
