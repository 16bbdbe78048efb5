"""The real terraform binary drives ``examples/terraform`` (alab_layer + aws_lambda_function) against moto.

Offline: our provider through ``dev_overrides`` from ``alab terraform install``, hashicorp/aws from the
preinstalled filesystem mirror, every AWS call to the moto server.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_artifact_builder.api import Credentials, plan_layer, read_layer_record
from support.aws import MOTO_SESSION_TOKEN_PREFIX, as_role
from support.projects import lock, set_pin
from support.servers import MotoServer, PrivateIndex
from terraform_harness import DIR_ACCOUNTS, DIR_LAYER_ONLY, DIR_REGIONS, DIR_SAMPLE_CODE, Terraform, working_dir

APP = "tfapp"
LAYER = f"{APP}-deps"


def layer_versions(lambda_client: Any) -> list[int]:
    response = lambda_client.list_layer_versions(LayerName=LAYER)
    return sorted(v["Version"] for v in response["LayerVersions"])


def s3_keys(s3_client: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def write_function_zip(workdir: Path) -> None:
    """The sample app's code where the example looks for it by default (build/function.zip)."""
    dest = workdir / "build" / "function.zip"
    dest.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(DIR_SAMPLE_CODE.rglob("*.py")):
            zf.write(path, path.relative_to(DIR_SAMPLE_CODE.parent).as_posix())


def configure(
    tf: Terraform, *, aws: MotoServer, bucket: str, project: Path, credentials: Credentials, **extra: str
) -> None:
    """The example's variables, as a user passes them: TF_VAR_* (the password is an ephemeral variable)."""
    variables = {
        "bucket": bucket,
        "path_pyproject_toml": str(project),
        "app_name": APP,
        "tool": "uv",
        "aws_endpoint_url": aws.endpoint_url,
        "index_name": credentials.index_name,
        "index_url": credentials.index_url,
        "index_username": credentials.username,
        "index_password": credentials.password,
        **extra,
    }
    tf.env.update({f"TF_VAR_{name}": value for name, value in variables.items()})
    write_function_zip(tf.workdir)


def attribute(plan_output: str, name: str) -> str:
    """The text after ``name =`` in a plan's rendering of alab_layer.deps."""
    block = plan_output.split("# alab_layer.deps", 1)[1].split("\n    }", 1)[0]
    found = re.search(rf"^\s*[+~-]?\s*{name}\s+=\s+(.*)$", block, re.MULTILINE)
    assert found, f"{name} not in the plan of alab_layer.deps:\n{block}"
    return found.group(1)


def secret_forms(password: str) -> list[bytes]:
    return [password.encode(), quote(password, safe="").encode(), quote(password).encode()]


def assert_no_secret(tf: Terraform, password: str) -> None:
    artifacts = tf.artifacts()
    assert "terraform-trace.log" in artifacts and "terraform.tfstate" in artifacts
    for name, content in artifacts.items():
        for form in secret_forms(password):
            assert form not in content, f"the index password leaked into {name}"


