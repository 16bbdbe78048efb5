"""Index credentials are a Pulumi secret: never in outputs, state plaintext, logs or the pickled provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dill
from aws_lambda_artifact_builder.api import Credentials
from aws_lambda_artifact_builder.pulumi_provider import LambdaLayerProvider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi_engine_harness import Registration, Stack, from_struct, to_struct


def secret_forms(password: str) -> list[bytes]:
    """The password as it could leak: raw, URL-encoded (inside an index URL), and encoded for JSON."""
    return [password.encode(), quote(password, safe="").encode(), quote(password).encode()]


def test_pickled_provider_captures_no_secret_and_no_client(
    declare_layer: Callable[..., Registration], project_copy: Callable[[str], Path], credentials: Credentials
) -> None:
    args = {
        "layer_name": "deps",
        "path_pyproject_toml": str(project_copy("uv")),
        "s3dir_lambda": "s3://some-bucket/lambda/",
        "tool": "uv",
    }
    goal = declare_layer(credentials=credentials, **args)
    # The credentials are registered as a secret input, the provider as a (secret) pickle.
    assert rpc.is_rpc_secret(goal.inputs["credentials"])
    assert rpc.is_rpc_secret(goal.inputs["__provider"])
    pickled = goal.pickled_provider
    for form in secret_forms(credentials.password):
        assert form not in pickled
    assert b"boto" not in pickled and b"Session" not in pickled
    provider = dill.loads(pickled)
    assert isinstance(provider, LambdaLayerProvider)
    assert vars(provider) == {"region": None, "endpoint_url": None}
    # Other credentials give the same pickle: nothing of them is captured.
    other = dataclasses.replace(credentials, password="another-secret")
    assert declare_layer(credentials=other, **args).pickled_provider == pickled


def test_no_response_state_or_log_carries_the_password(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    bucket: str,
    provider_env: dict[str, str],
) -> None:
    provider_env["ALAB_VERBOSE"] = "1"  # every detail line the provider can print is checked too
    args = {
        "layer_name": f"{bucket}-deps",
        "path_pyproject_toml": str(project_copy("uv")),
        "s3dir_lambda": f"s3://{bucket}/lambda/app/",
        "tool": "uv",
        "credentials": credentials,
    }
    stack = open_stack()
    checkpoints = []
    stack.preview(declare_layer(**args))
    stack.up(declare_layer(**args))
    checkpoints.append(stack.state.checkpoint_json())
    stack.up(declare_layer(keep_last=5, **args))  # an Update
    checkpoints.append(stack.state.checkpoint_json())
    stack.preview(declare_layer(keep_last=5, **args))  # a Diff
    stack.refresh()
    checkpoints.append(stack.state.checkpoint_json())
    stack.destroy()

    methods = {e.method for e in stack.server.transcript}
    assert methods == {"Configure", "Check", "Diff", "Create", "Update", "Read", "Delete"}
    forms = secret_forms(credentials.password)
    for exchange in stack.server.transcript:
        if exchange.method == "Check":
            # Check hands the inputs back to the engine, which re-marks `credentials` secret (annotateSecrets);
            # anywhere else in the response the password would be plaintext.
            response = exchange.response
            assert isinstance(response, provider_pb2.CheckResponse)
            inputs = from_struct(response.inputs)
            assert inputs.pop("credentials")["password"] == credentials.password
            payload = provider_pb2.CheckResponse(
                inputs=to_struct(inputs), failures=response.failures
            ).SerializeToString()
        else:
            payload = exchange.response_bytes()
        for form in forms:
            assert form not in payload, f"{exchange.method} response carries the password"
        if exchange.method in ("Create", "Update", "Read"):
            assert "credentials" not in from_struct(exchange.response.properties)  # type: ignore[union-attr]
    for checkpoint in checkpoints:
        for form in forms:
            assert form.decode() not in checkpoint
        assert credentials.username not in checkpoint  # the whole credentials input is sealed
    log = stack.server.log_text()
    assert "[build] installing" in log and "--- uv pip install" in log, log  # the installer's own lines
    for form in forms:
        assert form.decode() not in log


def test_credentials_in_state_are_secret(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    bucket: str,
) -> None:
    args: dict[str, Any] = {
        "layer_name": f"{bucket}-deps",
        "path_pyproject_toml": str(project_copy("uv")),
        "s3dir_lambda": f"s3://{bucket}/lambda/app/",
        "tool": "uv",
        "credentials": credentials,
    }
    stack = open_stack()
    stack.up(declare_layer(**args))
    assert rpc.is_rpc_secret(stack.state.inputs["credentials"])
    assert "credentials" not in stack.state.outputs
