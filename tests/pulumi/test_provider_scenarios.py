"""The dynamic provider driven through its real gRPC server, against the moto server.

Each scenario is what a user's `pulumi preview` / `up` / `refresh` / `destroy` makes the engine do;
inputs are the ones the real `LambdaLayer` constructor registers (see pulumi_engine_harness).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import Credentials, LayerPathLayout
from pulumi_engine_harness import DIFF_NONE, DIFF_SOME, CheckFailed, ProviderError, Registration, Stack, urn_for_stack
from support.aws import MOTO_SESSION_TOKEN_PREFIX, as_role
from support.projects import lock, set_pin
from support.servers import PrivateIndex

#: The install stage's line, as the provider forwards it (``progress.forward_stages``).
INSTALL_LINE = re.compile(r"^(?:\[[^\]]+\] )?install +\d+\.\ds  \d+ packages for ", re.M)

OUTPUT_NAMES = (
    "layer_name",
    "layer_version",
    "layer_version_arn",
    "layer_arn",
    "fingerprint",
    "code_sha256",
    "code_size",
    "s3uri_manifest",
)


def s3_snapshot(s3_client: Any, bucket: str) -> dict[str, tuple[str, str]]:
    """Every object with its ETag and modification time: any write changes it."""
    objects = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: (o["ETag"], o["LastModified"].isoformat()) for o in objects}


def layer_versions(lambda_client: Any, layer_name: str) -> list[int]:
    response = lambda_client.list_layer_versions(LayerName=layer_name)
    return sorted(v["Version"] for v in response["LayerVersions"])


def build_dir(path_pyproject: Path) -> Path:
    return LayerPathLayout(path_pyproject_toml=path_pyproject).dir_build_lambda_layer


@pytest.fixture()
def uv_project(project_copy: Callable[[str], Path]) -> Path:
    return project_copy("uv")


@pytest.fixture()
def layer_args(uv_project: Path, bucket: str, credentials: Credentials) -> dict[str, Any]:
    return {
        "layer_name": f"{bucket}-deps",
        "path_pyproject_toml": str(uv_project),
        "s3dir_lambda": f"s3://{bucket}/lambda/app/",
        "tool": "uv",
        "credentials": credentials,
    }


def test_preview_of_a_new_layer_checks_only_and_writes_nothing(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    s3_client: Any,
    lambda_client: Any,
    bucket: str,
    uv_project: Path,
) -> None:
    goal = declare_layer(**layer_args)
    stack = open_stack()
    step = stack.preview(goal)
    assert step.op == "create"
    assert [e.method for e in stack.server.transcript] == ["Configure", "Check"]
    assert s3_snapshot(s3_client, bucket) == {}
    assert lambda_client.list_layers()["Layers"] == []
    assert not build_dir(uv_project).exists()
    # The program computed the fingerprint at declaration, so the preview can show it.
    assert len(step.checked_inputs["fingerprint"]) == 64


def test_up_noop_change_and_second_version(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    s3_client: Any,
    lambda_client: Any,
    bucket: str,
    uv_project: Path,
    private_index: PrivateIndex,
    dir_tool_cache: Path,
) -> None:
    stack = open_stack()
    goal_v1 = declare_layer(**layer_args)
    step = stack.up(goal_v1)
    assert step.op == "create"
    out = stack.state.plain_outputs
    assert out["layer_version"] == 1 and out["published"] is True
    assert set(OUTPUT_NAMES) <= set(out)
    assert out["fingerprint"] == goal_v1.inputs["fingerprint"]
    assert stack.state.id == out["layer_arn"]
    assert out["layer_version_arn"].endswith(":1")
    assert out["s3uri_manifest"].startswith(f"s3://{bucket}/lambda/app/layer/000001/")
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]

    # A no-op preview: DIFF_NONE, no build folder, no S3 write, no new version.
    shutil.rmtree(build_dir(uv_project))
    before = s3_snapshot(s3_client, bucket)
    step = stack.preview(declare_layer(**layer_args))
    assert step.op == "same" and step.diff.changes == DIFF_NONE
    assert not build_dir(uv_project).exists()
    assert s3_snapshot(s3_client, bucket) == before
    # ...and a no-op up neither builds nor writes either.
    assert stack.up(declare_layer(**layer_args)).op == "same"
    assert not build_dir(uv_project).exists()
    assert s3_snapshot(s3_client, bucket) == before

    # A dependency change: DIFF_SOME with the new fingerprint, and the log names the package that moved.
    set_pin(uv_project, "alab-demo-core", "1.1.0")
    lock("uv", uv_project.parent, private_index, dir_tool_cache)
    goal_v2 = declare_layer(**layer_args)
    assert goal_v2.inputs["fingerprint"] != goal_v1.inputs["fingerprint"]
    step = stack.preview(goal_v2)
    assert step.op == "update" and step.diff.changes == DIFF_SOME and step.replaces == []
    assert step.checked_inputs["fingerprint"] == goal_v2.inputs["fingerprint"]
    assert "alab-demo-core" in stack.server.log_text() and "1.1.0" in stack.server.log_text()
    assert s3_snapshot(s3_client, bucket) == before

    step = stack.up(goal_v2)
    assert step.op == "update"
    out = stack.state.plain_outputs
    # Update returns every output, not only the changed ones.
    assert set(OUTPUT_NAMES) <= set(out)
    assert out["layer_version"] == 2 and out["fingerprint"] == goal_v2.inputs["fingerprint"]
    assert out["published_versions"] == [1, 2]
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1, 2]
    assert stack.preview(declare_layer(**layer_args)).op == "same"


def test_second_stack_with_the_same_dependencies_adopts_the_version(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    dev = open_stack()
    dev.up(declare_layer(stack="dev", **layer_args))
    prod_goal = declare_layer(stack="prod", **layer_args)
    assert prod_goal.urn == urn_for_stack(declare_layer(stack="dev", **layer_args), "prod")
    prod = open_stack()
    step = prod.up(prod_goal)
    assert step.op == "create"
    out = prod.state.plain_outputs
    assert out["published"] is False and out["published_versions"] == []
    assert out["layer_version_arn"] == dev.state.plain_outputs["layer_version_arn"]
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]
    # The other stack's publish is no change for this one.
    assert dev.preview(declare_layer(stack="dev", **layer_args)).op == "same"
    assert prod.preview(prod_goal).op == "same"


def test_stale_state_adopts_what_another_stack_published(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
    uv_project: Path,
    private_index: PrivateIndex,
    dir_tool_cache: Path,
) -> None:
    """Both stacks at v1; dev publishes v2 for new pins; prod with the same pins moves to v2 without publishing."""
    dev, prod = open_stack(), open_stack()
    dev.up(declare_layer(stack="dev", **layer_args))
    prod.up(declare_layer(stack="prod", **layer_args))
    set_pin(uv_project, "alab-demo-core", "1.1.0")
    lock("uv", uv_project.parent, private_index, dir_tool_cache)
    dev.up(declare_layer(stack="dev", **layer_args))
    assert dev.state.plain_outputs["layer_version"] == 2
    step = prod.up(declare_layer(stack="prod", **layer_args))
    assert step.op == "update"
    out = prod.state.plain_outputs
    assert out["layer_version"] == 2 and out["published"] is False and out["published_versions"] == []
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1, 2]


def test_refresh_after_the_version_was_deleted_out_of_band(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    stack = open_stack()
    goal = declare_layer(**layer_args)
    stack.up(goal)
    refreshed = stack.refresh()
    assert refreshed is not None and refreshed.plain_outputs["layer_version"] == 1
    lambda_client.delete_layer_version(LayerName=layer_args["layer_name"], VersionNumber=1)
    assert stack.refresh() is None  # gone: the engine drops it from the state
    step = stack.up(goal)  # and the next up publishes again
    assert step.op == "create"
    assert stack.state.plain_outputs["layer_version"] == 2
    assert stack.state.plain_outputs["published"] is True


def test_deleted_version_is_a_change_in_preview(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    stack = open_stack()
    stack.up(declare_layer(**layer_args))
    lambda_client.delete_layer_version(LayerName=layer_args["layer_name"], VersionNumber=1)
    step = stack.preview(declare_layer(**layer_args))
    assert step.op == "update" and step.diff.changes == DIFF_SOME


def test_destroy_retains_versions_by_default(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    stack = open_stack()
    stack.up(declare_layer(**layer_args))
    stack.destroy()
    assert stack.state is None
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]
    assert "retaining" in stack.server.log_text()


def test_destroy_with_delete_on_destroy_deletes_only_what_it_published(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    dev, prod = open_stack(), open_stack()
    dev.up(declare_layer(stack="dev", delete_on_destroy=True, **layer_args))
    prod.up(declare_layer(stack="prod", delete_on_destroy=True, **layer_args))  # adopts v1
    prod.destroy()
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]  # not prod's to delete
    dev.destroy()
    assert layer_versions(lambda_client, layer_args["layer_name"]) == []


def test_changing_the_layer_name_replaces_and_retains_the_old_layer(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
    bucket: str,
) -> None:
    stack = open_stack()
    stack.up(declare_layer(**layer_args))
    renamed = dict(layer_args, layer_name=f"{bucket}-renamed", s3dir_lambda=f"s3://{bucket}/lambda/renamed/")
    step = stack.preview(declare_layer(**renamed))
    assert step.op == "replace" and sorted(step.replaces) == ["layer_name", "s3dir_lambda"]
    stack.up(declare_layer(**renamed))
    assert stack.state.plain_outputs["layer_name"] == f"{bucket}-renamed"
    assert layer_versions(lambda_client, f"{bucket}-renamed") == [1]
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]  # retained


def test_keep_last_change_is_an_update_without_publishing(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    lambda_client: Any,
) -> None:
    stack = open_stack()
    stack.up(declare_layer(**layer_args))
    step = stack.up(declare_layer(keep_last=3, **layer_args))
    assert step.op == "update"
    assert stack.state.plain_outputs["keep_last"] == 3
    assert stack.state.plain_outputs["published"] is False
    assert layer_versions(lambda_client, layer_args["layer_name"]) == [1]


def test_failing_build_surfaces_to_the_engine_and_records_nothing(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    s3_client: Any,
    lambda_client: Any,
    bucket: str,
) -> None:
    path = project_copy("pip")
    set_pin(path, "alab-demo-core", "9.9.9")  # pinned, so valid; but the index has no such version
    args = {
        "layer_name": f"{bucket}-broken",
        "path_pyproject_toml": str(path),
        "s3dir_lambda": f"s3://{bucket}/lambda/broken/",
        "tool": "pip",
        "credentials": credentials,
    }
    stack = open_stack()
    assert stack.preview(declare_layer(**args)).op == "create"  # nothing in the inputs is wrong
    with pytest.raises(ProviderError) as excinfo:
        stack.up(declare_layer(**args))
    assert excinfo.value.method == "Create"
    assert "alab-demo-core" in excinfo.value.details
    assert credentials.password not in excinfo.value.details
    assert stack.state is None
    assert not any("last-" in key for key in s3_snapshot(s3_client, bucket))
    assert lambda_client.list_layers()["Layers"] == []


@pytest.mark.parametrize(
    ("override", "bad_property"),
    [
        ({"python_version": "3.9"}, "python_version"),
        ({"architecture": "sparc"}, "architecture"),
        ({"s3dir_lambda": "not-an-s3-uri"}, "s3dir_lambda"),
        ({"tool": "conda"}, "tool"),
        ({"build_in": "cloud"}, "build_in"),
        ({"credentials": {"index_name": "private", "index_url": "http://x/simple/"}}, "credentials"),
    ],
)
def test_invalid_inputs_are_check_failures_on_the_property(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    override: dict[str, Any],
    bad_property: str,
    s3_client: Any,
    bucket: str,
) -> None:
    stack = open_stack()
    with pytest.raises(CheckFailed) as excinfo:
        stack.preview(declare_layer(**dict(layer_args, **override)))
    assert bad_property in [p for p, _ in excinfo.value.failures]
    assert s3_snapshot(s3_client, bucket) == {}


def test_missing_lock_is_a_check_failure_not_a_program_crash(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    uv_project: Path,
) -> None:
    (uv_project.parent / "uv.lock").unlink()
    goal = declare_layer(**layer_args)
    assert "fingerprint" not in goal.inputs  # the program could not compute it and said so by leaving it out
    with pytest.raises(CheckFailed) as excinfo:
        open_stack().preview(goal)
    assert "path_pyproject_toml" in [p for p, _ in excinfo.value.failures]


def test_unknown_inputs_in_a_preview_are_not_validated_or_planned(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    s3_client: Any,
    bucket: str,
) -> None:
    """A bucket created by the same program is unknown during its first preview."""
    import pulumi_aws as aws
    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer
    from pulumi.runtime import rpc
    from pulumi_engine_harness import run_program, to_struct

    def program() -> None:
        created = aws.s3.Bucket("artifacts")
        args = dict(layer_args, s3dir_lambda=created.bucket.apply(lambda name: f"s3://{name}/lambda/app/"))
        LambdaLayer("deps", **args)

    registrations = run_program(program, preview=True)
    goal = next(r for r in registrations if r.name == "deps")
    assert to_struct(goal.inputs)["s3dir_lambda"] == rpc.UNKNOWN  # as the engine receives it
    stack = open_stack()
    assert stack.preview(goal).op == "create"  # Check passes: the unknown is checked at create time
    stack.up(declare_layer(**layer_args))
    before = s3_snapshot(s3_client, bucket)
    step = stack.preview(goal)
    assert step.op == "replace" and step.replaces == ["s3dir_lambda"]
    assert s3_snapshot(s3_client, bucket) == before


def test_parallel_creates_from_one_project_do_not_clobber_each_other(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    bucket: str,
) -> None:
    """The engine runs independent resources in parallel; two layers of one project share its build folder."""
    from concurrent.futures import ThreadPoolExecutor

    variants = {"slim": ["alab-demo-extra"], "full": None}  # different contents from the same project

    def goal(variant: str, run: str) -> Registration:
        name = f"{bucket}-{variant}-{run}"
        args = dict(layer_args, layer_name=name, s3dir_lambda=f"s3://{bucket}/lambda/{name}/")
        return declare_layer(resource_name=f"deps-{variant}", ignore_packages=variants[variant], **args)

    stacks = {variant: open_stack() for variant in variants}
    server = stacks["slim"].server
    stacks["full"].server = server  # one provider process serves both, as in one `pulumi up`
    parallel_goals = {variant: goal(variant, "parallel") for variant in variants}
    with ThreadPoolExecutor(max_workers=2) as pool:
        steps = list(pool.map(lambda v: stacks[v].up(parallel_goals[v]), variants))
    assert [s.op for s in steps] == ["create", "create"]
    parallel = {v: stacks[v].state.plain_outputs["code_sha256"] for v in variants}
    assert parallel["slim"] != parallel["full"]
    # Built one after the other (zips are deterministic), each gives the same bytes as in parallel.
    for variant in variants:
        alone = Stack(server, dict(stacks[variant].config))
        alone.up(goal(variant, "alone"))
        assert alone.state.plain_outputs["code_sha256"] == parallel[variant], variant


def test_one_layer_per_region_sharing_a_store_builds_once(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    uv_project: Path,
    credentials: Credentials,
    aws: Any,
    bucket: str,
) -> None:
    """examples/pulumi_regions (the README's snippet): a `LambdaLayer` per region, one `artifact_store`; one
    `pulumi up` creates both side by side, one build, the other region copies the stored zip."""
    import runpy
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import pulumi
    from pulumi_engine_harness import run_program, strip_secrets

    regions = ("us-east-1", "eu-west-1")
    for region in regions:
        s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name=region)
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=f"{bucket}-{region}", **where)
    program = Path(__file__).resolve().parents[2] / "examples" / "pulumi_regions" / "__main__.py"

    def goals(**config: str) -> dict[str, Registration]:
        values = {
            "bucketPrefix": bucket,
            "pathPyprojectToml": str(uv_project),
            "indexUrl": credentials.index_url,
            "indexUsername": credentials.username,
            "indexPassword": credentials.password,
            **config,
        }
        pulumi.runtime.set_all_config(
            {f"alab-regions:{k}": v for k, v in values.items()}, ["alab-regions:indexPassword"]
        )
        try:
            registrations = run_program(lambda: runpy.run_path(str(program)), project="alab-regions")
        finally:
            pulumi.runtime.set_all_config({})
        return {r: next(g for g in registrations if g.name == f"sample-app-deps-{r}") for r in regions}

    stacks = {regions[0]: open_stack()}
    stacks[regions[1]] = Stack(stacks[regions[0]].server, dict(stacks[regions[0]].config))  # one provider process
    declared = goals()
    assert {r: g.inputs["region"] for r, g in declared.items()} == {r: r for r in regions}
    with ThreadPoolExecutor(max_workers=2) as pool:
        steps = list(pool.map(lambda r: stacks[r].up(declared[r]), regions))
    assert [s.op for s in steps] == ["create", "create"]
    log = stacks[regions[0]].server.log_text()
    # One provider process deployed both at once: each forwards its own stage lines only, once.
    stages = [line.split()[1] for line in log.splitlines() if line.startswith("[sample-app-deps] ")]
    built = ["plan", "install", "package", "upload", "publish", "record"]
    fetched = ["plan", "fetch", "publish", "record"]
    assert sorted(stages) == sorted(built + fetched), log
    assert len(INSTALL_LINE.findall(log)) == 1 and "(from the artifact store)" in log, log
    assert "[build] installing" not in log, log  # the installer's detail needs ALAB_VERBOSE=1
    outs = {r: stacks[r].state.plain_outputs for r in regions}
    assert {r: o["published"] for r, o in outs.items()} == dict.fromkeys(regions, True)
    assert outs[regions[0]]["code_sha256"] == outs[regions[1]]["code_sha256"]
    for region in regions:
        assert f":{region}:" in outs[region]["layer_version_arn"]
        lambda_in = boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name=region)
        (listed,) = lambda_in.list_layer_versions(LayerName="sample-app-deps")["LayerVersions"]
        version = lambda_in.get_layer_version(LayerName="sample-app-deps", VersionNumber=listed["Version"])
        assert version["Content"]["CodeSha256"] == outs[region]["code_sha256"]

    # After the up: preview and refresh see no change in either region, and nothing is built.
    for region in regions:
        step = stacks[region].preview(declared[region])
        assert step.op == "same" and step.diff.changes == DIFF_NONE, region
        refreshed = stacks[region].refresh()
        assert refreshed is not None and refreshed.plain_outputs["layer_version"] == outs[region]["layer_version"]
    # The store is how, not what: moving it is no change; another region is another layer, a replacement.
    moved = goals(artifactStore=f"s3://{bucket}-us-east-1/elsewhere/")
    assert [stacks[r].preview(moved[r]).op for r in regions] == ["same", "same"]
    eu = strip_secrets(declared[regions[1]].inputs)
    kept = ("layer_name", "path_pyproject_toml", "tool", "s3dir_lambda", "artifact_store")
    replaced = declare_layer(
        resource_name=declared[regions[1]].name,
        region="us-west-2",
        credentials=credentials,
        **{k: eu[k] for k in kept},
    )
    assert stacks[regions[1]].preview(replaced).replaces == ["region"]
    assert len(INSTALL_LINE.findall(stacks[regions[0]].server.log_text())) == 1


def test_a_region_whose_bucket_is_elsewhere_fails_before_any_build(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    aws: Any,
    uv_project: Path,
) -> None:
    """Lambda in eu-west-1 cannot read a zip from the test's us-east-1 bucket: say so, build nothing."""
    import boto3

    stack = open_stack()
    with pytest.raises(ProviderError) as excinfo:
        stack.up(declare_layer(region="eu-west-1", **layer_args))
    assert excinfo.value.method == "Create"
    assert "is in us-east-1, but Lambda in eu-west-1" in excinfo.value.details
    assert not build_dir(uv_project).exists()
    eu_lambda = boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name="eu-west-1")
    assert eu_lambda.list_layers()["Layers"] == []