def test_plan_apply_change_apply_destroy(
    example_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    private_index: PrivateIndex,
    dir_tool_cache: Path,
    s3_client: Any,
    lambda_client: Any,
) -> None:
    tf = example_terraform
    project = project_copy("uv")
    configure(tf, aws=aws, bucket=bucket, project=project, credentials=credentials)
    s3dir = f"s3://{bucket}/lambda/{APP}/"
    tf.run("init", "-input=false")

    # plan (create): the fingerprint and the reason are known, the version is not; nothing is written.
    expected = plan_layer(layer_name=LAYER, path_pyproject_toml=project, s3dir_lambda=s3dir, tool="uv")
    plan = tf.plan("create.tfplan")
    assert plan.returncode == 2
    assert "alab_layer.deps will be created" in plan.stdout
    assert attribute(plan.stdout, "fingerprint") == f'"{expected.fingerprint}"'
    first = f"the first version recorded at {expected.s3uri_record} (none was recorded before)"
    assert attribute(plan.stdout, "publish_reason") == f'"{first}"'
    assert attribute(plan.stdout, "layer_version") == "(known after apply)"
    assert attribute(plan.stdout, "credentials") == "(write-only attribute)"
    assert s3_keys(s3_client, bucket) == []
    assert lambda_client.list_layers()["Layers"] == []

    # apply: version 1, recorded in S3, used by the function.
    tf.apply("create.tfplan")
    assert layer_versions(lambda_client) == [1]
    outputs = tf.outputs()
    record = read_layer_record(s3dir_lambda=s3dir, tool="uv")
    assert record is not None and record.layer_version == 1
    assert outputs["layer_version"] == 1
    assert outputs["layer_version_arn"] == record.layer_version_arn
    assert outputs["function_layers"] == [record.layer_version_arn]
    assert lambda_client.get_function(FunctionName=APP)["Configuration"]["Layers"][0]["Arn"] == record.layer_version_arn

    # plan again: the S3 record matches the lock file, so nothing changes.
    plan = tf.plan("noop.tfplan")
    assert plan.returncode == 0, plan.stdout
    assert "No changes." in plan.stdout

    # change a pinned dependency: the plan says a version will be published, why, and which packages moved.
    old_fingerprint = expected.fingerprint
    set_pin(project, "alab-demo-core", "1.1.0")
    lock("uv", project.parent, private_index, dir_tool_cache)
    expected = plan_layer(layer_name=LAYER, path_pyproject_toml=project, s3dir_lambda=s3dir, tool="uv")
    assert expected.changed and expected.fingerprint != old_fingerprint
    plan = tf.plan("update.tfplan")
    assert plan.returncode == 2
    assert "alab_layer.deps will be updated in-place" in plan.stdout
    assert attribute(plan.stdout, "fingerprint") == f'"{old_fingerprint}" -> "{expected.fingerprint}"'
    assert attribute(plan.stdout, "layer_version") == "1 -> (known after apply)"
    assert expected.reason in attribute(plan.stdout, "publish_reason")
    assert [line for line in expected.package_changes.lines() if "alab-demo-core" in line]
    for line in expected.package_changes.lines():
        assert f'"{line}"' in plan.stdout
    assert "aws_lambda_function.app will be updated in-place" in plan.stdout
    assert layer_versions(lambda_client) == [1]  # planning published nothing

    # apply: version 2, and the function moves to it.
    tf.apply("update.tfplan")
    assert layer_versions(lambda_client) == [1, 2]
    outputs = tf.outputs()
    assert outputs["layer_version"] == 2
    assert outputs["function_layers"] == [outputs["layer_version_arn"]]
    assert outputs["layer_version_arn"].endswith(":2")
    plan = tf.plan("after-update.tfplan")
    assert plan.returncode == 0, plan.stdout

    # destroy: the function goes, the immutable layer versions stay (delete_on_destroy is false).
    tf.run("destroy", "-auto-approve", "-input=false")
    assert tf.run("state", "list").stdout.strip() == ""
    assert layer_versions(lambda_client) == [1, 2]
    assert_no_secret(tf, credentials.password)


def test_deleted_version_shows_as_drift_and_delete_on_destroy_removes_what_was_published(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    lambda_client: Any,
) -> None:
    tf = layer_terraform
    configure(tf, aws=aws, bucket=bucket, project=project_copy("uv"), credentials=credentials, delete_on_destroy="true")
    tf.run("init", "-input=false")
    tf.run("apply", "-auto-approve", "-input=false")
    assert layer_versions(lambda_client) == [1]

    lambda_client.delete_layer_version(LayerName=LAYER, VersionNumber=1)
    plan = tf.plan("drift.tfplan")
    assert plan.returncode == 2
    assert "Objects have changed outside of Terraform" in plan.stdout
    assert "alab_layer.deps has been deleted" in plan.stdout
    assert "alab_layer.deps will be created" in plan.stdout

    tf.apply("drift.tfplan")
    assert layer_versions(lambda_client) == [2]
    tf.run("destroy", "-auto-approve", "-input=false")
    assert layer_versions(lambda_client) == []
    assert_no_secret(tf, credentials.password)


