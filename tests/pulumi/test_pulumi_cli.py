"""The real `pulumi` CLI through the Automation API, with a local file backend and a passphrase.

The Pulumi CLI cannot be installed in this environment, and CI has no `pulumi` binary either, so
this test skips there too: it is the one test allowed to skip with CI=true. The engine harness
(pulumi_engine_harness.py) drives the same provider server through every gRPC call the CLI makes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from aws_lambda_artifact_builder.api import Credentials
from support.servers import MotoServer

PULUMI = shutil.which("pulumi")

pytestmark = pytest.mark.skipif(
    PULUMI is None,
    reason="no `pulumi` binary on PATH: the Pulumi CLI cannot be installed here and CI has none either; "
    "tests/pulumi/test_provider_*.py drive the provider through the engine harness instead",
)


def test_automation_api_preview_up_noop_and_destroy(
    tmp_path: Path, aws: MotoServer, bucket: str, project_copy: Callable[[str], Path], credentials: Credentials
) -> None:
    from pulumi import automation as auto

    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer

    path_pyproject = project_copy("uv")
    layer_name = f"{bucket}-deps"

    def program() -> None:
        layer = LambdaLayer(
            "deps",
            layer_name=layer_name,
            path_pyproject_toml=str(path_pyproject),
            s3dir_lambda=f"s3://{bucket}/lambda/app/",
            tool="uv",
            credentials=credentials,
        )
        pulumi.export("layer_version", layer.layer_version)
        pulumi.export("layer_version_arn", layer.layer_version_arn)

    dir_backend = tmp_path / "backend"
    dir_backend.mkdir()
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PULUMI_BACKEND_URL": f"file://{dir_backend}",
        "PULUMI_CONFIG_PASSPHRASE": "alab-test-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # The dynamic provider plugin runs `python -m pulumi.dynamic`: it must be this virtualenv's Python.
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    stack = auto.create_or_select_stack(
        stack_name="dev",
        project_name="alab-automation-test",
        program=program,
        opts=auto.LocalWorkspaceOptions(work_dir=str(tmp_path), pulumi_home=str(tmp_path / "home"), env_vars=env),
    )
    stack.set_config("aws:region", auto.ConfigValue("us-east-1"))
    stack.set_config("alab:endpointUrl", auto.ConfigValue(aws.endpoint_url))

    preview = stack.preview(diff=True)
    assert preview.change_summary.get(auto.OpType.CREATE) == 2  # the stack and the layer
    assert not s3_keys(aws, bucket)

    up = stack.up()
    assert up.outputs["layer_version"].value == 1
    arn = up.outputs["layer_version_arn"].value

    noop = stack.preview(diff=True)
    assert noop.change_summary.get(auto.OpType.SAME) == 2
    assert set(noop.change_summary) == {auto.OpType.SAME}

    state = json.dumps(stack.export_stack().deployment)
    assert credentials.password not in state
    assert arn in state

    stack.destroy()
    versions = boto_lambda(aws).list_layer_versions(LayerName=layer_name)["LayerVersions"]
    assert [v["Version"] for v in versions] == [1]  # retained by default
    stack.workspace.remove_stack("dev")


def s3_keys(aws: MotoServer, bucket: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def boto_lambda(aws: MotoServer):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name="us-east-1")
