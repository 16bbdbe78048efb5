"""The options are declared once (``layer/spec.py``): every front end is generated from the spec.

The tables here are the spec's own fields, never a list written in this file, so a field added to the
spec without reaching a front end fails a test.
"""

from __future__ import annotations

import dataclasses

import pytest

from aws_lambda_artifact_builder.cli import CONFIG_KEYS, build_parser, config_keys
from aws_lambda_artifact_builder.layer.package import SLIM_OPTIONS
from aws_lambda_artifact_builder.layer.spec import (
    DEPLOY_ONLY,
    SPEC_CLASSES,
    DeployOptions,
    LayerSpec,
    core_kwargs,
    option,
    spec_fields,
    type_problems,
)
from aws_lambda_artifact_builder.pulumi_provider import REPLACE_ON, LambdaLayerProvider
from aws_lambda_artifact_builder.terraform_provider.resource import LAYER_SCHEMA, REPLACING_INPUTS, layer_schema


@dataclasses.dataclass(frozen=True)
class ExtendedSpec(LayerSpec):
    """The spec plus one option a test adds: one field, nothing else."""

    dummy_level: int | None = option(None, help="A dummy option added by a test.", kind=int, replaces=True)
    dummy_mode: str | None = option(None, help="A deploy-only dummy.", choices=("fast", "slow"), commands=DEPLOY_ONLY)


EXTENDED = (ExtendedSpec, DeployOptions)


def _dests(parser, command: str) -> set[str]:
    sub = parser._subparsers._group_actions[0].choices["layer"]._subparsers._group_actions[0].choices[command]
    return {action.dest for action in sub._actions}


# ------------------------------------------------------------------ a dummy field reaches every front end
def test_a_dummy_field_becomes_a_cli_flag_and_a_config_key():
    parser = build_parser(EXTENDED)
    args = parser.parse_args(["layer", "plan", "--dummy-level", "7"])
    assert args.dummy_level == 7
    args = parser.parse_args(["layer", "deploy", "--dummy-mode", "fast", "--dummy-level", "1"])
    assert (args.dummy_mode, args.dummy_level) == ("fast", 1)
    assert "dummy_mode" in _dests(parser, "plan")  # plan takes every flag deploy takes, and ignores this one
    assert "dummy_mode" not in core_kwargs({"dummy_mode": "fast"}, deploy=False, classes=EXTENDED)
    with pytest.raises(SystemExit):
        parser.parse_args(["layer", "deploy", "--dummy-mode", "medium"])
    assert config_keys(EXTENDED)["dummy_level"] is int
    assert "dummy_level" not in CONFIG_KEYS  # the real spec is untouched


def test_a_dummy_field_becomes_a_terraform_attribute():
    attributes = {a.name: a for a in layer_schema(EXTENDED).attributes}
    assert attributes["dummy_level"].optional and attributes["dummy_level"].requires_replace
    assert not attributes["dummy_mode"].requires_replace
    assert "dummy_level" not in {a.name for a in LAYER_SCHEMA.attributes}


def test_a_dummy_field_is_checked_by_the_pulumi_check():
    class Provider(LambdaLayerProvider):
        spec_classes = EXTENDED

    result = Provider().check({}, {"dummy_level": "high", "dummy_mode": "medium"})
    reasons = {f.property: f.reason for f in result.failures}
    assert reasons["dummy_level"] == "dummy_level must be an integer, not 'high'"
    assert "medium" in reasons["dummy_mode"] and "fast" in reasons["dummy_mode"]


# ------------------------------------------------------------------ the real spec, front end by front end
def test_every_option_with_a_command_is_a_flag_of_that_command():
    parser = build_parser()
    for command in ("plan", "deploy"):
        dests = _dests(parser, command)
        wanted = {f.option.dest or f.name for f in spec_fields() if command in f.option.commands}
        assert wanted <= dests, wanted - dests


def test_every_resource_option_is_a_terraform_input_with_its_metadata():
    attributes = {a.name: a for a in LAYER_SCHEMA.attributes}
    for f in spec_fields():
        if not f.option.resource:
            continue
        attribute = attributes[f.name]
        assert attribute.required == f.option.required
        assert bool(attribute.requires_replace) == f.option.replaces
        assert attribute.description == f.option.help


def test_replacing_inputs_are_the_same_everywhere_and_come_from_the_spec():
    from_spec = tuple(f.name for f in spec_fields() if f.option.replaces)
    assert REPLACE_ON == REPLACING_INPUTS == from_spec
    assert {"layer_name", "s3dir_lambda"} <= set(from_spec)


