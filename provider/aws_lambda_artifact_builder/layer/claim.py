"""A lease on one ``s3dir_lambda`` taken with S3 conditional writes, so concurrent deploys publish once.

A deploy that found a change creates ``layer/deploy-claim.json`` with ``If-None-Match: *``;
exactly one concurrent writer succeeds. The holder renews the object (``If-Match`` on its
own ETag) every third of the lease while it builds and publishes, and deletes it
(``If-Match`` again) when done. The others wait, then take the claim in turn and re-plan
under it: by then the record says the version exists, so they return it without building.

A holder that stops renewing loses the claim once the object is older than the lease, as
measured by S3's own clock (the ``Date`` of the response against ``LastModified``), so
machines with skewed clocks agree. A holder on this very machine whose process is gone
(same host, boot and PID namespace; PID absent or reused) is taken over at once, so a rerun
after a crash does not wait for the lease. Taking over is itself an ``If-Match`` write, so
two waiters cannot both take over.

After every successful conditional write the claim is read back and must carry our token:
moto's S3 checks the precondition and stores the object in two steps, and the read-back
makes a rare interleaving there harmless; on S3 itself it is one cheap GET.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import socket
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from s3pathlib.api import S3Path

from ..errors import AwsError, ConflictError
from ..progress import get_logger
from .clients import aws_call, is_missing_key, is_precondition_failure

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

#: How long a claim stays valid without renewal; the holder renews every third of it.
DEFAULT_LEASE_SECONDS = 60.0
#: How long a deploy waits for another one to finish before giving up.
DEFAULT_WAIT_SECONDS = 3600.0

_log = get_logger("claim")


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (``""`` if unknown, ``None`` if gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    stat = _read_text(f"/proc/{pid}/stat")
    if not stat:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


@dataclasses.dataclass(frozen=True)
class ClaimHolder:
    """Who holds a claim: enough to tell a live holder from a dead one on the same machine."""

    token: str
    host: str
    pid: int
    boot_id: str
    pid_namespace: str
    process_start: str
    purpose: str

    @classmethod
    def current(cls, purpose: str) -> ClaimHolder:
        pid = os.getpid()
        return cls(
            token=uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=pid,
            boot_id=_read_text("/proc/sys/kernel/random/boot_id"),
            pid_namespace=_pid_namespace(),
            process_start=_process_start(pid) or "",
            purpose=purpose,
        )

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> ClaimHolder | None:
        """The holder, or ``None`` for anything but our exact shape (an unreadable claim is stale)."""
        try:
            raw = json.loads(data)
            values = {f.name: raw[f.name] for f in dataclasses.fields(cls)}
        except (ValueError, KeyError, TypeError):
            return None
        pid = values["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 1 << 22:
            return None
        if not all(isinstance(v, str) for k, v in values.items() if k != "pid"):
            return None
        return cls(**values)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, {self.purpose}"

    def is_certainly_dead(self) -> bool:
        """True only when the holder ran on this machine (same boot, same PID namespace) and is gone."""
        me = ClaimHolder.current(self.purpose)
        if (self.host, self.boot_id, self.pid_namespace) != (me.host, me.boot_id, me.pid_namespace):
            return False
        start = _process_start(self.pid)
        return start is None or bool(start and self.process_start and start != self.process_start)


@dataclasses.dataclass(frozen=True)
class _Observed:
    holder: ClaimHolder | None
    etag: str
    age_seconds: float


class DeployClaim:
    """The exclusive right to build, publish and record into one ``s3dir_lambda``; a context manager.

    It says what it waits for and whom it takes over from on the ``claim`` logger; a claim another deploy
    held too long or took over is a :class:`~..errors.ConflictError` (rerun later).
    """

    def __init__(
        self,
        *,
        s3_client: S3Client,
        s3path: S3Path,
        purpose: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.s3_client = s3_client
        self.s3path = s3path
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.holder = ClaimHolder.current(purpose)
        self._etag: str | None = None
        self._renewed_at = 0.0
        self._lost = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ S3 calls
    def _put(self, condition: dict[str, str]) -> str | None:
        """A conditional write of our holder record; ``None`` when the condition failed."""
        with aws_call("s3:PutObject", "write the deploy claim", s3path=self.s3path):
            try:
                response = self.s3_client.put_object(
                    Bucket=self.s3path.bucket,
                    Key=self.s3path.key,
                    Body=self.holder.to_bytes(),
                    ContentType="application/json",
                    **condition,  # type: ignore[arg-type]
                )
            except ClientError as e:
                if is_precondition_failure(e) or ("IfMatch" in condition and is_missing_key(e)):
                    return None
                raise
        return str(response["ETag"])

    def _observe(self) -> _Observed | None:
        with aws_call("s3:GetObject", "read the deploy claim", s3path=self.s3path):
            try:
                response = self.s3_client.get_object(Bucket=self.s3path.bucket, Key=self.s3path.key)
            except ClientError as e:
                if is_missing_key(e):
                    return None
                raise
            holder = ClaimHolder.from_bytes(response["Body"].read())
        date = response["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        try:
            now = parsedate_to_datetime(date) if date else dt.datetime.now(dt.UTC)
        except (TypeError, ValueError):  # no Date header, or one that does not parse
            now = dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        age = (now - response["LastModified"]).total_seconds()
        return _Observed(holder=holder, etag=str(response["ETag"]), age_seconds=age)

    def _confirmed(self, etag: str | None) -> bool:
        """Read the claim back: it must carry our token (see the module docstring)."""
        if etag is None:
            return False
        seen = self._observe()
        if seen is None or seen.holder is None or seen.holder.token != self.holder.token:
            return False
        self._etag = seen.etag
        self._renewed_at = time.monotonic()
        return True

    # ------------------------------------------------------------------ lifecycle
    def acquire(self) -> None:
        """Take the claim, waiting for a live holder and taking over from an expired or dead one."""
        deadline = time.monotonic() + self.wait_seconds
        announced = ""
        delay = 0.1
        while True:
            if self._confirmed(self._put({"IfNoneMatch": "*"})):
                break
            seen = self._observe()
            if seen is None:
                continue  # released between our write and our read
            if seen.holder is not None and seen.holder.token == self.holder.token:
                # Our create went through but its answer was lost, and the resent one found our own claim.
                self._etag = seen.etag
                self._renewed_at = time.monotonic()
                break
            stale = ""
            if seen.holder is None:
                stale = "its content is unreadable"
            elif seen.age_seconds > self.lease_seconds:
                stale = f"it was not renewed for {seen.age_seconds:.0f}s"
            elif seen.holder.is_certainly_dead():
                stale = f"process {seen.holder.pid} is gone"
            if stale:
                if self._confirmed(self._put({"IfMatch": seen.etag})):
                    who = seen.holder.describe() if seen.holder else "an unknown holder"
                    _log.info("[claim] took over %s from %s: %s", self.s3path.uri, who, stale)
                    break
                continue
            if time.monotonic() > deadline:
                who = seen.holder.describe() if seen.holder else "an unknown holder"
                raise ConflictError(
                    f"another deploy ({who}) has held {self.s3path.uri} for longer than {self.wait_seconds:.0f}s",
                    operation="s3:PutObject",
                    fix="rerun once it is done (or, if it is stuck, once its claim expires)",
                )
            if seen.holder and seen.holder.token != announced:
                announced = seen.holder.token
                _log.info("[claim] waiting for another deploy of this layer (%s)", seen.holder.describe())
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.5, 1.0)
        self._thread = threading.Thread(target=self._renew_loop, name="alab-claim-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                etag = self._put({"IfMatch": self._etag or ""})
            except AwsError:
                etag = ""  # a transient failure: try again at the next tick, the lease has slack
            if etag is None:
                self._lost = "another deploy took it over"
                return
            if etag:
                self._etag = etag
                self._renewed_at = time.monotonic()

    def ensure_held(self) -> None:
        """Raise before a step that must not run twice (publish, record) if the claim was lost."""
        idle = time.monotonic() - self._renewed_at
        if not self._lost and idle > self.lease_seconds:
            self._lost = f"it could not be renewed for {idle:.0f}s"
        if self._lost:
            raise ConflictError(
                f"lost the deploy claim on {self.s3path.uri}: {self._lost}",
                operation="s3:PutObject",
                fix="rerun the deploy (it plans again, and publishes only if the other deploy did not)",
            )

    def remove_if_stale(self) -> bool:
        """Delete a claim left by a dead or expired holder (an unchanged deploy cleans up after a crash)."""
        seen = self._observe()
        if seen is None:
            return False
        if seen.holder is not None and seen.age_seconds <= self.lease_seconds and not seen.holder.is_certainly_dead():
            return False
        with aws_call("s3:DeleteObject", "delete a stale deploy claim", s3path=self.s3path):
            try:
                self.s3_client.delete_object(Bucket=self.s3path.bucket, Key=self.s3path.key, IfMatch=seen.etag)
            except ClientError as e:
                if is_precondition_failure(e) or is_missing_key(e):
                    return False
                raise
        who = seen.holder.describe() if seen.holder else "an unknown holder"
        _log.info("[claim] removed %s, left by %s", self.s3path.uri, who)
        return True

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._lost or self._etag is None:
            return
        try:
            with aws_call("s3:DeleteObject", "delete the deploy claim", s3path=self.s3path):
                try:
                    self.s3_client.delete_object(Bucket=self.s3path.bucket, Key=self.s3path.key, IfMatch=self._etag)
                except ClientError as e:
                    if not (is_precondition_failure(e) or is_missing_key(e)):
                        raise
        except AwsError as e:  # the work is done: a claim left behind only delays the next changed deploy
            _log.info("[claim] %s; it expires on its own", e)
        self._etag = None

    def __enter__(self) -> DeployClaim:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()
