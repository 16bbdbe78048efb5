"""The options are declared once (``layer/spec.py``): every front end is generated from the spec.

The tables here are the spec's own fields, never a list written in this file, so a field added to the
spec without reaching a front end fails a test. The one exception says what the spec must declare: which
inputs force a replacement (``REPLACED_WHEN_CHANGED``), written out with the reason for each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.cli import CONFIG_KEYS, build_parser, config_keys, main
from aws_lambda_artifact_builder.layer.facts import VersionFacts
from aws_lambda_artifact_builder.layer.inputs import check_spec, resolve_spec, spec_from_kwargs
from aws_lambda_artifact_builder.layer.manifest import PackageChanges
from aws_lambda_artifact_builder.layer.package import SLIM_OPTIONS
from aws_lambda_artifact_builder.layer.publish import LayerDeployment
from aws_lambda_artifact_builder.layer.spec import (
    DEPLOY_ONLY,
    SPEC_CLASSES,
    DeployOptions,
    LayerSpec,
    Placement,
    make_spec,
    option,
    option_values,
    spec_fields,
    type_problems,
)
from aws_lambda_artifact_builder.layer.store import StoredArtifact
from aws_lambda_artifact_builder.layer.workflow import LayerPlan
from aws_lambda_artifact_builder.pulumi_provider import REPLACE_ON, LambdaLayerProvider, resource_props
from aws_lambda_artifact_builder.terraform_provider.resource import LAYER_SCHEMA, REPLACING_INPUTS
from s3pathlib.api import S3Path


@dataclasses.dataclass(frozen=True)
class ExtendedSpec(LayerSpec):
    """The spec plus one option a test adds: one field, nothing else."""

    dummy_level: int | None = option(None, help="A dummy option added by a test.", kind=int, replaces=True)
    dummy_mode: str | None = option(None, help="A deploy-only dummy.", choices=("fast", "slow"), commands=DEPLOY_ONLY)


EXTENDED = (ExtendedSpec, DeployOptions, Placement)


def _dests(parser, command: str) -> set[str]:
    sub = parser._subparsers._group_actions[0].choices["layer"]._subparsers._group_actions[0].choices[command]
    return {action.dest for action in sub._actions}


# ------------------------------------------------------------------ a dummy field reaches every front end
@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A pip project the core's check can read (no index, no lock tool)."""
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname = 'demo'\nversion = '0'\ndependencies = ['attrs']\n")
    (tmp_path / "requirements.txt").write_text("attrs==23.1.0\n")
    return path


#: The clients a front end hands the fake core: none, it makes no AWS call.
NO_CLIENTS: dict[str, Any] = {"s3_client": None, "lambda_client": None}