def test_the_drift_of_the_issue_is_gone():
    """``image``/``container_runtime`` and the packaging options reach the CLI, pyproject and Terraform."""
    deploy = _dests(build_parser(), "deploy")
    tf = {a.name for a in LAYER_SCHEMA.attributes}
    for name in ("image", "container_runtime", "compile_bytecode", "unzipped_size_limit", *SLIM_OPTIONS):
        assert name in deploy and name in CONFIG_KEYS and name in tf


def test_core_kwargs_gives_plan_and_deploy_their_arguments():
    import inspect

    from aws_lambda_artifact_builder.layer.workflow import deploy_layer, plan_layer

    values = {
        "layer_name": "x",
        "path_pyproject_toml": "p",
        "s3dir_lambda": "s3://b/",
        "tool": "uv",
        "compile_bytecode": True,
        "keep_last": 2,
    }
    plan_kwargs = core_kwargs(values, deploy=False)
    deploy_kwargs = core_kwargs(values, deploy=True)
    assert set(plan_kwargs) <= set(inspect.signature(plan_layer).parameters)
    assert set(deploy_kwargs) <= set(inspect.signature(deploy_layer).parameters)
    assert deploy_kwargs["packaging_options"].compile_bytecode is True
    assert deploy_kwargs["keep_last"] == 2 and "keep_last" not in plan_kwargs
    assert plan_kwargs["python_version"] == LayerSpec.__dataclass_fields__["python_version"].default


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"keep_last": "3"}, "keep_last"),
        ({"keep_last": True}, "keep_last"),
        ({"compile_bytecode": "yes"}, "compile_bytecode"),
        ({"permissions": ["123456789012", 5]}, "permissions"),
        ({"architecture": "sparc"}, "architecture"),
        ({"keep_last": 3.0, "compile_bytecode": False, "permissions": ["public"]}, None),
    ],
)
def test_type_problems_name_the_input(values, bad):
    problems = type_problems(values)
    assert [name for name, _ in problems] == ([bad] if bad else [])


def test_spec_classes_are_frozen():
    for cls in SPEC_CLASSES:
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_packaging_options_are_checked_on_their_own_input_by_pulumi_and_the_api(tmp_path):
    from aws_lambda_artifact_builder.api import PackagingOptions, validate_layer_inputs

    news = {
        "layer_name": "demo",
        "path_pyproject_toml": str(tmp_path / "none.toml"),
        "s3dir_lambda": "s3://bucket/x/",
        "tool": "uv",
        "unzipped_size_limit": 0,
    }
    failures = {f.property: f.reason for f in LambdaLayerProvider().check({}, news).failures}
    assert "unzipped_size_limit 0 must be a size of at least 1 byte (e.g. 250MB)" == failures["unzipped_size_limit"]
    problems = dict(
        validate_layer_inputs(
            **{k: v for k, v in news.items() if k != "unzipped_size_limit"},
            packaging_options=PackagingOptions(unzipped_size_limit=0),
        )
    )
    assert problems["unzipped_size_limit"] == failures["unzipped_size_limit"]


def test_placement_reaches_terraform_and_pulumi_but_not_the_cli_nor_the_core():
    """``region``, ``role_arn`` and ``artifact_store``: resource inputs only (the CLI has its own repeatable
    --region and --role-arn)."""
    parser = build_parser()
    args = parser.parse_args(["layer", "deploy", "--region", "eu-west-1", "--region", "us-east-1"])
    assert args.region == ["eu-west-1", "us-east-1"]  # still the CLI's targets flag
    args = parser.parse_args(["layer", "deploy", "--role-arn", "arn:aws:iam::111111111111:role/d"])
    assert args.role_arn == ["arn:aws:iam::111111111111:role/d"]  # and the CLI's own --role-arn
    for name in ("artifact_store", "role_arn"):
        assert name not in CONFIG_KEYS
    assert "artifact_store" not in _dests(parser, "deploy")
    attributes = {a.name: a for a in LAYER_SCHEMA.attributes}
    assert attributes["region"].optional and attributes["region"].requires_replace
    assert attributes["role_arn"].optional and attributes["role_arn"].requires_replace
    assert not attributes["role_arn"].sensitive  # an ARN, not a credential: plans show which account
    assert attributes["artifact_store"].optional and not attributes["artifact_store"].requires_replace
    assert {"region", "role_arn"} <= set(REPLACE_ON) and "artifact_store" not in REPLACE_ON
    values = {
        "layer_name": "x",
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::111111111111:role/d",
        "artifact_store": "s3://store/layers/",
    }
    assert not {"region", "role_arn", "artifact_store"} & set(core_kwargs(values, deploy=True))
    failures = {
        f.property
        for f in LambdaLayerProvider()
        .check({}, {"region": "Europe", "role_arn": "deployer", "artifact_store": "x"})
        .failures
    }
    assert {"region", "role_arn", "artifact_store"} <= failures
