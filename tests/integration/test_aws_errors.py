"""Without AWS credentials or a region, plan and deploy fail with one ``AwsError`` line naming the fix —
through the API and through the Terraform resource — never with botocore's exception or text.

The moto server stands in for AWS; the environment is the one a user without credentials (or without a
region) has, so botocore raises ``NoCredentialsError`` (``NoRegionError``) at the first call.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import AwsError, Credentials, deploy_layer, plan_layer
from aws_lambda_artifact_builder.terraform_provider.provider import AlabProvider
from aws_lambda_artifact_builder.terraform_provider.resource import LayerResource
from tf.utils import Diagnostics

NO_CREDENTIALS: dict[str, str | None] = {
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
NO_REGION: dict[str, str | None] = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": "/nonexistent"}
CASES = [(NO_CREDENTIALS, "no AWS credentials found: set AWS_PROFILE"), (NO_REGION, "no AWS region set")]
IDS = ["no credentials", "no region"]
BOTOCORE_WORDS = ("botocore", "NoCredentialsError", "NoRegionError", "Unable to locate credentials", "You must specify")


def _without(monkeypatch: pytest.MonkeyPatch, changes: dict[str, str | None]) -> None:
    for name, value in changes.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def _assert_one_line(text: str, fix: str) -> None:
    assert fix in text and "\n" not in text, text
    for word in BOTOCORE_WORDS:
        assert word not in text, text


@pytest.fixture()
def layer(aws: Any, bucket: str, project_copy: Callable[[str], Path]) -> dict[str, Any]:
    return {
        "layer_name": "errors-deps",
        "path_pyproject_toml": str(project_copy("uv")),
        "s3dir_lambda": f"s3://{bucket}/apps/errors/",
        "tool": "uv",
    }


@pytest.mark.parametrize(("changes", "fix"), CASES, ids=IDS)
def test_plan_without_credentials_or_region_is_one_aws_error_line(
    changes: dict[str, str | None], fix: str, layer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, changes)
    with pytest.raises(AwsError) as info:
        plan_layer(**layer)
    _assert_one_line(str(info.value), fix)
    assert info.value.fix and info.value.operation


@pytest.mark.parametrize(("changes", "fix"), CASES, ids=IDS)
def test_deploy_without_credentials_or_region_is_one_aws_error_line_and_builds_nothing(
    changes: dict[str, str | None],
    fix: str,
    layer: dict[str, Any],
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, changes)
    with pytest.raises(AwsError) as info:
        deploy_layer(**layer, credentials=credentials, verbose=False)
    _assert_one_line(str(info.value), fix)
    assert not (Path(layer["path_pyproject_toml"]).parent / "build" / "lambda" / "layer" / "layer.zip").exists()


@pytest.mark.parametrize(("changes", "fix"), CASES, ids=IDS)
def test_the_terraform_resource_shows_one_diagnostic_line_naming_the_fix(
    changes: dict[str, str | None],
    fix: str,
    layer: dict[str, Any],
    credentials: Credentials,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, changes)
    provider = AlabProvider()
    provider.endpoint_url = aws.endpoint_url
    provider.region = None if changes is NO_REGION else "us-east-1"
    resource = LayerResource(provider)
    planned = {**layer, "credentials": dataclasses.asdict(credentials)}

    plan_ctx = types.SimpleNamespace(diagnostics=Diagnostics())
    resource.plan(plan_ctx, None, dict(planned))  # type: ignore[arg-type]
    apply_diags = Diagnostics()
    assert resource._deploy(apply_diags, dict(planned), prior=None) is None
    for diags in (plan_ctx.diagnostics, apply_diags):
        (error,) = [d for d in diags.diagnostics if d.severity == "error"]
        _assert_one_line(error.detail, fix)
