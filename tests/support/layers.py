"""Helpers for the plan/deploy tests: what was requested, and what S3 and Lambda hold afterwards."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

from aws_lambda_artifact_builder.api import LayerPathLayout


@dataclasses.dataclass
class RequestLog:
    """Every API call the given boto3 clients make, as ``"s3.GetObject"``, in order."""

    calls: list[str] = dataclasses.field(default_factory=list)
    #: The body bytes each answer carried (its Content-Length), as ``("s3.GetObject", 1)``, in order.
    received: list[tuple[str, int]] = dataclasses.field(default_factory=list)

    @classmethod
    def attach(cls, *clients: Any) -> RequestLog:
        log = cls()
        for client in clients:
            client.meta.events.register("before-call", log._record)
            client.meta.events.register("after-call", log._received)
        return log

    def _record(self, model: Any, **_kwargs: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    def _received(self, model: Any, http_response: Any, **_kwargs: Any) -> None:
        size = int(http_response.headers.get("Content-Length", 0))
        self.received.append((f"{model.service_model.service_name}.{model.name}", size))

    def writes(self) -> list[str]:
        """Calls that change state in S3 or Lambda."""
        readers = ("Get", "Head", "List")
        return [c for c in self.calls if not c.split(".", 1)[1].startswith(readers)]


def s3_snapshot(s3_client: Any, bucket: str) -> dict[str, tuple[str, str]]:
    """Every object's (ETag, LastModified), to prove a run wrote nothing."""
    found: dict[str, tuple[str, str]] = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["ETag"], obj["LastModified"].isoformat())
    return found


def layer_versions(lambda_client: Any, layer_name: str) -> list[int]:
    try:
        response = lambda_client.list_layer_versions(LayerName=layer_name)
    except lambda_client.exceptions.ResourceNotFoundException:
        return []
    return sorted(int(v["Version"]) for v in response["LayerVersions"])


def all_layer_versions(lambda_client: Any) -> dict[str, list[int]]:
    return {
        layer["LayerName"]: layer_versions(lambda_client, layer["LayerName"])
        for layer in lambda_client.list_layers()["Layers"]
    }


def write_test_zip(path_pyproject_toml: Path, content: str = "VALUE = 1\n") -> Path:
    """A small layer zip where the package stage would put it (for publish tests that skip the build)."""
    path = LayerPathLayout(path_pyproject_toml=path_pyproject_toml).path_build_lambda_layer_zip
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("python/sample_layer_module.py", date_time=(2020, 1, 1, 0, 0, 0)), content)
    path.write_bytes(buf.getvalue())
    return path