class FakeCore:
    """The core's ``plan`` and ``deploy``: each runs the core's own check of what it is given (as the real
    ones do, before any AWS call) and records it; no S3, no Lambda, no build."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, LayerSpec, DeployOptions | None]] = []

    def plan(self, spec: LayerSpec, **clients: Any) -> LayerPlan:
        inputs = resolve_spec(spec)
        self.calls.append(("plan", spec, None))
        return LayerPlan(
            changed=True,
            reason="no earlier version is recorded at s3://bucket/demo/: a deploy publishes version 1",
            layer_name=inputs.layer_name,
            fingerprint=inputs.fingerprint,
            current_version=None,
            current_layer_version_arn=None,
            package_changes=PackageChanges(),
            recorded_fingerprint=None,
            s3uri_record="s3://bucket/demo/",
        )

    def deploy(self, spec: LayerSpec, options: DeployOptions | None = None, **effects: Any) -> LayerDeployment:
        inputs = resolve_spec(spec, options)
        self.calls.append(("deploy", spec, options))
        arn = f"arn:aws:lambda:us-east-1:123456789012:layer:{inputs.layer_name}"
        facts = VersionFacts(
            layer_name=inputs.layer_name,
            layer_version=1,
            layer_version_arn=f"{arn}:1",
            layer_arn=arn,
            fingerprint=inputs.fingerprint,
            code_sha256="c2hh",
            code_size=1,
            s3uri_manifest="s3://bucket/demo/requirements-1.txt",
        )
        return LayerDeployment.from_facts(facts, published=True)

    def store_artifact(self, spec: LayerSpec, options: DeployOptions | None = None, **effects: Any) -> StoredArtifact:
        inputs = resolve_spec(spec, options)
        self.calls.append(("push", spec, options))
        zip_path = S3Path(spec.s3dir_lambda).joinpath("artifacts", f"{inputs.fingerprint}.zip")
        return StoredArtifact(inputs.fingerprint, "c2hh", 1, zip_path, '"etag"', Path("layer.zip"))

    def given(self, call: str) -> list[Any]:
        """The dummy options of every spec the core was given for ``call``."""
        return [(spec.dummy_level, spec.dummy_mode) for name, spec, _ in self.calls if name == call]


@pytest.fixture()
def core(monkeypatch: pytest.MonkeyPatch) -> FakeCore:
    """The fake core, wherever a front end takes the core's ``plan``/``deploy`` from."""
    from aws_lambda_artifact_builder import api, pulumi_provider
    from aws_lambda_artifact_builder.layer import workflow

    fake = FakeCore()
    for module in (workflow, api, pulumi_provider):
        monkeypatch.setattr(module, "plan", fake.plan)
        monkeypatch.setattr(module, "deploy", fake.deploy)
    monkeypatch.setattr(workflow, "store_artifact", fake.store_artifact)
    return fake


def test_a_dummy_field_reaches_the_core_from_the_cli(project: Path, core: FakeCore, capsys, monkeypatch):
    monkeypatch.setattr("aws_lambda_artifact_builder.cli._clients", lambda settings, args: NO_CLIENTS)
    argv = ["layer", "plan", "--project", str(project), "--layer-name", "demo", "--s3dir", "s3://bucket/demo/"]
    assert main([*argv, "--dummy-level", "7"], classes=EXTENDED) == 0, capsys.readouterr().err
    project.write_text(project.read_text() + "[tool.aws_lambda_artifact_builder]\ndummy_level = 3\n")
    assert main(argv, classes=EXTENDED) == 0, capsys.readouterr().err  # a configuration key as well
    assert core.given("plan") == [(7, None), (3, None)]
    assert main([*argv, "--dummy-level", "-1"], classes=EXTENDED) == 0  # the core's own type check passes it
    assert core.given("plan")[-1] == (-1, None)
    assert "CHANGE" in capsys.readouterr().out
    # the flags: deploy-only fields are flags of deploy (plan takes and ignores them), choices enforced
    parser = build_parser(EXTENDED)
    args = parser.parse_args(["layer", "deploy", "--dummy-mode", "fast", "--dummy-level", "1"])
    assert (args.dummy_mode, args.dummy_level) == ("fast", 1)
    assert "dummy_mode" in _dests(parser, "plan")
    with pytest.raises(SystemExit):
        parser.parse_args(["layer", "deploy", "--dummy-mode", "medium"])
    assert config_keys(EXTENDED)["dummy_level"] is int and "dummy_level" not in CONFIG_KEYS


