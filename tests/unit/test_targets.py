"""Deploy targets without AWS: validation, the region × account product, placeholders, the store's place."""

from __future__ import annotations

import pytest
from aws_lambda_artifact_builder.errors import LayerError, LayerInputError
from aws_lambda_artifact_builder.layer.foundation import LayerS3Layout
from aws_lambda_artifact_builder.layer.targets import (
    DeployTarget,
    expand_targets,
    placement_problems,
    resolve_s3dir,
    resource_clients,
    store_target_of,
)

ROLE_A = "arn:aws:iam::111111111111:role/deployer"
ROLE_B = "arn:aws:iam::222222222222:role/path/deployer"


def test_regions_times_roles_with_an_empty_role_as_the_callers_account():
    targets = expand_targets(["us-east-1", "eu-west-1"], [ROLE_A, ""], "s3://b-{region}/p/")
    assert [(t.region, t.role_arn) for t in targets] == [
        ("us-east-1", ROLE_A),
        ("eu-west-1", ROLE_A),
        ("us-east-1", None),
        ("eu-west-1", None),
    ]
    assert [t.label for t in targets[:1]] == ["us-east-1/111111111111"]
    assert expand_targets(["us-east-1"], [], "s3://b/p/")[0].role_arn is None


@pytest.mark.parametrize(
    "kwargs, name, message",
    [
        (dict(region="mars-1", s3dir_lambda="s3://b/p/"), "region", "is not an AWS region"),
        (
            dict(region="us-east-1", s3dir_lambda="s3://b/p/", role_arn="arn:aws:iam::1:role/x"),
            "role_arn",
            "is not an IAM role ARN",
        ),
        (
            dict(region="us-east-1", s3dir_lambda="s3://b/p/", role_arn="arn:aws:iam::111111111111:user/x"),
            "role_arn",
            "is not an IAM role",
        ),
    ],
)
def test_a_bad_target_is_an_input_error_on_its_input(kwargs, name, message):
    with pytest.raises(LayerInputError, match=message) as raised:
        DeployTarget(**kwargs)
    assert [input_ for input_, _ in raised.value.problems] == [name]


@pytest.mark.parametrize(
    "role_arn",
    [
        "deployer",
        "arn:aws:iam::1:role/x",  # not a 12-digit account
        "arn:aws:iam::111111111111:user/x",  # a user, not a role
        "arn:aws:iam::111111111111:role/",
        " arn:aws:iam::111111111111:role/x",
    ],
)
def test_a_resources_bad_role_arn_is_named_as_a_target_s_is(role_arn):
    """A Terraform or Pulumi resource's ``role_arn`` follows the CLI targets' rule, and the problem names it."""
    problems = dict(placement_problems({"region": "eu-west-1", "role_arn": role_arn}))
    assert list(problems) == ["role_arn"]
    assert problems["role_arn"] == f"role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
    with pytest.raises(LayerInputError) as raised:
        DeployTarget(region="eu-west-1", s3dir_lambda="s3://b/p/", role_arn=role_arn)
    assert raised.value.problems == [("role_arn", f"target {problems['role_arn']}")]


def test_a_resources_good_role_arn_and_unset_placement_pass():
    assert placement_problems({"region": "eu-west-1", "role_arn": ROLE_B, "artifact_store": "s3://bkt/store/"}) == []
    assert placement_problems({"region": None, "role_arn": None, "artifact_store": None}) == []


def test_a_role_needs_a_region_to_be_assumed_in(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(LayerInputError, match=f"{ROLE_A} is assumed in a region: set the resource's region") as raised:
        resource_clients(None, ROLE_A, endpoint_url=None)
    assert [name for name, _ in raised.value.problems] == ["region"]


def test_placeholders_are_filled_per_target_and_the_result_checked():
    target = DeployTarget(region="eu-west-1", s3dir_lambda="s3://layers-{account}-{region}/app/", role_arn=ROLE_B)
    assert resolve_s3dir(target) == "s3://layers-222222222222-eu-west-1/app/"
    with pytest.raises(LayerInputError, match="not a directory") as raised:
        resolve_s3dir(DeployTarget(region="eu-west-1", s3dir_lambda="s3://layers-{region}/app"))
    assert [name for name, _ in raised.value.problems] == ["s3dir_lambda"]


def test_the_store_is_the_same_target_whatever_the_order():
    targets = expand_targets(["us-east-1", "eu-west-1", "ap-southeast-2"], [ROLE_A, ""], "s3://b-{region}/p/")
    chosen = {store_target_of(order) for order in (targets, targets[::-1], targets[2:] + targets[:2])}
    assert chosen == {DeployTarget(region="ap-southeast-2", s3dir_lambda="s3://b-{region}/p/")}


def test_a_targets_table_item():
    item = DeployTarget.from_mapping({"region": "eu-west-1", "role_arn": ROLE_A}, default_s3dir="s3://b-{region}/p/")
    assert item == DeployTarget(region="eu-west-1", s3dir_lambda="s3://b-{region}/p/", role_arn=ROLE_A)
    with pytest.raises(LayerInputError, match="unknown keys bucket") as unknown:
        DeployTarget.from_mapping({"region": "eu-west-1", "bucket": "x"}, default_s3dir="s3://b/p/")
    with pytest.raises(LayerInputError, match="needs a region and an s3dir") as incomplete:
        DeployTarget.from_mapping({"region": "eu-west-1"}, default_s3dir=None)
    assert [name for error in (unknown, incomplete) for name, _ in error.value.problems] == ["targets", "targets"]


def test_store_keys_sit_below_the_layer_folder_by_fingerprint():
    layout = LayerS3Layout(s3dir_lambda="s3://bkt/app/")
    fingerprint = "0f" * 32
    assert layout.get_s3path_artifact_zip(fingerprint).uri == f"s3://bkt/app/layer/artifacts/{fingerprint}/layer.zip"
    assert layout.get_s3path_artifact_info(fingerprint).uri == f"s3://bkt/app/layer/artifacts/{fingerprint}/layer.json"
    assert layout.get_s3path_build_claim(fingerprint).key == f"app/layer/artifacts/{fingerprint}/build-claim.json"
    with pytest.raises(LayerError, match="not a sha256 hex digest"):
        layout.get_s3path_artifact_zip("../../x")
