"""The cross-cutting reliability suite: every front end (API, CLI, Pulumi engine harness, Terraform)
driven the same way against the same real servers.

The Pulumi and Terraform harnesses live beside their own tests; this folder puts them on the path and
starts their processes with the same settings those tests use.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DIR_TESTS = Path(__file__).resolve().parent.parent
for _harness_dir in (DIR_TESTS / "pulumi", DIR_TESTS / "terraform"):
    if str(_harness_dir) not in sys.path:
        sys.path.insert(0, str(_harness_dir))

from pulumi_engine_harness import DynamicProviderServer, Registration, Stack, run_program  # noqa: E402
from reliability_helpers import need  # noqa: E402
from support.servers import MotoServer  # noqa: E402
from terraform_harness import AWS_PROVIDER_MIRROR, run_alab  # noqa: E402


# ---------------------------------------------------------------------------- Pulumi
@pytest.fixture()
def open_stack(tmp_path: Path, aws: MotoServer) -> Iterator[Callable[[], Stack]]:
    """``open_stack()`` → a stack with its own dynamic provider process, configured for the moto server."""
    servers: list[DynamicProviderServer] = []
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")}
    env["ALAB_VERBOSE"] = "1"  # every detail line, as the CLI runs here with -v: builds are counted by them
    config = {"aws:region": "us-east-1", "alab:endpointUrl": aws.endpoint_url}

    def open_() -> Stack:
        server = DynamicProviderServer.start(tmp_path / f"pulumi-provider-{len(servers)}", env=env)
        servers.append(server)
        return Stack(server, dict(config))

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


# ---------------------------------------------------------------------------- Terraform
@pytest.fixture(scope="session")
def terraform_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``alab terraform install --dev-overrides`` writes: terraform then loads our provider offline."""
    need(shutil.which("terraform") is not None, "the terraform binary is not on PATH")
    need(
        (AWS_PROVIDER_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
        f"no hashicorp/aws in the filesystem mirror {AWS_PROVIDER_MIRROR} (set ALAB_TERRAFORM_PLUGIN_MIRROR)",
    )
    root = tmp_path_factory.mktemp("reliability-terraform")
    path = root / "terraform.rc"
    result = run_alab(
        "terraform",
        "install",
        "--dir",
        str(root / "mirror"),
        "--dev-overrides",
        "--offline-mirror",
        str(AWS_PROVIDER_MIRROR),
        "--cli-config",
        str(path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return path
