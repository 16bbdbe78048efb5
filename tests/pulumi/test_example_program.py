"""examples/pulumi runs as a program (under mocks): its function uses the layer's version ARN."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from aws_lambda_artifact_builder.api import Credentials
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi_engine_harness import run_program

DIR_REPO = Path(__file__).resolve().parent.parent.parent
PROGRAM = DIR_REPO / "examples" / "pulumi" / "__main__.py"
LAYER_TYPE = "pulumi-python:dynamic/aws_lambda_artifact_builder:LambdaLayer"
VERSION_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:sample-app-deps:7"


class ExampleMocks(pulumi_mocks.Mocks):
    """Answers as the providers would after an up: the layer at version 7, a role with an ARN."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == LAYER_TYPE:
            outputs.update(layer_version=7, layer_version_arn=VERSION_ARN, layer_arn=VERSION_ARN.rsplit(":", 1)[0])
        elif args.typ == "aws:iam/role:Role":
            outputs.update(name=args.name, arn=f"arn:aws:iam::123456789012:role/{args.name}")
        elif args.typ == "aws:lambda/function:Function":
            outputs.update(name=args.name)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def test_example_wires_the_layer_into_the_function(
    project_copy: Callable[[str], Path], credentials: Credentials
) -> None:
    path_pyproject = project_copy("uv")
    pulumi.runtime.set_all_config(
        {
            "alab-example:bucket": "shared-artifacts",
            "alab-example:pathPyprojectToml": str(path_pyproject),
            "alab-example:tool": "uv",
            "alab-example:indexUrl": credentials.index_url,
            "alab-example:indexUsername": credentials.username,
            "alab-example:indexPassword": credentials.password,
        },
        ["alab-example:indexPassword"],
    )
    exports: dict[str, Any] = {}
    try:
        registrations = run_program(
            lambda: runpy.run_path(str(PROGRAM)),
            project="alab-example",
            preview=False,
            mocks=ExampleMocks(),
            exports=exports,
        )
    finally:
        pulumi.runtime.set_all_config({})
    by_type = {r.type: r for r in registrations}
    layer = by_type[LAYER_TYPE]
    assert layer.inputs["layer_name"] == "sample-app-deps"
    assert layer.inputs["s3dir_lambda"] == "s3://shared-artifacts/lambda/sample-app/"
    assert layer.inputs["path_pyproject_toml"] == str(path_pyproject)
    assert len(layer.inputs["fingerprint"]) == 64  # computed by the program at declaration
    assert rpc.is_rpc_secret(layer.inputs["credentials"])
    assert rpc.unwrap_rpc_secret(layer.inputs["credentials"])["password"] == credentials.password

    function = by_type["aws:lambda/function:Function"]
    assert function.inputs["layers"] == [VERSION_ARN]
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["architectures"] == ["x86_64"]
    assert function.inputs["handler"] == "sample_app_pypi.handler.lambda_handler"
    archive = function.inputs["code"]
    assert isinstance(archive, pulumi.AssetArchive) and list(archive.assets) == ["sample_app_pypi"]
    assert Path(archive.assets["sample_app_pypi"].path, "handler.py").is_file()

    assert exports["layer_version"] == 7
    assert exports["layer_version_arn"] == VERSION_ARN
    assert exports["layer_arn"] == VERSION_ARN.rsplit(":", 1)[0]
    assert exports["function_name"] == "sample-app"


def test_pulumi_yaml_runs_the_example_with_the_repository_virtualenv() -> None:
    import yaml

    project = yaml.safe_load((DIR_REPO / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["main"] == "examples/pulumi"
    assert (DIR_REPO / project["main"] / "__main__.py") == PROGRAM
    venv = project["runtime"]["options"]["virtualenv"]
    # The program resolves the virtualenv from the root, the dynamic provider plugin from `main`: both must work.
    from_root, from_main = DIR_REPO / venv, DIR_REPO / project["main"] / venv
    assert from_main.resolve() == from_root.resolve()
    assert (from_root / "bin" / "python").exists()


def test_both_sample_apps_have_a_lock_the_program_reads() -> None:
    """The offline app (pip lock of the tests' index packages) and the real-PyPI variant (uv.lock)."""
    from aws_lambda_artifact_builder.pulumi_provider import _declared_packages

    offline = _declared_packages(str(DIR_REPO / "examples" / "sample_app" / "pyproject.toml"), "pip", "3.12", "x86_64")
    assert offline == {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}
    pypi = _declared_packages(str(DIR_REPO / "examples" / "sample_app_pypi" / "pyproject.toml"), "uv", "3.12", "x86_64")
    assert pypi is not None and pypi["requests"] == "2.32.3"
    assert {"certifi", "charset-normalizer", "idna", "urllib3"} <= set(pypi)  # requests' own dependencies
    assert "pytest" not in pypi  # the dev group never reaches the layer