def test_apply_of_a_plan_made_for_another_lock_file_fails_without_publishing(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    private_index: PrivateIndex,
    dir_tool_cache: Path,
    s3_client: Any,
    lambda_client: Any,
) -> None:
    tf = layer_terraform
    project = project_copy("uv")
    configure(tf, aws=aws, bucket=bucket, project=project, credentials=credentials)
    s3dir = f"s3://{bucket}/lambda/{APP}/"
    tf.run("init", "-input=false")
    planned = plan_layer(layer_name=LAYER, path_pyproject_toml=project, s3dir_lambda=s3dir, tool="uv").fingerprint
    tf.plan("create.tfplan")
    set_pin(project, "alab-demo-core", "1.1.0")
    lock("uv", project.parent, private_index, dir_tool_cache)
    now = plan_layer(layer_name=LAYER, path_pyproject_toml=project, s3dir_lambda=s3dir, tool="uv").fingerprint
    # Terraform plans again before applying; the fingerprint moved, so it stops before create runs.
    result = tf.run("apply", "-input=false", "create.tfplan", ok_codes=(1,))
    error = " ".join(result.stderr.split())
    assert f'.fingerprint: was cty.StringVal("{planned}"), but now cty.StringVal("{now}")' in error
    assert lambda_client.list_layers()["Layers"] == []
    assert s3_keys(s3_client, bucket) == []


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [("tool", "conda", "tool"), ("python_version", "2.7", "python_version"), ("architecture", "mips", "architecture")],
)
def test_bad_input_fails_the_plan_on_that_argument(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    variable: str,
    value: str,
    named: str,
) -> None:
    tf = layer_terraform
    configure(tf, aws=aws, bucket=bucket, project=project_copy("uv"), credentials=credentials, **{variable: value})
    tf.run("init", "-input=false")
    result = tf.run("plan", "-input=false", ok_codes=(1,))
    assert f"Invalid {named}" in result.stderr
    assert value in result.stderr
    assert f"= var.{variable}" in result.stderr  # the diagnostic points at that argument's line


def test_a_second_configuration_with_the_same_lock_adopts_the_version_instead_of_publishing(
    layer_terraform: Terraform,
    terraform_bin: str,
    cli_config: Path,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    lambda_client: Any,
    tmp_path: Path,
) -> None:
    project = project_copy("uv")
    first = layer_terraform
    configure(first, aws=aws, bucket=bucket, project=project, credentials=credentials)
    first.run("init", "-input=false")
    first.run("apply", "-auto-approve", "-input=false")
    assert layer_versions(lambda_client) == [1]

    # Another stack (its own state) pointing at the same S3 record, e.g. CI next to a laptop.
    second = working_dir(DIR_LAYER_ONLY, terraform_bin, cli_config, tmp_path / "second")
    configure(second, aws=aws, bucket=bucket, project=project, credentials=credentials, delete_on_destroy="true")
    second.run("init", "-input=false")
    plan = second.plan("adopt.tfplan")
    assert "alab_layer.deps will be created" in plan.stdout
    assert attribute(plan.stdout, "publish_reason").startswith('"adopted version 1, already published')
    second.apply("adopt.tfplan")
    assert layer_versions(lambda_client) == [1]
    assert second.outputs()["layer_version"] == 1
    # It published nothing, so even delete_on_destroy leaves the version to the stack that did.
    second.run("destroy", "-auto-approve", "-input=false")
    assert layer_versions(lambda_client) == [1]


