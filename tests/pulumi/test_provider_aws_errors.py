"""No AWS credentials or no region reach a Pulumi user as one line naming the fix, never botocore's text.

The provider runs in its own process (as the engine starts it) with the environment a user without
credentials, or without a region, has; the moto server stands in for AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import Credentials
from pulumi_engine_harness import DynamicProviderServer, ProviderError, Registration, Stack
from support.servers import MotoServer

#: The variables through which botocore finds credentials, unset: it finds none.
NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
NO_REGION = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": "/nonexistent"}
BOTOCORE_WORDS = ("botocore", "NoCredentialsError", "NoRegionError", "Unable to locate credentials", "Traceback")


@pytest.fixture()
def start_stack(tmp_path: Path, aws: MotoServer) -> Iterator[Callable[..., Stack]]:
    """``start_stack(env_changes, region=...)`` → a stack whose provider process has that environment."""
    servers: list[DynamicProviderServer] = []

    def start(changes: dict[str, str | None], *, region: str | None = "us-east-1") -> Stack:
        env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")}
        for name, value in changes.items():
            env.pop(name, None)
            if value is not None:
                env[name] = value
        server = DynamicProviderServer.start(tmp_path / f"provider-{len(servers)}", env=env)
        servers.append(server)
        config: dict[str, Any] = {"alab:endpointUrl": aws.endpoint_url}
        if region is not None:
            config["aws:region"] = region
        return Stack(server, config)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture()
def layer_args(project_copy: Callable[[str], Path], bucket: str, credentials: Credentials) -> dict[str, Any]:
    return {
        "layer_name": f"{bucket}-deps",
        "path_pyproject_toml": str(project_copy("uv")),
        "s3dir_lambda": f"s3://{bucket}/lambda/app/",
        "tool": "uv",
        "credentials": credentials,
    }


def _assert_one_line_naming(stack: Stack, error: ProviderError, layer_name: str, fix: str) -> None:
    """The provider's diagnostic is one line naming the layer and the fix; nothing of botocore anywhere."""
    lines = [line for line in stack.server.log_text().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and f"layer {layer_name!r} was not deployed" in lines[0], stack.server.log_text()
    assert fix in lines[0] and fix in error.details, (lines, error.details)
    for word in BOTOCORE_WORDS:
        assert word not in lines[0] and word not in error.details.splitlines()[-1], error.details


@pytest.mark.parametrize(
    ("changes", "region", "fix"),
    [
        (NO_CREDENTIALS, "us-east-1", "no AWS credentials found: set AWS_PROFILE"),
        (NO_REGION, None, "no AWS region set: set AWS_REGION"),
    ],
    ids=["no credentials", "no region"],
)
def test_an_up_without_credentials_or_region_fails_with_one_line_naming_the_fix(
    changes: dict[str, str | None],
    region: str | None,
    fix: str,
    start_stack: Callable[..., Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
) -> None:
    stack = start_stack(changes, region=region)
    with pytest.raises(ProviderError) as info:
        stack.up(declare_layer(**layer_args))
    assert info.value.method == "Create"
    _assert_one_line_naming(stack, info.value, layer_args["layer_name"], fix)
    assert stack.state is None


def test_a_preview_without_credentials_is_an_aws_error_naming_the_fix(
    start_stack: Callable[..., Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
) -> None:
    """The preview of an existing layer plans (Diff): without credentials, the plan's S3 GET says what to set."""
    with_credentials = start_stack({})
    with_credentials.up(declare_layer(**layer_args))
    without = start_stack(NO_CREDENTIALS)
    without.state = with_credentials.state
    with pytest.raises(ProviderError) as info:
        without.preview(declare_layer(**layer_args))
    assert info.value.method == "Diff"
    last = info.value.details.strip().splitlines()[-1]
    assert "no AWS credentials found: set AWS_PROFILE" in last, info.value.details
    for word in BOTOCORE_WORDS:
        assert word not in last, info.value.details
