"""A Lambda function whose dependencies ship as a layer that is published only when its lock changes.

Run from the repository root (Pulumi.yaml points here); tests/pulumi/test_pulumi_cli.py runs exactly
this with the real `pulumi` CLI against a local AWS endpoint:

    pulumi config set bucket my-artifacts-bucket      # an existing bucket, shared by every stack
    pulumi preview --diff                             # reads one S3 record, builds nothing
    pulumi up                                         # builds and publishes only when it changed

The default app, examples/sample_app_pypi, depends on requests and is locked by uv against PyPI. Your own
project: `pulumi config set pathPyprojectToml …`, `tool`, `functionCodeDir` and `handler`. A private index:
`pulumi config set indexUrl …`, `indexUsername …` and `pulumi config set --secret indexPassword` (read from
stdin). The tests also deploy examples/sample_app (locked for pip, from the tests' private index) this way.

`pulumi preview --diff` shows `~ packages: { alab-demo-core: "1.0.0" => "1.1.0" }` (the target's runtime
pins, read from the lock by this program) and `fingerprint: "old" => "new"` when the locked dependencies
changed. Stacks that point at the same bucket and `s3dirLambda` share the record: a stack whose
dependencies another stack already published adopts that version instead of publishing it again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
from aws_lambda_artifact_builder.api import Credentials
from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer

DIR_HERE = Path(__file__).resolve().parent
DIR_SAMPLE_APP = DIR_HERE.parent / "sample_app_pypi"

config = pulumi.Config()
app_name = config.get("appName") or "sample-app"
bucket = config.require("bucket")
python_version = config.get("pythonVersion") or "3.12"
architecture = config.get("architecture") or "x86_64"
path_pyproject_toml = config.get("pathPyprojectToml") or str(DIR_SAMPLE_APP / "pyproject.toml")
dir_function_code = Path(config.get("functionCodeDir") or DIR_SAMPLE_APP / "sample_app_pypi")

credentials: pulumi.Output[Credentials] | None = None
index_password = config.get_secret("indexPassword")
if index_password is not None:
    index_name = config.get("indexName") or "private"
    index_url = config.require("indexUrl")
    index_username = config.require("indexUsername")
    credentials = pulumi.Output.all(index_password).apply(
        lambda values: Credentials(
            index_name=index_name, index_url=index_url, username=index_username, password=values[0]
        )
    )

layer = LambdaLayer(
    f"{app_name}-deps",
    layer_name=f"{app_name}-deps",
    path_pyproject_toml=path_pyproject_toml,
    s3dir_lambda=config.get("s3dirLambda") or f"s3://{bucket}/lambda/{app_name}/",
    tool=config.get("tool") or "uv",
    build_in=config.get("buildIn") or "local",
    python_version=python_version,
    architecture=architecture,
    credentials=credentials,
    keep_last=config.get_int("keepLast"),
    delete_on_destroy=config.get_bool("deleteOnDestroy") or False,
)

# `pulumi config set function false` deploys the layer alone (no pulumi-aws plugin needed).
if config.get_bool("function") is not False:
    import pulumi_aws as aws

    role = aws.iam.Role(
        f"{app_name}-function",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    aws.iam.RolePolicyAttachment(
        f"{app_name}-logs",
        role=role.name,
        policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    )

    function = aws.lambda_.Function(
        app_name,
        role=role.arn,
        runtime=f"python{python_version}",
        architectures=[architecture],
        handler=config.get("handler") or "sample_app_pypi.handler.lambda_handler",
        # The function ships only its own code; its dependencies come from the layer.
        code=pulumi.AssetArchive({dir_function_code.name: pulumi.FileArchive(str(dir_function_code))}),
        layers=[layer.layer_version_arn],
        timeout=10,
    )
    pulumi.export("function_name", function.name)

pulumi.export("layer_arn", layer.layer_arn)
pulumi.export("layer_version", layer.layer_version)
pulumi.export("layer_version_arn", layer.layer_version_arn)
pulumi.export("packages", layer.packages)
