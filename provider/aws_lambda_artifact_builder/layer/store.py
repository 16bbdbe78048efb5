"""The artifact store: one packaged layer zip per fingerprint in S3, built once, published everywhere.

After a build the zip is stored under ``{s3dir}/layer/artifacts/{fingerprint}/layer.zip`` and its
description (``layer.json``: fingerprint, CodeSha256, size) beside it, each written with
``If-None-Match: *``. The zip is written first and carries its CodeSha256 in its own metadata, so
the description names bytes that are there. A second writer of the same fingerprint is harmless:
its writes fail the precondition and it uses the stored artifact instead of its own, so every
region and account publishes the same CodeSha256. Exclusivity comes from the build claim (the
deploy claim's lease, ``claim.py``, on ``build-claim.json``), never from moto's conditional writes.

A deploy that needs a stored fingerprint downloads the zip once, checks its sha256 and size
against the description and the object's metadata, then copies that very object (``If-Match`` on
the ETag it checked) to each target's staging key, server-side where the target's credentials can
read the store, else by uploading the checked local copy. A zip that does not match is refused:
it is deleted (so the next build can store a good one) and rebuilt, or, without build
permission (``--from-store``), the deploy fails naming it; it is never published.

The run that stored a zip also stores its SBOM and build provenance beside it (``sbom.cdx.json``,
``provenance.json``; ``evidence.describe_build``), so a version published from the store says where
and how the zip was built. They are informative, never trusted for what is published: a failure to
write them is a warning, and an unreadable one is ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from s3pathlib.api import S3Path

from ..errors import AwsError, ConflictError
from ..progress import Stage, get_logger, human_size
from .claim import DeployClaim
from .clients import aws_call, is_missing_key, is_precondition_failure
from .foundation import LayerS3Layout, coerce_s3dir
from .history import PROVENANCE_NAME, SBOM_NAME
from .package import LayerZipInfo
from .publish import file_code_sha256

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

#: What the run that stored a zip writes beside it (``evidence.describe_build``).
EVIDENCE_NAMES = (SBOM_NAME, PROVENANCE_NAME)

_TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4
)

_log = get_logger("store")


class ArtifactMissing(AwsError):
    """The store has no (good) artifact for the fingerprint and this deploy may not build it (``--from-store``):
    what only S3 could tell, fixed by pushing the artifact first."""


@dataclasses.dataclass(frozen=True)
class StoredArtifact:
    """One fingerprint's zip in the store, as checked by this process."""

    fingerprint: str
    #: Base64 sha256, the form Lambda reports as ``CodeSha256``.
    code_sha256: str
    size: int
    s3path_zip: S3Path
    #: ETag of the store object whose bytes were checked: copies name it with ``If-Match``.
    etag: str
    #: The checked bytes on this machine, for targets that cannot read the store.
    path_local: Path


class _Counted:
    """A zip being sent with ``PutObject`` (one request: ``If-None-Match`` has no multipart form in boto3's
    transfer manager), its reads counted as the upload stage's bytes. botocore may read the body once to
    sign or checksum it and rewind before sending it: a rewind sets the count back to where the file is."""

    def __init__(self, f: BinaryIO, stage: Stage) -> None:
        self._f = f
        self._stage = stage

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._stage.advance(len(data))
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._f.seek(offset, whence)
        self._stage.advance(position - self._stage.done)
        return position

    def tell(self) -> int:
        return self._f.tell()


