"""Drive the real ``terraform`` binary, offline, against the moto server.

The provider comes from ``alab terraform install`` (run as a subprocess, exactly as a user runs it) with
``--dev-overrides`` and hashicorp/aws from the preinstalled filesystem mirror. Every command's output,
Terraform's trace log, the state files and saved plans are kept so a test can scan them for secrets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.servers import MotoServer
from terraform_harness import AWS_PROVIDER_MIRROR, DIR_EXAMPLE, DIR_LAYER_ONLY, Terraform, run_alab, working_dir

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(condition: bool, reason: str) -> None:
    """Skip on a user's machine; in CI a missing prerequisite is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    found = shutil.which("terraform")
    _need(found is not None, "the terraform binary is not on PATH (these tests run the real terraform 1.11+)")
    assert found is not None
    _need(
        (AWS_PROVIDER_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
        f"no hashicorp/aws in the filesystem mirror {AWS_PROVIDER_MIRROR} (set ALAB_TERRAFORM_PLUGIN_MIRROR)",
    )
    return found


@pytest.fixture(scope="session")
def cli_config(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI configuration ``alab terraform install --dev-overrides`` writes for this virtualenv."""
    root = tmp_path_factory.mktemp("terraform-install")
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
    assert f"export TF_CLI_CONFIG_FILE={path}" in result.stdout
    return path


@pytest.fixture()
def example_terraform(terraform_bin: str, cli_config: Path, aws: MotoServer, tmp_path: Path) -> Terraform:
    """A copy of examples/terraform (alab_layer + aws_lambda_function); AWS is the moto server."""
    return working_dir(DIR_EXAMPLE, terraform_bin, cli_config, tmp_path / "example")


@pytest.fixture()
def layer_terraform(terraform_bin: str, cli_config: Path, aws: MotoServer, tmp_path: Path) -> Terraform:
    """A copy of tests/terraform/layer_only: alab_layer alone, for fast scenarios."""
    return working_dir(DIR_LAYER_ONLY, terraform_bin, cli_config, tmp_path / "layer-only")