@pytest.fixture()
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The many-target routes without AWS: no clients, and a bucket whose region may not be asked."""
    from aws_lambda_artifact_builder import cli_targets
    from aws_lambda_artifact_builder.layer import targets

    for module in (targets, cli_targets):
        monkeypatch.setattr(module, "target_clients", lambda target, endpoint_url=None: (None, None))
    monkeypatch.setattr(targets, "bucket_region", lambda s3_client, bucket: None)


def test_a_dummy_field_reaches_the_core_from_the_cli_deploy_push_and_many_target_plan(
    project: Path, core: FakeCore, no_aws: None, capsys
):
    """``alab layer deploy`` to one region and to two, ``alab layer push`` and ``plan`` of two regions: each
    gives the core the dummy fields, in the spec of each target's own s3dir."""
    argv = ["--project", str(project), "--layer-name", "demo", "--s3dir", "s3://bucket-{region}/demo/"]
    dummies = ["--dummy-level", "7", "--dummy-mode", "fast", "--keep-last", "2"]
    one, two = ["--region", "eu-west-1"], ["--region", "eu-west-1", "--region", "us-east-1"]
    assert main(["layer", "deploy", *argv, *dummies, *one], classes=EXTENDED) == 0, capsys.readouterr().err
    assert main(["layer", "deploy", *argv, *dummies, *two], classes=EXTENDED) == 0, capsys.readouterr().err
    assert core.given("deploy") == [(7, "fast")] * 3
    s3dirs = [spec.s3dir_lambda for name, spec, _ in core.calls if name == "deploy"]
    assert s3dirs[0] == "s3://bucket-eu-west-1/demo/"
    assert sorted(s3dirs[1:]) == ["s3://bucket-eu-west-1/demo/", "s3://bucket-us-east-1/demo/"]
    assert {options.keep_last for name, _, options in core.calls if name == "deploy"} == {2}
    assert "Published: us-east-1 demo version 1" in capsys.readouterr().out
    project.write_text(project.read_text() + "[tool.aws_lambda_artifact_builder]\ndummy_level = 3\n")
    assert main(["layer", "push", *argv, *one], classes=EXTENDED) == 0, capsys.readouterr().err
    assert core.given("push") == [(3, None)]  # a configuration key as well
    assert core.calls[-1][1].s3dir_lambda == "s3://bucket-eu-west-1/demo/"  # the store's target
    assert "Already stored: s3://bucket-eu-west-1/demo/artifacts/" in capsys.readouterr().out  # no build here
    assert main(["layer", "plan", *argv, *two, "--dummy-level", "5"], classes=EXTENDED) == 0
    assert core.given("plan") == [(5, None), (5, None)]
    assert "Layer demo in us-east-1: CHANGE" in capsys.readouterr().out


def test_the_many_target_functions_keep_their_keyword_form(project: Path, core: FakeCore, no_aws: None):
    """``deploy_layer_to_targets``/``push_layer_artifact`` are public (api.py, README) with the layer options
    as keywords: that form still works, a bad ``packaging_options`` is named, and spec plus keywords is refused."""
    from aws_lambda_artifact_builder.api import deploy_layer_to_targets, push_layer_artifact
    from aws_lambda_artifact_builder.errors import LayerInputError
    from aws_lambda_artifact_builder.layer.package import PackagingOptions
    from aws_lambda_artifact_builder.layer.targets import DeployTarget

    targets = [DeployTarget(region=r, s3dir_lambda="s3://b-{region}/x/") for r in ("eu-west-1", "us-east-1")]
    layer = {k: v for k, v in _good(project).items() if k != "s3dir_lambda"}
    packaging = PackagingOptions(compile_bytecode=True)
    result = deploy_layer_to_targets(
        targets=targets, printer=lambda _l: None, keep_last=4, packaging_options=packaging, **layer
    )
    result.raise_for_failures()
    deployed = [(spec.compile_bytecode, options.keep_last) for name, spec, options in core.calls if name == "deploy"]
    assert deployed == [(True, 4), (True, 4)]
    uri, _, built = push_layer_artifact(targets=targets, printer=lambda _l: None, **layer)
    assert uri.startswith("s3://b-eu-west-1/x/artifacts/") and built is False  # the fake core built nothing
    with pytest.raises(LayerInputError) as bad:
        deploy_layer_to_targets(targets=targets, packaging_options={"drop_tests": True}, **layer)
    assert [name for name, _ in bad.value.problems] == ["packaging_options"]
    spec, options = make_spec(_good(project))
    with pytest.raises(TypeError, match="keep_last"):
        deploy_layer_to_targets(spec, options, targets=targets, keep_last=1)