class ArtifactStore:
    """The store below one ``s3dir`` (the first target's), read and written with ``s3_client``.

    One instance serves every target of a run (thread-safe): the artifact is checked once per
    process and copied to each target. ``may_build=False`` is ``alab layer deploy --from-store``.
    What it finds, refuses and stores is said on the ``store`` logger; every S3 call's failure is an
    :class:`~..errors.AwsError` (``clients.aws_call``).
    """

    def __init__(self, *, s3_client: S3Client, s3dir: S3Path | str, may_build: bool = True) -> None:
        self.s3_client = s3_client
        self.layout = LayerS3Layout(s3dir_lambda=coerce_s3dir(s3dir))
        self.may_build = may_build
        self._dir = tempfile.TemporaryDirectory(prefix="alab-store-")
        self._checked: dict[str, StoredArtifact] = {}
        self._lock = threading.Lock()
        #: How many builds this process ran for the store (read by callers that report it).
        self.builds = 0

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def _read_info(self, fingerprint: str) -> dict[str, Any] | None:
        s3path = self.layout.get_s3path_artifact_info(fingerprint)
        with aws_call("s3:GetObject", "read the stored artifact's description", s3path=s3path):
            try:
                body = self.s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key)["Body"].read()
            except ClientError as e:
                if is_missing_key(e):
                    return None
                raise
        try:
            info = json.loads(body)
            if info["fingerprint"] == fingerprint and isinstance(info["code_sha256"], str) and int(info["size"]) >= 0:
                return dict(info)
        except (ValueError, KeyError, TypeError):
            pass
        return {"fingerprint": fingerprint, "code_sha256": "", "size": -1}  # unreadable: refused below

    def fetch(self, fingerprint: str) -> StoredArtifact | None:
        """The stored artifact, downloaded and checked once per process; ``None`` when there is none.

        A stored zip that does not match its description is refused: deleted, and ``None`` returned.
        """
        with self._lock:
            if fingerprint in self._checked:
                return self._checked[fingerprint]
            info = self._read_info(fingerprint)
            if info is None:
                return None
            s3path = self.layout.get_s3path_artifact_zip(fingerprint)
            path = Path(self._dir.name) / f"{fingerprint}.zip"
            got = self._download(s3path, path)
            if got is None:
                _log.warning("[store] refused %s: its description is there but the zip is not", s3path.uri)
                self._delete(fingerprint, etag=None)
                return None
            etag, metadata = got
            code_sha256, size = file_code_sha256(path)
            if {info["code_sha256"], metadata.get("code-sha256", "")} != {code_sha256} or int(info["size"]) != size:
                _log.warning(
                    "[store] refused %s: its bytes have sha256 %s (%d bytes), its description says %s (%s bytes); "
                    "it is deleted and never published",
                    s3path.uri, code_sha256, size, info["code_sha256"] or "nothing readable", info["size"],
                )  # fmt: skip
                path.unlink()
                self._delete(fingerprint, etag=etag)
                return None
            found = StoredArtifact(
                fingerprint=fingerprint,
                code_sha256=code_sha256,
                size=size,
                s3path_zip=s3path,
                etag=etag,
                path_local=path,
            )
            self._checked[fingerprint] = found
            _log.info("[store] found %s (CodeSha256 %s, %s)", s3path.uri, code_sha256, human_size(size))
            return found

    def _download(self, s3path: S3Path, path: Path) -> tuple[str, dict[str, str]] | None:
        """The zip at ``s3path`` into ``path``: its ETag and metadata, from the same GET as its bytes (they
        belong together); ``None`` when there is no zip."""
        with aws_call("s3:GetObject", "download the stored artifact", s3path=s3path):
            try:
                got = self.s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key)
            except ClientError as e:
                if is_missing_key(e):
                    return None
                raise
            with open(path, "wb") as f:
                shutil.copyfileobj(got["Body"], f, 1 << 20)
        return str(got["ETag"]), dict(got.get("Metadata", {}))

    def _delete(self, fingerprint: str, *, etag: str | None) -> None:
        """Remove a refused artifact (the zip only if it is still the one refused), so a good one can be stored."""
        zip_path = self.layout.get_s3path_artifact_zip(fingerprint)
        described = [self.layout.get_s3path_artifact_info(fingerprint)]
        described += [self.layout.get_s3dir_artifact(fingerprint).joinpath(name) for name in EVIDENCE_NAMES]
        with aws_call("s3:DeleteObject", "delete a refused stored artifact", s3path=zip_path):
            try:
                if etag is not None:
                    self.s3_client.delete_object(Bucket=zip_path.bucket, Key=zip_path.key, IfMatch=etag)
                for path in described:
                    self.s3_client.delete_object(Bucket=path.bucket, Key=path.key)
            except ClientError as e:
                if not (is_precondition_failure(e) or is_missing_key(e)):
                    raise

    # ------------------------------------------------------------------ writing
    def _put_if_absent(self, s3path: S3Path, **kwargs: Any) -> str | None:
        """``PutObject`` with ``If-None-Match: *``: the new ETag, or ``None`` when the key exists."""
        with aws_call("s3:PutObject", "write to the artifact store", s3path=s3path):
            try:
                put = self.s3_client.put_object(Bucket=s3path.bucket, Key=s3path.key, IfNoneMatch="*", **kwargs)
            except ClientError as e:
                if is_precondition_failure(e):
                    return None
                raise
        return str(put["ETag"])

    def _put_zip(self, s3path: S3Path, path_zip: Path, fingerprint: str, code_sha256: str, stage: Stage) -> str | None:
        with open(path_zip, "rb") as f:
            return self._put_if_absent(
                s3path,
                Body=_Counted(f, stage),
                ContentType="application/zip",
                Metadata={"fingerprint": fingerprint, "code-sha256": code_sha256},
            )

    def _other_zip(self, s3path: S3Path, fingerprint: str, code_sha256: str) -> tuple[bool, str | None]:
        """Whether the zip another writer stored holds our bytes, and its ETag when it is an orphan to replace.

        An orphan is a zip without ``layer.json``: its writer died in between. Only the holder of the
        build claim calls this, so nobody else is writing it; it is replaced (``If-Match`` on its ETag).
        """
        with aws_call("s3:GetObject", "read the stored artifact", s3path=s3path):
            try:
                theirs = self.s3_client.head_object(Bucket=s3path.bucket, Key=s3path.key)
            except ClientError as e:
                if is_missing_key(e):  # deleted since our write failed (refused by another runner)
                    return False, None
                raise
        if theirs.get("Metadata", {}).get("code-sha256") == code_sha256:
            return True, None
        return False, (str(theirs["ETag"]) if self._read_info(fingerprint) is None else None)

    def put(self, fingerprint: str, path_zip: Path) -> StoredArtifact:
        """Store a freshly packaged zip; when another writer stored this fingerprint first, theirs wins."""
        code_sha256, size = file_code_sha256(path_zip)
        s3path = self.layout.get_s3path_artifact_zip(fingerprint)
        with Stage("upload", total=size, unit="bytes") as stage:
            etag = self._put_zip(s3path, path_zip, fingerprint, code_sha256, stage)
            same = False
            if etag is None:
                same, orphan = self._other_zip(s3path, fingerprint, code_sha256)
                if orphan is not None:
                    _log.info("[store] replacing %s, left without its description by a writer that stopped", s3path.uri)
                    self._delete(fingerprint, etag=orphan)
                    etag = self._put_zip(s3path, path_zip, fingerprint, code_sha256, stage)
            by = "the artifact store" if etag is not None else "already stored by another runner"
            # the store's folder, not the zip's key: a 64-digit fingerprint would wrap the story's line
            stage.finish(f"{human_size(size)} to {s3path.parent.parent.uri} ({by})")
        if etag is not None or same:
            info = {"fingerprint": fingerprint, "code_sha256": code_sha256, "size": size}
            self._put_if_absent(
                self.layout.get_s3path_artifact_info(fingerprint),
                Body=json.dumps(info, sort_keys=True).encode("utf-8"),
                ContentType="application/json",
            )
        if etag is not None:
            local = Path(self._dir.name) / f"{fingerprint}.zip"
            shutil.copyfile(path_zip, local)
            _log.info(
                "[upload] stored %s in the artifact store (CodeSha256 %s, %s)",
                s3path.uri,
                code_sha256,
                human_size(size),
            )
            found = StoredArtifact(
                fingerprint=fingerprint,
                code_sha256=code_sha256,
                size=size,
                s3path_zip=s3path,
                etag=etag,
                path_local=local,
            )
            with self._lock:
                self._checked[fingerprint] = found
            return found
        _log.info("[store] %s was stored by another runner meanwhile; using that one", s3path.uri)
        stored = self.fetch(fingerprint)
        if stored is None:
            raise ConflictError(
                f"{s3path.uri} exists but cannot be used (written without its description, or refused)",
                operation="s3:PutObject",
                fix="rerun the deploy",
            )
        return stored

    # ------------------------------------------------------------------ evidence
    def put_evidence(self, fingerprint: str, texts: Mapping[str, str]) -> None:
        """The SBOM and provenance of the zip this run stored, beside it (the first writer's stay)."""
        folder = self.layout.get_s3dir_artifact(fingerprint)
        for name, text in texts.items():
            self._put_if_absent(folder.joinpath(name), Body=text.encode("utf-8"), ContentType="application/json")
        _log.info("[store] wrote %s beside %slayer.zip", ", ".join(texts), folder.uri)

    def read_provenance(self, fingerprint: str) -> dict[str, Any] | None:
        """The build provenance stored beside a fingerprint's zip; ``None`` when absent or unreadable."""
        s3path = self.layout.get_s3dir_artifact(fingerprint).joinpath(PROVENANCE_NAME)
        try:
            with aws_call("s3:GetObject", "read the stored provenance", s3path=s3path):
                data = json.loads(self.s3_client.get_object(Bucket=s3path.bucket, Key=s3path.key)["Body"].read())
        except (AwsError, ValueError) as e:
            _log.info("[store] no readable %s (%s): the version's provenance is this deploy's", s3path.uri, e)
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ staging
    def stage(self, artifact: StoredArtifact, *, s3_client: S3Client, s3path: S3Path, metadata: dict[str, str]) -> None:
        """Put the checked artifact at a target's staging key: a server-side copy, else an upload."""
        try:
            if self._copy(artifact, s3_client, s3path, metadata):
                _log.info("[store] copied %s to %s", artifact.s3path_zip.uri, s3path.uri)
                return
            _log.info("[store] %s changed after it was checked; uploading the checked copy", artifact.s3path_zip.uri)
        except AwsError as e:  # e.g. a target's role that may not read the store: the checked bytes go up instead
            _log.info("[store] server-side copy to %s failed (%s); uploading the checked copy", s3path.uri, e)
        with aws_call("s3:PutObject", "upload the layer zip", s3path=s3path):
            s3_client.upload_file(
                str(artifact.path_local),
                s3path.bucket,
                s3path.key,
                ExtraArgs={"ContentType": "application/zip", "Metadata": metadata},
                Config=_TRANSFER,
            )

    @staticmethod
    def _copy(artifact: StoredArtifact, s3_client: S3Client, s3path: S3Path, metadata: dict[str, str]) -> bool:
        """A server-side copy of the store's zip to ``s3path``, ``If-Match`` on the checked ETag: whether it
        copied the checked bytes. The store's zip is one part, so a copy of the same bytes has the same ETag
        (its MD5): checked here too, as not every S3 implementation honours ``CopySourceIfMatch``."""
        with aws_call("s3:PutObject", f"copy {artifact.s3path_zip.uri} here", s3path=s3path):
            copied = s3_client.copy_object(
                CopySource={"Bucket": artifact.s3path_zip.bucket, "Key": artifact.s3path_zip.key},
                CopySourceIfMatch=artifact.etag,
                Bucket=s3path.bucket,
                Key=s3path.key,
                ContentType="application/zip",
                Metadata=metadata,
                MetadataDirective="REPLACE",
            )
        return copied.get("CopyObjectResult", {}).get("ETag") == artifact.etag