def test_inputs_known_only_at_apply_defer_the_whole_decision_to_apply(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    lambda_client: Any,
) -> None:
    tf = layer_terraform
    project = project_copy("uv")
    s3dir = f"s3://{bucket}/lambda/{APP}/"
    configure(tf, aws=aws, bucket=bucket, project=project, credentials=credentials)
    # s3dir_lambda now depends on another resource's output, unknown until that one is applied.
    (tf.workdir / "prefix.tf").write_text('resource "terraform_data" "prefix" {\n  input = var.app_name\n}\n')
    (tf.workdir / "main_override.tf").write_text(
        'resource "alab_layer" "deps" {\n'
        '  s3dir_lambda = "s3://${var.bucket}/lambda/${terraform_data.prefix.output}/"\n'
        "}\n"
    )
    tf.run("init", "-input=false")
    plan = tf.plan("deferred.tfplan")
    for name in ("fingerprint", "publish_reason", "layer_version", "s3dir_lambda"):
        assert attribute(plan.stdout, name) == "(known after apply)"
    # Terraform plans alab_layer again during apply, once s3dir_lambda is known: the reason is recorded then.
    expected = plan_layer(layer_name=LAYER, path_pyproject_toml=project, s3dir_lambda=s3dir, tool="uv")
    tf.apply("deferred.tfplan")
    assert layer_versions(lambda_client) == [1]
    state = json.loads(tf.run("show", "-json").stdout)
    (layer,) = [r for r in state["values"]["root_module"]["resources"] if r["type"] == "alab_layer"]
    assert layer["values"]["s3dir_lambda"] == s3dir
    assert layer["values"]["fingerprint"] == expected.fingerprint
    # What happened, in words true after the apply (not "nothing is recorded … yet").
    assert layer["values"]["publish_reason"] == (
        f"the first version recorded at {expected.s3uri_record} (none was recorded before)"
    )
    assert tf.plan("after.tfplan").returncode == 0


def test_a_failing_build_fails_the_apply_without_state_or_leaked_password(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    lambda_client: Any,
    s3_client: Any,
) -> None:
    tf = layer_terraform
    wrong = dataclasses.replace(credentials, password="Wr0ng-p@ss/" + credentials.password[-8:])
    configure(tf, aws=aws, bucket=bucket, project=project_copy("uv"), credentials=wrong)
    tf.run("init", "-input=false")
    result = tf.run("apply", "-auto-approve", "-input=false", ok_codes=(1,))
    assert f"Cannot deploy layer {LAYER}" in result.stderr
    assert tf.run("state", "list").stdout.strip() == ""
    assert lambda_client.list_layers()["Layers"] == []
    assert not [key for key in s3_keys(s3_client, bucket) if "last-" in key]
    assert_no_secret(tf, wrong.password)


def test_for_each_over_regions_sharing_a_store_builds_once(
    terraform_bin: str,
    cli_config: Path,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    tmp_path: Path,
) -> None:
    """The README's `for_each` snippet: one alab_layer per region, one artifact store, one build."""
    import boto3

    regions = ("eu-west-1", "us-east-1")
    for region in regions:
        s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name=region)
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=f"{bucket}-{region}", **where)
    tf = working_dir(DIR_REGIONS, terraform_bin, cli_config, tmp_path / "regions")
    configure(tf, aws=aws, bucket=bucket, project=project_copy("uv"), credentials=credentials, bucket_prefix=bucket)
    tf.run("init", "-input=false")
    tf.run("apply", "-auto-approve", "-input=false")

    trace = (tf.workdir / "terraform-trace.log").read_text(errors="replace")
    assert trace.count("[build] installing") == 1, "built more than once"
    assert "(from the artifact store)" in trace
    outputs = tf.outputs()
    assert sorted(outputs["code_sha256"]) == sorted(regions)
    assert len(set(outputs["code_sha256"].values())) == 1
    for region in regions:
        assert f":{region}:" in outputs["layer_version_arn"][region]
        lambda_in = boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name=region)
        (listed,) = lambda_in.list_layer_versions(LayerName=LAYER)["LayerVersions"]
        assert listed["LayerVersionArn"] == outputs["layer_version_arn"][region]
        content = lambda_in.get_layer_version(LayerName=LAYER, VersionNumber=listed["Version"])["Content"]
        assert content["CodeSha256"] == outputs["code_sha256"][region]

    # Refresh and plan: no change in any region, nothing built.
    plan = tf.plan("after.tfplan")
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout
    # Moving the store is an in-place update that publishes nothing; the region forces a replacement.
    (tf.workdir / "main_override.tf").write_text(
        'resource "alab_layer" "deps" {\n  artifact_store = "s3://${var.bucket_prefix}-us-east-1/other-store/"\n}\n'
    )
    plan = tf.plan("moved.tfplan")
    assert "must be replaced" not in plan.stdout and "will be updated in-place" in plan.stdout
    tf.apply("moved.tfplan")
    assert tf.outputs() == outputs
    trace = (tf.workdir / "terraform-trace.log").read_text(errors="replace")
    assert trace.count("[build] installing") == 1
    assert_no_secret(tf, credentials.password)