def test_a_dummy_field_reaches_the_core_from_pulumi(project: Path, core: FakeCore, monkeypatch):
    """The program's arguments, then Check, Diff and Create of the provider: each gives the core the dummy."""

    class Provider(LambdaLayerProvider):
        spec_classes = EXTENDED

    monkeypatch.setattr(Provider, "_clients", lambda self, layer: NO_CLIENTS)
    with pytest.raises(TypeError, match="dummy_level"):
        resource_props({"dummy_level": 1, "layer_name": "demo"})  # not an argument of the real resource
    news = {**_good(project), "dummy_level": 7.0, "dummy_mode": "fast"}  # numbers cross gRPC as floats
    provider = Provider()
    checked = provider.check({}, news)
    assert checked.failures == [] and checked.inputs["fingerprint"]
    assert not core.calls  # Check is the core's check alone: no plan, no deploy
    olds = provider.create(checked.inputs).outs
    assert core.given("deploy") == [(7, "fast")]
    assert olds["dummy_level"] == 7.0 and olds["published"] is True
    assert provider.diff("id", olds, dict(checked.inputs)).replaces == []
    assert core.given("plan") == [(7, "fast")]
    changed = provider.diff("id", olds, {**checked.inputs, "dummy_level": 8})
    assert changed.replaces == ["dummy_level"]  # a "replaces" field of the extended spec replaces
    assert provider.diff("id", olds, {**checked.inputs, "dummy_mode": "slow"}).replaces == []
    bad = {f.property: f.reason for f in provider.check({}, {**news, "dummy_level": "high"}).failures}
    assert bad == {"dummy_level": "dummy_level must be an integer, not 'high'"}
    reasons = {f.property: f.reason for f in provider.check({}, {**news, "dummy_mode": "medium"}).failures}
    assert "medium" in reasons["dummy_mode"] and "fast" in reasons["dummy_mode"]


def test_a_dummy_field_reaches_the_core_from_terraform(project: Path, core: FakeCore):
    """The schema, then validate, plan and apply of the resource: each gives the core the dummy."""
    from aws_lambda_artifact_builder.terraform_provider.provider import AlabProvider
    from aws_lambda_artifact_builder.terraform_provider.resource import LayerResource
    from tf.utils import Diagnostics

    class Resource(LayerResource):
        spec_classes = EXTENDED

    attributes = {a.name: a for a in Resource.get_schema().attributes}
    assert attributes["dummy_level"].optional and attributes["dummy_level"].requires_replace
    assert not attributes["dummy_mode"].requires_replace
    assert "dummy_level" not in {a.name for a in LayerResource.get_schema().attributes}
    provider = AlabProvider()
    provider.clients = lambda region, role_arn: NO_CLIENTS  # type: ignore[method-assign]
    resource = Resource(provider)
    config = dict.fromkeys(attributes) | _good(project) | {"dummy_level": 7.0, "dummy_mode": "fast"}
    diags = Diagnostics()
    resource.validate(diags, "alab_layer", config)
    assert not diags.has_errors(), diags.diagnostics
    planned = resource.plan(_PlanContext(diags), None, config)
    assert not diags.has_errors(), diags.diagnostics
    state = resource._deploy(diags, planned, prior=None)
    assert state is not None and state["layer_version"] == 1, diags.diagnostics
    assert core.given("plan") == core.given("deploy") == [(7, "fast")]
    resource.validate(diags, "alab_layer", {**config, "dummy_mode": "medium"})
    assert [d.summary for d in diags.diagnostics if d.severity == "error"] == ["Invalid dummy_mode"]


class _PlanContext:
    def __init__(self, diagnostics: Any) -> None:
        self.diagnostics = diagnostics


