"""One Lambda layer per region from one build: a `LambdaLayer` per region sharing an artifact store.

Each region has its own bucket (Lambda reads a layer's zip only from a bucket in its own region),
named `<bucketPrefix>-<region>`; the store lives in the first region's bucket. The first create that
needs the lock's fingerprint builds it into the store, every other region copies the stored zip:
one build, the same CodeSha256 in every region. tests/pulumi/test_provider_scenarios.py runs this
program and drives both creates through the provider (side by side, as `pulumi up` does):

    pulumi config set bucketPrefix my-layers                   # buckets my-layers-us-east-1, my-layers-eu-west-1
    pulumi config set --path 'regions[0]' us-east-1            # default: us-east-1 and eu-west-1
    pulumi config set --path 'regions[1]' eu-west-1
    pulumi config set pathPyprojectToml path/to/pyproject.toml
    pulumi config set tool uv
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

layers = {
    region: LambdaLayer(
        f"{app_name}-deps-{region}",
        layer_name=f"{app_name}-deps",
        path_pyproject_toml=config.require("pathPyprojectToml"),
        tool=config.get("tool") or "uv",
        region=region,
        s3dir_lambda=f"s3://{prefix}-{region}/lambda/{app_name}/",
        artifact_store=store,
        credentials=credentials,
    )
    for region in regions
}
pulumi.export("layer_version_arns", {region: layer.layer_version_arn for region, layer in layers.items()})
pulumi.export("code_sha256", {region: layer.code_sha256 for region, layer in layers.items()})
