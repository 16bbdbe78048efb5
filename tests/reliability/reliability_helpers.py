"""Shared checks of the reliability suite: the invariants of a layer's history, front-end runners,
and a scanner that looks for a secret in every form it could leak in."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_artifact_builder.layer.history import PROVENANCE_NAME, SBOM_NAME
from aws_lambda_artifact_builder.layer.publish import parse_layer_description

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ALAB = Path(sys.executable).parent / "alab"


def need(condition: bool, reason: str) -> None:
    """Skip on a user's machine; with CI=true a missing prerequisite fails the test."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def alab_argv(*args: str) -> list[str]:
    """The installed ``alab`` console script (or the module when it is not installed)."""
    command = [str(ALAB)] if ALAB.exists() else [sys.executable, "-m", "aws_lambda_artifact_builder"]
    return [*command, *args]


def alab(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        alab_argv(*args), capture_output=True, text=True, env=env or dict(os.environ), timeout=timeout
    )


# ---------------------------------------------------------------------------- the layer's history
@dataclasses.dataclass(frozen=True)
class History:
    """What Lambda and S3 hold for one layer recorded below one ``s3dir_lambda``."""

    #: Lambda version -> fingerprint from the version's description.
    versions: dict[int, str]
    #: Versions that have a versioned manifest in S3.
    manifests: dict[int, str]
    #: The version the ``last-`` record names (None when there is no record).
    recorded: int | None
    claim_left: bool


def _objects(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def check_history(
    *,
    s3_client: Any,
    lambda_client: Any,
    bucket: str,
    prefix: str,
    layer_name: str,
    manifest_name: str,
    settled: bool = True,
) -> History:
    """Assert what must hold whatever runs crashed or raced, and return the history.

    Always: every version is ours, no fingerprint was published twice, Lambda's CodeSha256 is the one
    described, every versioned manifest belongs to an existing version with the same facts, and the
    ``last-`` record names an existing version, agreeing with its versioned manifest.
    ``settled`` (every run finished, none is killed mid-way): every version is recorded in S3, the
    ``last-`` record names the newest one, and no deploy claim is left behind.
    """
    try:
        listed = lambda_client.list_layer_versions(LayerName=layer_name)["LayerVersions"]
    except lambda_client.exceptions.ResourceNotFoundException:
        listed = []
    versions: dict[int, str] = {}
    for item in listed:
        version = int(item["Version"])
        got = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=version)
        described = parse_layer_description(got.get("Description"))
        assert described is not None, f"version {version} was not published by this tool: {got.get('Description')!r}"
        fingerprint, code_sha256 = described
        assert got["Content"]["CodeSha256"] == code_sha256, (
            f"version {version}: CodeSha256 differs from its description"
        )
        versions[version] = fingerprint
    assert len(set(versions.values())) == len(versions), f"a fingerprint was published twice: {versions}"

    layer_prefix = f"{prefix}layer/"
    keys = _objects(s3_client, bucket, layer_prefix)
    manifests: dict[int, str] = {}
    for key in keys:
        rest = key[len(layer_prefix) :]
        folder, _, name = rest.partition("/")
        if not name or folder == "artifacts":  # the artifact store (one zip per fingerprint), not a record
            continue
        if folder.isdigit() and name in (SBOM_NAME, PROVENANCE_NAME):  # a version's evidence, beside its record
            continue
        assert folder.isdigit() and name == manifest_name, f"unexpected object {key}"
        version = int(folder)
        meta = s3_client.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert version in versions, f"{key} records version {version}, which Lambda does not have"
        assert int(meta["layer-version"]) == version and meta["layer-name"] == layer_name, (key, meta)
        assert meta["fingerprint"] == versions[version], f"{key}: fingerprint differs from the version's description"
        manifests[version] = meta["fingerprint"]

    recorded = None
    last_key = f"{layer_prefix}last-{manifest_name}"
    if last_key in keys:
        last = s3_client.get_object(Bucket=bucket, Key=last_key)
        meta = last["Metadata"]
        recorded = int(meta["layer-version"])
        assert recorded in manifests, f"the record names version {recorded}, which has no versioned manifest"
        assert meta["fingerprint"] == versions[recorded]
        versioned = s3_client.get_object(Bucket=bucket, Key=f"{layer_prefix}{recorded:06d}/{manifest_name}")
        assert last["Body"].read() == versioned["Body"].read(), "the record and its versioned manifest differ"
    claim_left = f"{layer_prefix}deploy-claim.json" in keys
    history = History(versions=versions, manifests=manifests, recorded=recorded, claim_left=claim_left)
    if settled:
        assert sorted(manifests) == sorted(versions), f"versions without a versioned manifest: {history}"
        assert recorded == (max(versions) if versions else None), f"the record is not on the newest version: {history}"
        assert not claim_left, "a finished deploy left its claim behind"
    return history