def _good(project: Path) -> dict[str, Any]:
    return {
        "layer_name": "demo",
        "path_pyproject_toml": str(project),
        "s3dir_lambda": "s3://bucket/demo/",
        "tool": "pip",
    }


def test_the_core_checks_a_field_it_was_never_told_of(project: Path):
    """``check_spec`` loops over the spec's fields: a dummy field is type- and choice-checked by the core."""
    spec, options = make_spec({**_good(project), "dummy_level": "high", "dummy_mode": "medium"}, EXTENDED)
    assert isinstance(spec, ExtendedSpec)
    problems = dict(check_spec(spec, options)[0])
    assert set(problems) == {"dummy_level", "dummy_mode"}
    spec, options = make_spec({**_good(project), "dummy_level": 2.0}, EXTENDED)
    assert check_spec(spec, options)[0] == [] and spec.dummy_level == 2


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


#: The inputs whose change needs a new resource, written out here with why (not read from the spec, so a
#: wrong ``replaces=`` there fails): each names another Lambda layer, another record, or a version that Lambda
#: cannot change once published. Every other input changes what the same layer's next version holds (an
#: update that publishes) or how it is built or obtained.
REPLACED_WHEN_CHANGED = {
    "layer_name": "another Lambda layer: the old one's versions stay, the resource's ARN changes",
    "s3dir_lambda": "another record: the fingerprint history that decides what is published lives there",
    "python_version": "a published version's compatible runtimes cannot be changed",
    "architecture": "a published version's compatible architectures cannot be changed",
    "region": "a layer lives in one region's Lambda (and its zip in that region's bucket)",
    "role_arn": "another account's Lambda",
}


def test_the_inputs_that_replace_a_layer_are_those_naming_another_layer_or_record():
    assert set(REPLACE_ON) == set(REPLACED_WHEN_CHANGED) == set(REPLACING_INPUTS)
    assert {a.name for a in LAYER_SCHEMA.attributes if a.requires_replace} == set(REPLACED_WHEN_CHANGED)
    # What Pulumi does: a change of exactly that input is a replacement naming it (no AWS call is needed).
    olds = {
        "layer_name": "deps",
        "s3dir_lambda": "s3://bucket/apps/",
        "python_version": "3.12",
        "architecture": "x86_64",
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::111111111111:role/deployer",
    }
    changed = {
        "layer_name": "other-deps",
        "s3dir_lambda": "s3://bucket/other/",
        "python_version": "3.13",
        "architecture": "arm64",
        "region": "us-east-1",
        "role_arn": "arn:aws:iam::222222222222:role/deployer",
    }
    provider = LambdaLayerProvider()
    for name in REPLACED_WHEN_CHANGED:
        result = provider.diff("id", olds, {**olds, name: changed[name]})
        assert result.changes and result.replaces == [name], name


def test_the_drift_of_the_issue_is_gone():
    """``image``/``container_runtime`` and the packaging options reach the CLI, pyproject and Terraform."""
    deploy = _dests(build_parser(), "deploy")
    tf = {a.name for a in LAYER_SCHEMA.attributes}
    for name in ("image", "container_runtime", "compile_bytecode", "unzipped_size_limit", *SLIM_OPTIONS):
        assert name in deploy and name in CONFIG_KEYS and name in tf


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
    assert failures["unzipped_size_limit"] == "unzipped_size_limit 0 must be a size of at least 1 byte (e.g. 250MB)"
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
    assert "role_arn" not in CONFIG_KEYS
    # artifact_store is also the CLI's --artifact-store and key (the store its targets share, cli_targets.py)
    assert CONFIG_KEYS["artifact_store"] is str and "artifact_store" in _dests(parser, "deploy")
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
    assert not {"region", "role_arn", "artifact_store"} & set(option_values(*make_spec(values)))
    failures = {
        f.property
        for f in LambdaLayerProvider()
        .check({}, {"region": "Europe", "role_arn": "deployer", "artifact_store": "x"})
        .failures
    }
    assert {"region", "role_arn", "artifact_store"} <= failures


