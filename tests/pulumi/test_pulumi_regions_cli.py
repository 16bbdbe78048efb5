"""examples/pulumi_regions under the real `pulumi` CLI and engine, with the example's own Pulumi.yaml.

The program runs inline (Automation API, see pulumi_cli.py: the Python language host cannot be built
here); the CLI, the engine, the project file's config schema and the dynamic provider plugin are the
real ones. The provider runs with ALAB_VERBOSE=1, so every build prints `[build] installing` among the
stack's diagnostics (test_pulumi_cli_diagnostics.py): builds are counted by that line in the
"Diagnostics:" section of `pulumi up` (its progress view shows each line once more).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_artifact_builder.api import Credentials
from pulumi_cli import DIR_REPO, PulumiProject
from support.servers import MotoServer

DIR_EXAMPLE = DIR_REPO / "examples" / "pulumi_regions"
REGIONS = ("us-east-1", "eu-west-1")
BUILD_LINE = "[build] installing"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "ALAB_VERBOSE": "1"}


def example_project(pulumi_bin: Path, dir_root: Path) -> PulumiProject:
    """The example's Pulumi.yaml (name, config schema) with this virtualenv, and its program run inline."""
    text = (DIR_EXAMPLE / "Pulumi.yaml").read_text()
    name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("name:"))
    program: Callable[[], None] = lambda: runpy.run_path(str(DIR_EXAMPLE / "__main__.py"), run_name="__main__") and None  # noqa: E731
    project = PulumiProject.create(pulumi_bin, dir_root, name=name, program=program, extra_env=AWS_ENV)
    assert "virtualenv: ../../.venv" in text  # the repository's, from the example's folder
    venv = Path(sys.executable).parent.parent
    (project.dir_work / "Pulumi.yaml").write_text(text.replace("virtualenv: ../../.venv", f"virtualenv: {venv}"))
    return project


def versions(region: str, layer: str, endpoint_url: str) -> list[dict[str, Any]]:
    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint_url)
    listed = client.list_layer_versions(LayerName=layer)["LayerVersions"]
    return [client.get_layer_version(LayerName=layer, VersionNumber=v["Version"]) for v in listed]


def test_pulumi_up_of_the_regions_example_builds_once_and_a_second_stack_builds_nothing(
    pulumi_bin: Path, tmp_path: Path, aws: MotoServer, credentials: Credentials, project_copy: Any
) -> None:
    prefix = "alab-pulregions"
    for region in REGIONS:
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        boto3.client("s3", region_name=region, endpoint_url=aws.endpoint_url).create_bucket(
            Bucket=f"{prefix}-{region}", **where
        )
    path = project_copy("uv")
    project = example_project(pulumi_bin, tmp_path / "pulumi")
    config = {
        "aws:region": "us-east-1",
        "alab:endpointUrl": aws.endpoint_url,
        "bucketPrefix": prefix,
        "pathPyprojectToml": str(path),
        "indexUrl": credentials.index_url,
        "indexUsername": credentials.username,
    }
    project.stack_init("dev", config, {"indexPassword": credentials.password})
    up = project.stack("dev").up()
    diagnostics = up.stdout.split("Diagnostics:")[1].split("Outputs:")[0]  # the progress view repeats them
    assert diagnostics.count(BUILD_LINE) == 1 and "(from the artifact store)" in diagnostics, up.stdout
    shas = up.outputs["code_sha256"].value
    assert set(shas) == set(REGIONS) and len(set(shas.values())) == 1, shas
    for region in REGIONS:
        (found,) = versions(region, "sample-app-deps", aws.endpoint_url)
        assert found["Content"]["CodeSha256"] == shas[region] and f":{region}:" in found["LayerVersionArn"]

    # Another stack (another app's layer, other records) on the same store: nothing to build.
    project.stack_init("other", {**config, "appName": "other-app"}, {"indexPassword": credentials.password})
    other = project.stack("other").up()
    assert BUILD_LINE not in other.stdout, other.stdout
    assert other.summary.resource_changes == {"create": 3}  # the stack and one layer per region
    assert set(other.outputs["code_sha256"].value.values()) == set(shas.values())
    for region in REGIONS:
        (found,) = versions(region, "other-app-deps", aws.endpoint_url)
        assert found["Content"]["CodeSha256"] == shas[region]
