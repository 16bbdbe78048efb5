"""One Lambda layer per region and account from one build: a `LambdaLayer` per target sharing an artifact store.

Each region has its own bucket (Lambda reads a layer's zip only from a bucket in its own region),
named `<bucketPrefix>-<region>`; the store lives in the first region's bucket. The first create that
needs the lock's fingerprint builds it into the store, every other region copies the stored zip:
one build, the same CodeSha256 in every region. Run it from this folder (its Pulumi.yaml uses the
repository's virtualenv); tests/pulumi/test_pulumi_regions_cli.py does so with the real `pulumi` CLI
(`pulumi up` of two regions: one build; a second stack: none), test_provider_scenarios.py through the provider:

    cd examples/pulumi_regions && pulumi stack init dev
    pulumi config set bucketPrefix my-layers                   # buckets my-layers-us-east-1, my-layers-eu-west-1
    pulumi config set --path 'regions[0]' us-east-1            # default: us-east-1 and eu-west-1
    pulumi config set --path 'regions[1]' eu-west-1
    pulumi config set pathPyprojectToml path/to/pyproject.toml
    pulumi config set tool uv

Other accounts: `roleArns` lists IAM roles (`""` is the stack's own account, the default), and every
region is published in every account, as the CLI's `--region` × `--role-arn`. A role's layers live in
buckets `<bucketPrefix>-<account>-<region>` of its account; the store stays the stack's own:

    pulumi config set --path 'roleArns[0]' ''
    pulumi config set --path 'roleArns[1]' arn:aws:iam::222222222222:role/deployer
"""

from __future__ import annotations

import pulumi
from aws_lambda_artifact_builder.api import Credentials
from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer

config = pulumi.Config()
app_name = config.get("appName") or "sample-app"
prefix = config.require("bucketPrefix")
regions: list[str] = config.get_object("regions") or ["us-east-1", "eu-west-1"]
store = config.get("artifactStore") or f"s3://{prefix}-{regions[0]}/layer-store/"

credentials: pulumi.Output[Credentials] | None = None
index_password = config.get_secret("indexPassword")
if index_password is not None:
    index_url, index_username = config.require("indexUrl"), config.require("indexUsername")
    credentials = index_password.apply(
        lambda password: Credentials(
            index_name="private", index_url=index_url, username=index_username, password=password
        )
    )

role_arns: list[str] = config.get_object("roleArns") or [""]


def target(region: str, role_arn: str) -> str:
    """``us-east-1`` in the stack's own account, ``222222222222-eu-west-1`` in a role's."""
    return f"{role_arn.split(':')[4]}-{region}" if role_arn else region


layers = {
    target(region, role_arn): LambdaLayer(
        f"{app_name}-deps-{target(region, role_arn)}",
        layer_name=f"{app_name}-deps",
        path_pyproject_toml=config.require("pathPyprojectToml"),
        tool=config.get("tool") or "uv",
        region=region,
        role_arn=role_arn or None,
        s3dir_lambda=f"s3://{prefix}-{target(region, role_arn)}/lambda/{app_name}/",
        artifact_store=store,
        credentials=credentials,
    )
    for role_arn in role_arns
    for region in regions
}
pulumi.export("layer_version_arns", {name: layer.layer_version_arn for name, layer in layers.items()})
pulumi.export("code_sha256", {name: layer.code_sha256 for name, layer in layers.items()})