def test_the_cores_own_checks_are_of_spec_options():
    """Every check the core keys by name is an option of the spec (a renamed field cannot lose its check)."""
    from aws_lambda_artifact_builder.layer.inputs import CHECKED_INPUTS

    assert {f.name for f in spec_fields()} >= CHECKED_INPUTS
    assert "path_pyproject_toml" in CHECKED_INPUTS and "image" not in CHECKED_INPUTS


def test_secrets_and_resource_only_options_come_from_the_spec():
    """``credentials`` (secret) and ``delete_on_destroy`` are spec options: Terraform and Pulumi take them
    from there, the secret one write-only and never an output; ``container_runtime`` has its choices."""
    from aws_lambda_artifact_builder.layer.build_container_plan import CONTAINER_RUNTIMES
    from aws_lambda_artifact_builder.pulumi_provider import SECRET_INPUTS, SETTINGS_INPUTS
    from aws_lambda_artifact_builder.terraform_provider.servicer import WriteOnlyAttribute

    fields = {f.name: f for f in spec_fields()}
    assert fields["credentials"].option.secret and not fields["delete_on_destroy"].option.core
    attributes = {a.name: a for a in LAYER_SCHEMA.attributes}
    assert isinstance(attributes["credentials"], WriteOnlyAttribute) and attributes["credentials"].sensitive
    assert not isinstance(attributes["delete_on_destroy"], WriteOnlyAttribute)
    assert SECRET_INPUTS == ("credentials",) and "credentials" not in SETTINGS_INPUTS
    assert "delete_on_destroy" in SETTINGS_INPUTS
    assert fields["container_runtime"].option.choices == CONTAINER_RUNTIMES
    assert "credentials" not in repr(DeployOptions(credentials=None))
    assert "credentials" not in CONFIG_KEYS and "delete_on_destroy" not in CONFIG_KEYS


def test_the_pulumi_resource_signature_is_generated_from_the_spec():
    """``LambdaLayer(name, *, layer_name=..., ..., opts=None)``: one documented keyword per resource option."""
    import inspect

    from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer

    params = inspect.signature(LambdaLayer.__init__).parameters
    wanted = [f.name for f in spec_fields() if f.option.resource]
    assert [p for p in params if p not in ("self", "resource_name", "opts")] == wanted
    assert params["layer_name"].default is inspect.Parameter.empty
    assert params["python_version"].default == LayerSpec.__dataclass_fields__["python_version"].default
    doc = LambdaLayer.__init__.__doc__ or ""
    assert all(f"``{name}``" in doc for name in wanted)
    with pytest.raises(TypeError, match="missing required keyword arguments: s3dir_lambda, tool"):
        resource_props({"layer_name": "x", "path_pyproject_toml": "p"})


def test_the_shims_take_any_option_of_the_spec_by_name(project: Path):
    """A field added to the spec reaches ``plan_layer``/``deploy_layer`` without a keyword of its own (the CLI's
    many-target path passes its options on so); a name that is no option is still a TypeError."""
    from aws_lambda_artifact_builder.api import LayerInputError, PackagingOptions, deploy_layer, plan_layer

    with pytest.raises(LayerInputError) as raised:
        plan_layer(**_good(project), container_runtime="rkt", drop_docs="yes", s3_client=None, lambda_client=None)
    assert [name for name, _ in raised.value.problems] == ["container_runtime", "drop_docs"]
    with pytest.raises(TypeError, match="dummy_level"):
        deploy_layer(**_good(project), dummy_level=1)
    spec, _, _ = spec_from_kwargs(PackagingOptions(drop_docs=True, drop_tests=True), drop_tests=False)
    assert (spec.drop_docs, spec.drop_tests) == (True, False)  # an option given by name wins