#: Another account, reached with STS AssumeRole (moto makes what the role creates that account's).
OTHER_ROLE = "arn:aws:iam::222222222222:role/alab-deployer"


def test_a_layer_in_another_account_shares_the_store_and_builds_once(
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    layer_args: dict[str, Any],
    aws: Any,
    bucket: str,
) -> None:
    """Two `LambdaLayer`s of one lock, the second with a `role_arn` of another account (and another region):
    one build into the store (the stack's own account), two versions with one CodeSha256, each ARN in its
    account; the assumed credentials are in neither the state nor the log."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    other_account, other_region = OTHER_ROLE.split(":")[4], "eu-west-1"
    other_bucket = f"{bucket}-{other_account}"
    as_role(OTHER_ROLE, "s3", other_region, aws.endpoint_url).create_bucket(
        Bucket=other_bucket, CreateBucketConfiguration={"LocationConstraint": other_region}
    )
    store = f"s3://{bucket}/layer-store/"
    own = declare_layer(resource_name="deps-own", artifact_store=store, **layer_args)
    other_args = {**layer_args, "s3dir_lambda": f"s3://{other_bucket}/lambda/app/", "delete_on_destroy": True}
    other = declare_layer(
        resource_name="deps-other", region=other_region, role_arn=OTHER_ROLE, artifact_store=store, **other_args
    )
    assert other.inputs["role_arn"] == OTHER_ROLE
    first = open_stack()
    stacks = (first, Stack(first.server, dict(first.config)))  # one provider process, as one `pulumi up`
    with ThreadPoolExecutor(max_workers=2) as pool:
        steps = list(pool.map(lambda pair: pair[0].up(pair[1]), zip(stacks, (own, other), strict=True)))
    assert [s.op for s in steps] == ["create", "create"]
    log = first.server.log_text()
    assert len(INSTALL_LINE.findall(log)) == 1, log
    assert "(from the artifact store)" in log
    outs = [s.state.plain_outputs for s in stacks if s.state is not None]
    assert [o["published"] for o in outs] == [True, True]
    assert outs[0]["code_sha256"] == outs[1]["code_sha256"]
    own_account = boto3.client("sts", region_name="us-east-1", endpoint_url=aws.endpoint_url).get_caller_identity()[
        "Account"
    ]
    assert own_account != other_account
    assert f":us-east-1:{own_account}:layer:" in outs[0]["layer_version_arn"]
    assert f":{other_region}:{other_account}:layer:" in outs[1]["layer_version_arn"]
    # Each version is in its own account only: the stack's credentials see none in the other's region.
    other_lambda = as_role(OTHER_ROLE, "lambda", other_region, aws.endpoint_url)
    (listed,) = other_lambda.list_layer_versions(LayerName=layer_args["layer_name"])["LayerVersions"]
    assert listed["LayerVersionArn"] == outs[1]["layer_version_arn"]
    content = other_lambda.get_layer_version(LayerName=layer_args["layer_name"], VersionNumber=listed["Version"])
    assert content["Content"]["CodeSha256"] == outs[0]["code_sha256"]
    own_in_other_region = boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name=other_region)
    assert own_in_other_region.list_layers()["Layers"] == []
    from aws_lambda_artifact_builder.api import read_layer_record

    record = read_layer_record(
        s3dir_lambda=other_args["s3dir_lambda"],
        tool="uv",
        s3_client=as_role(OTHER_ROLE, "s3", other_region, aws.endpoint_url),
        lambda_client=other_lambda,
        manifest=False,
    )
    assert record is not None and record.layer_version == outs[1]["layer_version"] and record.version_exists

    # After the up: preview and refresh of the other account's layer see no change (as the role).
    step = stacks[1].preview(other)
    assert step.op == "same" and step.diff.changes == DIFF_NONE
    refreshed = stacks[1].refresh()
    assert refreshed is not None and refreshed.plain_outputs["layer_version"] == outs[1]["layer_version"]
    # Another role is another account's layer: a replacement.
    moved = declare_layer(
        resource_name="deps-other",
        region=other_region,
        role_arn="arn:aws:iam::333333333333:role/alab-deployer",
        artifact_store=store,
        **other_args,
    )
    assert stacks[1].preview(moved).replaces == ["role_arn"]
    for stack in stacks:
        assert stack.state is not None
        assert MOTO_SESSION_TOKEN_PREFIX not in stack.state.checkpoint_json()
    wire = b"".join(e.response_bytes() for e in first.server.transcript)
    assert MOTO_SESSION_TOKEN_PREFIX.encode() not in wire
    assert MOTO_SESSION_TOKEN_PREFIX not in first.server.log_text()
    assert len(INSTALL_LINE.findall(first.server.log_text())) == 1
    assert json.loads(stacks[1].state.checkpoint_json())["outputs"]["role_arn"] == OTHER_ROLE
    # Destroy deletes what it published, in the role's account.
    stacks[1].destroy()
    assert other_lambda.list_layer_versions(LayerName=layer_args["layer_name"])["LayerVersions"] == []


def test_a_bad_role_arn_is_a_check_failure_on_that_input(
    open_stack: Callable[[], Stack], declare_layer: Callable[..., Registration], layer_args: dict[str, Any]
) -> None:
    with pytest.raises(CheckFailed) as excinfo:
        open_stack().preview(declare_layer(role_arn="arn:aws:iam::2222:role/x", **layer_args))
    assert excinfo.value.failures == [
        ("role_arn", "role_arn 'arn:aws:iam::2222:role/x' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    ]


def test_the_regions_example_in_two_accounts_builds_once(
    open_stack: Callable[[], Stack], uv_project: Path, credentials: Credentials, aws: Any, bucket: str
) -> None:
    """examples/pulumi_regions with `roleArns` ["", another account's role]: 2 regions × 2 accounts, four
    creates side by side in one provider process, one build, four versions with one CodeSha256."""
    import json
    import runpy
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import pulumi
    from pulumi_engine_harness import run_program

    regions, account = ("us-east-1", "eu-west-1"), OTHER_ROLE.split(":")[4]
    own_account = boto3.client("sts", region_name="us-east-1", endpoint_url=aws.endpoint_url).get_caller_identity()[
        "Account"
    ]
    targets = {  # the example's target name: (region, role, account)
        **{r: (r, None, own_account) for r in regions},
        **{f"{account}-{r}": (r, OTHER_ROLE, account) for r in regions},
    }
    for name, (region, role, _) in targets.items():
        s3 = (
            as_role(role, "s3", region, aws.endpoint_url)
            if role
            else boto3.client("s3", endpoint_url=aws.endpoint_url, region_name=region)
        )
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=f"{bucket}-{name}", **where)
    values = {
        "bucketPrefix": bucket,
        "pathPyprojectToml": str(uv_project),
        "roleArns": json.dumps(["", OTHER_ROLE]),
        "indexUrl": credentials.index_url,
        "indexUsername": credentials.username,
        "indexPassword": credentials.password,
    }
    pulumi.runtime.set_all_config({f"alab-regions:{k}": v for k, v in values.items()}, ["alab-regions:indexPassword"])
    program = Path(__file__).resolve().parents[2] / "examples" / "pulumi_regions" / "__main__.py"
    try:
        registrations = run_program(lambda: runpy.run_path(str(program)), project="alab-regions")
    finally:
        pulumi.runtime.set_all_config({})
    goals = {name: next(g for g in registrations if g.name == f"sample-app-deps-{name}") for name in targets}
    assert {n: g.inputs.get("role_arn") for n, g in goals.items()} == {n: t[1] for n, t in targets.items()}
    first = open_stack()
    stacks = {name: Stack(first.server, dict(first.config)) for name in targets}
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        steps = list(pool.map(lambda name: stacks[name].up(goals[name]), targets))
    assert [s.op for s in steps] == ["create"] * len(targets)
    assert len(INSTALL_LINE.findall(first.server.log_text())) == 1
    outs = {name: stack.state.plain_outputs for name, stack in stacks.items() if stack.state is not None}
    assert len({o["code_sha256"] for o in outs.values()}) == 1
    for name, (region, role, in_account) in targets.items():
        assert f":{region}:{in_account}:layer:sample-app-deps:" in outs[name]["layer_version_arn"], name
        lambda_in = (
            as_role(role, "lambda", region, aws.endpoint_url)
            if role
            else boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name=region)
        )
        (listed,) = lambda_in.list_layer_versions(LayerName="sample-app-deps")["LayerVersions"]
        assert listed["LayerVersionArn"] == outs[name]["layer_version_arn"]
