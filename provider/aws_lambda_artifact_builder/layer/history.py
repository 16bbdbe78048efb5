"""The published versions as S3 records them: what ``alab layer list``, ``diff`` and ``sbom`` read.

Every published version has a folder ``layer/NNNNNN/`` below ``s3dir_lambda`` (``LayerS3Layout``)
holding its manifest (with the record's facts as object metadata) and, from this tool's SBOM on,
``sbom.cdx.json`` and ``provenance.json`` (``layer/evidence.py``). Reading the history asks S3
only: it is the record, not Lambda, that says what each version was built from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from s3pathlib.api import S3Path

from ..errors import ManifestError
from .clients import aws_call, is_missing_key
from .foundation import LayerS3Layout
from .record import LayerRecord, record_from_metadata

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

#: The evidence files stored in each version's folder (``layer/evidence.py`` writes them).
SBOM_NAME = "sbom.cdx.json"
PROVENANCE_NAME = "provenance.json"

_VERSION_DIR = re.compile(r"(?P<version>[0-9]{6,})/(?P<name>[^/]+)")


@dataclasses.dataclass(frozen=True)
class RecordedVersion:
    """One version's folder: its record (from the manifest's metadata), when it was written, what is beside it."""

    record: LayerRecord
    recorded_at: dt.datetime
    has_sbom: bool
    has_provenance: bool

    def to_dict(self) -> dict[str, Any]:
        facts = self.record.to_dict()
        facts.pop("version_exists")
        return {
            **facts,
            "recorded_at": self.recorded_at.isoformat(),
            "sbom": self.has_sbom,
            "provenance": self.has_provenance,
        }


def _version_files(s3_client: S3Client, layout: LayerS3Layout) -> dict[int, dict[str, dt.datetime]]:
    """version -> {file name: LastModified} for every object in a ``layer/NNNNNN/`` folder."""
    prefix = layout.s3dir_layer
    found: dict[int, dict[str, dt.datetime]] = {}
    paginator = s3_client.get_paginator("list_objects_v2")
    with aws_call("s3:ListBucket", "list the recorded versions", s3path=prefix):
        for page in paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key):
            for obj in page.get("Contents", []):
                match = _VERSION_DIR.fullmatch(obj["Key"][len(prefix.key) :])
                if match:
                    found.setdefault(int(match["version"]), {})[match["name"]] = obj["LastModified"]
    return found


def _get(s3_client: S3Client, s3path: S3Path, what: str) -> tuple[bytes, dict[str, str]] | None:
    with aws_call("s3:GetObject", f"read {what}", s3path=s3path):
        try:
            response = s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key)
        except ClientError as e:
            if is_missing_key(e):
                return None
            raise
        return response["Body"].read(), response.get("Metadata", {})


def read_version_record(
    *, s3_client: S3Client, layout: LayerS3Layout, version: int, manifest_name: str
) -> LayerRecord | None:
    """The record of one version, with its manifest text; ``None`` when S3 has none for it.

    A manifest whose metadata is not a record (edited by hand, or written by something else) is a
    :class:`~..errors.ManifestError`: the version's recorded manifest cannot be used."""
    s3path = layout.get_s3path_versioned_manifest(version, manifest_name)
    got = _get(s3_client, s3path, "the versioned manifest")
    if got is None:
        return None
    body, metadata = got
    try:
        return record_from_metadata(metadata, body=body.decode("utf-8", errors="replace"), s3uri_manifest=s3path.uri)
    except ValueError as e:
        raise ManifestError(f"{s3path.uri} is not a layer record: {e}") from None


def list_recorded_versions(*, s3_client: S3Client, layout: LayerS3Layout, manifest_name: str) -> list[RecordedVersion]:
    """Every version recorded below ``layout`` for one tool's manifest, oldest first."""
    listed = []
    for version, files in sorted(_version_files(s3_client, layout).items()):
        if manifest_name not in files:
            continue
        record = read_version_record(s3_client=s3_client, layout=layout, version=version, manifest_name=manifest_name)
        if record is None:  # deleted between the listing and the read
            continue
        listed.append(
            RecordedVersion(
                record=record,
                recorded_at=files[manifest_name],
                has_sbom=SBOM_NAME in files,
                has_provenance=PROVENANCE_NAME in files,
            )
        )
    return listed


def read_version_file(*, s3_client: S3Client, layout: LayerS3Layout, version: int, name: str) -> bytes | None:
    """One evidence file of a version (``SBOM_NAME``, ``PROVENANCE_NAME``); ``None`` when absent."""
    got = _get(s3_client, layout.get_s3path_version_file(version, name), name)
    return None if got is None else got[0]