# ---------------------------------------------------------------------------- secrets
@dataclasses.dataclass(frozen=True)
class Canary:
    """A password that must never be seen: it is searched for raw, URL-encoded and inside a basic-auth header."""

    username: str
    password: str

    def forms(self) -> list[bytes]:
        basic = base64.b64encode(f"{self.username}:{self.password}".encode())
        return [self.password.encode(), quote(self.password, safe="").encode(), quote(self.password).encode(), basic]

    def find(self, data: bytes | str) -> list[bytes]:
        blob = data.encode("utf-8", "replace") if isinstance(data, str) else data
        return [form for form in self.forms() if form in blob]


@dataclasses.dataclass
class Exposure:
    """Everything one scenario exposed, by where it came from, and what was scanned."""

    canary: Canary
    leaks: list[str] = dataclasses.field(default_factory=list)
    #: Number of distinct things (texts, files, objects, argv lists) scanned.
    scanned: int = 0
    #: Every command line seen in /proc while the scenario ran (to check the watch saw the installers).
    cmdlines: list[str] = dataclasses.field(default_factory=list)

    def scan(self, where: str, data: bytes | str) -> None:
        self.scanned += 1
        if self.canary.find(data):
            self.leaks.append(where)
        blob = data if isinstance(data, bytes) else b""
        if blob[:4] == b"PK\x03\x04":  # a zip: its members are compressed, scan them too
            try:
                with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                    for name in zf.namelist():
                        self.scan(f"{where}!{name}", zf.read(name))
            except zipfile.BadZipFile:
                pass

    def scan_files(self, root: Path, *, since: float | None = None, max_bytes: int = 64 << 20) -> None:
        """Every file below ``root`` (modified at or after ``since`` when given)."""
        if not root.exists():
            return
        for path in _walk(root):
            try:
                stat = path.stat()
                if since is not None and stat.st_mtime < since:
                    continue
                if stat.st_size > max_bytes:
                    continue
                data = path.read_bytes()
            except OSError:
                continue  # a file another process removed meanwhile, or one we may not read
            self.scan(str(path), data)

    def scan_bucket(self, s3_client: Any, bucket: str) -> None:
        """Every object's body, metadata and headers."""
        for key in _objects(s3_client, bucket, ""):
            obj = s3_client.get_object(Bucket=bucket, Key=key)
            self.scan(f"s3://{bucket}/{key}", obj["Body"].read())
            headers = {k: v for k, v in obj.items() if k not in ("Body", "ResponseMetadata")}
            self.scan(f"s3://{bucket}/{key} (metadata)", repr(headers))

    def scan_lambda(self, lambda_client: Any) -> None:
        for layer in lambda_client.list_layers()["Layers"]:
            for version in lambda_client.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]:
                got = lambda_client.get_layer_version(LayerName=layer["LayerName"], VersionNumber=version["Version"])
                got.pop("ResponseMetadata", None)
                self.scan(f"lambda {layer['LayerName']}:{version['Version']}", repr(got))

    def assert_clean(self) -> None:
        assert self.scanned > 0
        assert not self.leaks, f"the canary password leaked into: {self.leaks}"


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, _dirnames, filenames in os.walk(root, onerror=lambda _e: None):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path
