"""The deploy claim over HTTP against moto's S3: exclusive, renewed, taken over only when stale or dead.

What the claim says (waiting, taking over) is read from its logger (``claim``); a claim held too long by
another deploy, or lost to one, is a ``ConflictError`` (the CLI's exit code 7: rerun later).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time

import pytest
from aws_lambda_artifact_builder.errors import AwsError, ConflictError, exit_code
from aws_lambda_artifact_builder.layer.claim import ClaimHolder, DeployClaim, _process_start
from s3pathlib.api import S3Path


@pytest.fixture()
def claim_path(bucket: str) -> S3Path:
    return S3Path(f"s3://{bucket}/apps/sample/layer/deploy-claim.json")


@pytest.fixture(autouse=True)
def _claim_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder.claim")


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What claims said on their logger so far."""
    return [r.getMessage() for r in caplog.records if r.name == "aws_lambda_artifact_builder.claim"]


def _claim(s3_client, path: S3Path, **kwargs) -> DeployClaim:
    return DeployClaim(s3_client=s3_client, s3path=path, purpose="test", **kwargs)


def _holder_in_s3(s3_client, path: S3Path) -> ClaimHolder | None:
    body = s3_client.get_object(Bucket=path.bucket, Key=path.key)["Body"].read()
    return ClaimHolder.from_bytes(body)


def test_a_second_claimant_waits_until_the_first_releases(s3_client, claim_path, caplog):
    first = _claim(s3_client, claim_path)
    first.acquire()
    second = _claim(s3_client, claim_path)
    acquired = threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(), acquired.set()))
    waiter.start()
    assert not acquired.wait(1.5), "the claim must be exclusive"
    assert any("waiting for another deploy" in line for line in said(caplog))

    first.release()
    assert acquired.wait(10)
    waiter.join()
    holder = _holder_in_s3(s3_client, claim_path)
    assert holder is not None and holder.token == second.holder.token
    second.release()
    with pytest.raises(s3_client.exceptions.NoSuchKey):
        s3_client.get_object(Bucket=claim_path.bucket, Key=claim_path.key)


def test_renewal_keeps_a_live_holder_beyond_its_lease(s3_client, claim_path):
    with _claim(s3_client, claim_path, lease_seconds=1.5) as holder:
        other = _claim(s3_client, claim_path, lease_seconds=1.5, wait_seconds=3.5)
        with pytest.raises(ConflictError, match="another deploy .* has held .* for longer than 4s") as info:
            other.acquire()
        holder.ensure_held()
    # Not a failed AWS call nor a wrong input: its own exit code, and the fix says to rerun later.
    assert exit_code(info.value) == 7 and "rerun once it is done" in info.value.fix
    assert isinstance(info.value, AwsError) and info.value.operation == "s3:PutObject"


def test_an_expired_claim_from_another_machine_is_taken_over(s3_client, claim_path, caplog):
    stranger = dataclasses.replace(ClaimHolder.current("elsewhere"), host="build-agent-7", pid=1)
    s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=stranger.to_bytes())
    started = time.monotonic()
    with _claim(s3_client, claim_path, lease_seconds=2) as mine:
        waited = time.monotonic() - started
        assert _holder_in_s3(s3_client, claim_path).token == mine.holder.token
    assert waited >= 1.0, "a fresh claim from another machine must be respected until it expires"
    lines = said(caplog)
    assert any("took over" in line and "build-agent-7" in line and "not renewed" in line for line in lines), lines


def test_a_claim_left_by_a_dead_process_on_this_machine_is_taken_over_at_once(s3_client, claim_path, caplog):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = dataclasses.replace(ClaimHolder.current("crashed"), pid=int(gone.stdout))
    s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=dead.to_bytes())
    with _claim(s3_client, claim_path):
        pass
    lines = said(caplog)
    assert any("took over" in line and f"process {dead.pid} is gone" in line for line in lines), lines


def test_a_live_process_on_this_machine_is_not_taken_over(s3_client, claim_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        holder = ClaimHolder.current("running")
        holder = dataclasses.replace(holder, pid=alive.pid, process_start=_process_start(alive.pid) or "")
        s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=holder.to_bytes())
        with pytest.raises(ConflictError, match="has held"):
            _claim(s3_client, claim_path, wait_seconds=1).acquire()
    finally:
        alive.kill()
        alive.wait()


def test_a_holder_that_lost_its_claim_refuses_to_go_on(s3_client, claim_path):
    claim = _claim(s3_client, claim_path, lease_seconds=0.9)
    claim.acquire()
    try:
        intruder = ClaimHolder.current("intruder")
        s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=intruder.to_bytes())
        time.sleep(1.0)  # at least one renewal attempt, which must fail on the changed ETag
        with pytest.raises(ConflictError, match="lost the deploy claim") as info:
            claim.ensure_held()
        assert exit_code(info.value) == 7 and "rerun the deploy" in info.value.fix
    finally:
        claim.release()
    assert (
        json.loads(s3_client.get_object(Bucket=claim_path.bucket, Key=claim_path.key)["Body"].read())["token"]
        == intruder.token
    )
