"""The deploy claim over HTTP against moto's S3: exclusive, renewed, taken over only when stale or dead."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time

import pytest
from aws_lambda_artifact_builder.api import LayerError
from aws_lambda_artifact_builder.layer.claim import ClaimHolder, DeployClaim, _process_start
from s3pathlib.api import S3Path


@pytest.fixture()
def claim_path(bucket: str) -> S3Path:
    return S3Path(f"s3://{bucket}/apps/sample/layer/deploy-claim.json")


def _claim(s3_client, path: S3Path, lines: list[str] | None = None, **kwargs) -> DeployClaim:
    return DeployClaim(
        s3_client=s3_client, s3path=path, purpose="test", printer=(lines if lines is not None else []).append, **kwargs
    )


def _holder_in_s3(s3_client, path: S3Path) -> ClaimHolder | None:
    body = s3_client.get_object(Bucket=path.bucket, Key=path.key)["Body"].read()
    return ClaimHolder.from_bytes(body)


def test_a_second_claimant_waits_until_the_first_releases(s3_client, claim_path):
    first = _claim(s3_client, claim_path)
    first.acquire()
    lines: list[str] = []
    second = _claim(s3_client, claim_path, lines)
    acquired = threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(), acquired.set()))
    waiter.start()
    assert not acquired.wait(1.5), "the claim must be exclusive"
    assert any("waiting for another deploy" in line for line in lines)

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
        with pytest.raises(LayerError, match="another deploy .* has held .* for longer than 4s"):
            other.acquire()
        holder.ensure_held()


def test_an_expired_claim_from_another_machine_is_taken_over(s3_client, claim_path):
    stranger = dataclasses.replace(ClaimHolder.current("elsewhere"), host="build-agent-7", pid=1)
    s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=stranger.to_bytes())
    lines: list[str] = []
    started = time.monotonic()
    with _claim(s3_client, claim_path, lines, lease_seconds=2) as mine:
        waited = time.monotonic() - started
        assert _holder_in_s3(s3_client, claim_path).token == mine.holder.token
    assert waited >= 1.0, "a fresh claim from another machine must be respected until it expires"
    assert any("took over" in line and "build-agent-7" in line and "not renewed" in line for line in lines), lines


def test_a_claim_left_by_a_dead_process_on_this_machine_is_taken_over_at_once(s3_client, claim_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = dataclasses.replace(ClaimHolder.current("crashed"), pid=int(gone.stdout))
    s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=dead.to_bytes())
    lines: list[str] = []
    with _claim(s3_client, claim_path, lines):
        pass
    assert any("took over" in line and f"process {dead.pid} is gone" in line for line in lines), lines


def test_a_live_process_on_this_machine_is_not_taken_over(s3_client, claim_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        holder = ClaimHolder.current("running")
        holder = dataclasses.replace(holder, pid=alive.pid, process_start=_process_start(alive.pid) or "")
        s3_client.put_object(Bucket=claim_path.bucket, Key=claim_path.key, Body=holder.to_bytes())
        with pytest.raises(LayerError, match="has held"):
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
        with pytest.raises(LayerError, match="lost the deploy claim"):
            claim.ensure_held()
    finally:
        claim.release()
    assert (
        json.loads(s3_client.get_object(Bucket=claim_path.bucket, Key=claim_path.key)["Body"].read())["token"]
        == intruder.token
    )