#: Another account, reached with STS AssumeRole (moto makes what the role creates that account's).
OTHER_ROLE = "arn:aws:iam::222222222222:role/alab-deployer"


def test_for_each_over_region_and_account_targets_sharing_a_store_builds_once(
    terraform_bin: str,
    cli_config: Path,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    tmp_path: Path,
) -> None:
    """tests/terraform/accounts (the README's accounts snippet): `for_each` over (region, role_arn) targets,
    one in another account, one store in the provider's own: one build, one CodeSha256, each ARN in its
    account, and no assumed credential in any plan, state or log."""
    import boto3

    own_account = boto3.client("sts", region_name="us-east-1", endpoint_url=aws.endpoint_url).get_caller_identity()[
        "Account"
    ]
    other_account = OTHER_ROLE.split(":")[4]
    assert own_account != other_account
    targets = {"own": ("us-east-1", None), "other": ("eu-west-1", OTHER_ROLE)}
    boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="us-east-1").create_bucket(Bucket=f"{bucket}-own")
    as_role(OTHER_ROLE, "s3", "eu-west-1", aws.endpoint_url).create_bucket(
        Bucket=f"{bucket}-other", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    tf = working_dir(DIR_ACCOUNTS, terraform_bin, cli_config, tmp_path / "accounts")
    configure(
        tf,
        aws=aws,
        bucket=bucket,
        project=project_copy("uv"),
        credentials=credentials,
        bucket_prefix=bucket,
        targets=json.dumps({key: {"region": r, "role_arn": role} for key, (r, role) in targets.items()}),
        store_target="own",
    )
    tf.run("init", "-input=false")
    tf.run("apply", "-auto-approve", "-input=false")

    trace = (tf.workdir / "terraform-trace.log").read_text(errors="replace")
    assert trace.count("[build] installing") == 1, "built more than once"
    assert "(from the artifact store)" in trace
    outputs = tf.outputs()
    assert sorted(outputs["code_sha256"]) == sorted(targets)
    assert len(set(outputs["code_sha256"].values())) == 1
    accounts = {"own": own_account, "other": other_account}
    for key, (region, role) in targets.items():
        assert f":{region}:{accounts[key]}:layer:{LAYER}:" in outputs["layer_version_arn"][key]
        lambda_in = (
            as_role(role, "lambda", region, aws.endpoint_url)
            if role
            else boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name=region)
        )
        (listed,) = lambda_in.list_layer_versions(LayerName=LAYER)["LayerVersions"]
        assert listed["LayerVersionArn"] == outputs["layer_version_arn"][key]
        content = lambda_in.get_layer_version(LayerName=LAYER, VersionNumber=listed["Version"])["Content"]
        assert content["CodeSha256"] == outputs["code_sha256"][key]
    # The other account's version is not in the provider's own account.
    assert boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name="eu-west-1").list_layers()["Layers"] == []

    # Refresh (as the role) and plan: no change, nothing built; another role is another account: a replacement.
    plan = tf.plan("after.tfplan")
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout
    (tf.workdir / "main_override.tf").write_text(
        'resource "alab_layer" "deps" {\n'
        '  role_arn = each.value.role_arn == null ? null : "arn:aws:iam::333333333333:role/alab-deployer"\n}\n'
    )
    plan = tf.plan("moved.tfplan")
    assert '# alab_layer.deps["other"] must be replaced' in plan.stdout, plan.stdout
    assert '# alab_layer.deps["own"]' not in plan.stdout  # the own account's layer stays
    assert "# forces replacement" in attribute_line(plan.stdout, "role_arn")
    trace = (tf.workdir / "terraform-trace.log").read_text(errors="replace")
    assert trace.count("[build] installing") == 1
    assert_no_secret(tf, credentials.password)
    for name, data in tf.artifacts().items():
        assert MOTO_SESSION_TOKEN_PREFIX.encode() not in data, f"an assumed session token in {name}"