def obtain_from_store(
    store: ArtifactStore,
    fingerprint: str,
    *,
    build: Callable[[], LayerZipInfo],
    build_lock: Callable[[], contextlib.AbstractContextManager[None]],
    describe: Callable[[Path], Mapping[str, str]] | None = None,
) -> StoredArtifact:
    """The stored artifact; built (once across runners, under the build claim) and stored when absent,
    with what ``describe`` says of the built zip (SBOM and provenance by file name) beside it."""
    started = time.monotonic()
    found = store.fetch(fingerprint)
    if found is not None:
        return _reused(found, started)
    where = store.layout.get_s3path_artifact_zip(fingerprint).uri
    if not store.may_build:
        raise ArtifactMissing(
            f"fingerprint {fingerprint[:12]}… is not in the artifact store ({where}) and this deploy does not "
            f"build (--from-store)",
            operation="s3:GetObject",
            fix="run `alab layer push` for this lock first, or deploy without --from-store",
        )
    claim = DeployClaim(
        s3_client=store.s3_client,
        s3path=store.layout.get_s3path_build_claim(fingerprint),
        purpose=f"build of fingerprint {fingerprint[:12]}",
    )
    with claim:
        found = store.fetch(fingerprint)  # another runner may have built it while we waited
        if found is not None:
            return _reused(found, started)
        with build_lock():
            # A deploy on this machine (another resource of the same run) may have stored it meanwhile.
            found = store.fetch(fingerprint)
            if found is not None:
                return _reused(found, started)
            info = build()
            store.builds += 1
            claim.ensure_held()
            stored = store.put(fingerprint, info.path)
            if describe is not None:
                _store_evidence(store, stored, describe)
            return stored


def _store_evidence(
    store: ArtifactStore, stored: StoredArtifact, describe: Callable[[Path], Mapping[str, str]]
) -> None:
    """Describe the stored bytes (ours, or an earlier writer's) beside them; a failure is only a warning."""
    try:
        store.put_evidence(stored.fingerprint, describe(stored.path_local))
    except Exception as e:  # noqa: BLE001 - the zip is stored; its description is informative
        _log.warning("[store] warning: could not store the SBOM and provenance beside %s: %s", stored.s3path_zip.uri, e)


def _reused(artifact: StoredArtifact, started: float) -> StoredArtifact:
    """Say, as a stage of its own, that this deploy builds nothing: the zip comes from the store (its time
    includes the download and check, and any wait for another runner's build)."""
    with Stage("fetch", started=started) as stage:
        stage.finish(f"{human_size(artifact.size)} zip, nothing built (from the artifact store)")
    return artifact
