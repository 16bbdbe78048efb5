"""Fixtures for driving the real dynamic provider server like the Pulumi engine does."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi_cli import SKIP_REASON, find_pulumi
from pulumi_engine_harness import DynamicProviderServer, Registration, Stack, run_program
from support.servers import MotoServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    """The real `pulumi` CLI: with CI=true it must be there (.ci/run installs it); elsewhere its absence skips."""
    found = find_pulumi()
    if found is None:
        if IN_CI:
            pytest.fail(SKIP_REASON)
        pytest.skip(SKIP_REASON)
    return found


@pytest.fixture()
def provider_env(aws: MotoServer) -> dict[str, str]:
    """The provider's environment without AWS endpoint and region: they come from Configure."""
    drop = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture()
def stack_config(aws: MotoServer) -> dict[str, Any]:
    """Stack configuration as the engine sends it to a dynamic provider: every key, namespaced."""
    return {"aws:region": "us-east-1", "alab:endpointUrl": aws.endpoint_url, "alab-test:unrelated": "x"}


@pytest.fixture()
def open_stack(
    tmp_path: Path, provider_env: dict[str, str], stack_config: dict[str, Any]
) -> Iterator[Callable[..., Stack]]:
    """``open_stack()`` → a stack backed by its own provider process, as each CLI run starts one."""
    servers: list[DynamicProviderServer] = []

    def open_() -> Stack:
        server = DynamicProviderServer.start(tmp_path / f"provider-{len(servers)}", env=provider_env)
        servers.append(server)
        return Stack(server, dict(stack_config))

    yield open_
    for server in servers:
        server.stop()


@pytest.fixture()
def declare_layer() -> Callable[..., Registration]:
    """``declare_layer(stack=..., **LambdaLayer kwargs)`` → what the real constructor registers."""
    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer

    def declare(*, stack: str = "dev", resource_name: str = "deps", **kwargs: Any) -> Registration:
        (registration,) = run_program(lambda: LambdaLayer(resource_name, **kwargs), stack=stack)
        return registration

    return declare