def attribute_line(plan_output: str, name: str) -> str:
    found = re.search(rf"^\s*[+~-]?\s*{name}\s+=.*$", plan_output, re.MULTILINE)
    assert found, f"{name} not in the plan:\n{plan_output}"
    return found.group(0)


@pytest.mark.parametrize(
    "bad", ["arn:aws:iam::2222:role/deployer", "arn:aws:iam::222222222222:user/deployer", "deployer"]
)
def test_a_bad_role_arn_fails_the_plan_on_that_argument(
    terraform_bin: str,
    cli_config: Path,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    tmp_path: Path,
    bad: str,
) -> None:
    tf = working_dir(DIR_ACCOUNTS, terraform_bin, cli_config, tmp_path / "accounts")
    configure(
        tf,
        aws=aws,
        bucket=bucket,
        project=project_copy("uv"),
        credentials=credentials,
        bucket_prefix=bucket,
        targets=json.dumps({"other": {"region": "eu-west-1", "role_arn": bad}}),
        store_target="other",
    )
    tf.run("init", "-input=false")
    result = tf.run("plan", "-input=false", ok_codes=(1,))
    assert "Invalid role_arn" in result.stderr
    message = f"role_arn {bad!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
    assert message in " ".join(result.stderr.split())  # Terraform wraps the detail
    assert "= each.value.role_arn" in result.stderr  # the diagnostic points at that argument's line


@pytest.mark.parametrize(
    ("schema_version", "added_since"),
    [(2, ("role_arn",)), (1, ("region", "role_arn", "artifact_store"))],
)
def test_a_state_written_before_the_placement_inputs_existed_plans_no_change(
    layer_terraform: Terraform,
    aws: MotoServer,
    bucket: str,
    project_copy: Callable[[str], Path],
    credentials: Credentials,
    schema_version: int,
    added_since: tuple[str, ...],
) -> None:
    """Schema 2 added ``region`` and ``artifact_store``, 3 ``role_arn``; an older state (without them) is
    upgraded, not refused."""
    tf = layer_terraform
    configure(tf, aws=aws, bucket=bucket, project=project_copy("uv"), credentials=credentials)
    tf.run("init", "-input=false")
    tf.run("apply", "-auto-approve", "-input=false")
    path = tf.workdir / "terraform.tfstate"
    state = json.loads(path.read_text())
    (instance,) = state["resources"][0]["instances"]
    assert instance["schema_version"] == 3
    for name in added_since:
        del instance["attributes"][name]
    instance["schema_version"] = schema_version  # as the provider before them wrote it
    state["serial"] += 1
    path.write_text(json.dumps(state))
    plan = tf.plan("after-upgrade.tfplan")
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr
