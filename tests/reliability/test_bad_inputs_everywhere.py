"""One table of bad inputs, given to every front end: each gives a clear error naming the input, and
nothing is written to S3 or Lambda.

- API: ``deploy_layer`` raises ``LayerError`` (and ``validate_layer_inputs`` blames the input);
- CLI: ``alab layer deploy`` exits 1 with one line on stderr, no traceback;
- Pulumi: the engine harness's preview fails in Check on that property; problems only AWS can show
  (a missing bucket, a record of another layer) fail the Diff of an existing resource;
- Terraform: one ``terraform plan`` of a configuration holding one ``alab_layer`` per case reports a
  diagnostic on each case's resource.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import (
    LayerError,
    deploy_layer,
    publish_layer_version,
    upload_layer_zip_to_s3,
    validate_layer_inputs,
)
from aws_lambda_artifact_builder.layer.inputs import CHECKED_INPUTS
from aws_lambda_artifact_builder.layer.spec import spec_fields
from pulumi_engine_harness import CheckFailed, ProviderError, Registration, Stack
from reliability_helpers import alab
from support.layers import all_layer_versions, s3_snapshot, write_test_zip
from support.projects import set_pin
from terraform_harness import Terraform

LAYER = "bad-deps"
FOREIGN_LAYER = "someone-elses-layer"
MISSING_BUCKET = "alab-no-such-bucket-for-reliability"


@dataclasses.dataclass(frozen=True)
class Bad:
    id: str
    #: The input every front end must blame.
    prop: str
    #: Text every front end's message must contain (the bad value, or the file at fault).
    mentions: str
    #: Overrides of the good arguments.
    args: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Breaks the (copied) project instead.
    breaks_project: Callable[[Path], None] | None = None
    #: Visible only against AWS: a plan or diff, not an input check, finds it.
    aws: bool = False


def _remove_lock(path: Path) -> None:
    (path.parent / "uv.lock").unlink()


def _stale_lock(path: Path) -> None:
    set_pin(path, "alab-demo-core", "1.1.0")


BAD_INPUTS = [
    Bad("unknown tool", "tool", "npm", {"tool": "npm"}),
    Bad("python too old", "python_version", "3.9", {"python_version": "3.9"}),
    Bad("python not a version", "python_version", "latest", {"python_version": "latest"}),
    Bad("architecture amd64", "architecture", "amd64", {"architecture": "amd64"}),
    Bad("s3dir without scheme", "s3dir_lambda", "my-bucket/prefix/", {"s3dir_lambda": "my-bucket/prefix/"}),
    Bad("s3dir not a folder", "s3dir_lambda", "s3://my-bucket/prefix", {"s3dir_lambda": "s3://my-bucket/prefix"}),
    Bad("s3dir bad bucket name", "s3dir_lambda", "Bad_Bucket", {"s3dir_lambda": "s3://Bad_Bucket/x/"}),
    Bad("layer name with spaces", "layer_name", "bad name!", {"layer_name": "bad name!"}),
    Bad("layer name too long", "layer_name", "x" * 65, {"layer_name": "x" * 65}),
    Bad(
        "missing pyproject",
        "path_pyproject_toml",
        "/nonexistent/pyproject.toml",
        {"path_pyproject_toml": "/nonexistent/pyproject.toml"},
    ),
    Bad("missing lock", "path_pyproject_toml", "uv.lock", breaks_project=_remove_lock),
    Bad("stale lock", "path_pyproject_toml", "uv.lock", breaks_project=_stale_lock),
    Bad("lock of another tool", "path_pyproject_toml", "poetry.lock", {"tool": "poetry"}),
    Bad("keep_last zero", "keep_last", "keep_last", {"keep_last": 0}),
    Bad("bad account id", "permissions", "12345", {"permissions": ["12345"]}),
    Bad("unknown build place", "build_in", "lambda", {"build_in": "lambda"}),
    Bad("ignore_packages not names", "ignore_packages", "not a name!", {"ignore_packages": ["not a name!"]}),
    Bad(
        "s3dir missing bucket", "s3dir_lambda", MISSING_BUCKET, {"s3dir_lambda": f"s3://{MISSING_BUCKET}/x/"}, aws=True
    ),
    Bad("s3dir recording another layer", "s3dir_lambda", FOREIGN_LAYER, aws=True),
]
LOCAL = [c for c in BAD_INPUTS if not c.aws]
ON_AWS = [c for c in BAD_INPUTS if c.aws]

#: The CLI flag of every option, as the spec (``layer/spec.py``) declares it.
CLI_FLAGS = {f.name: f.option.cli_flags(f.name)[0] for f in spec_fields()}


def normal(text: str) -> str:
    """Whitespace-insensitive, so a wrapped diagnostic still contains what it names."""
    return " ".join(text.split())


@pytest.fixture()
def prepared(project_copy, bucket: str, s3_client, lambda_client) -> Callable[[Bad], dict[str, Any]]:
    """``prepared(case)`` → the case's arguments, its project copied and broken as the case says;
    ``prepared(None)`` → good arguments."""
    template = project_copy("uv")

    def prepare(case: Bad | None) -> dict[str, Any]:
        dest = template.parent.with_name("case-" + re.sub(r"\W+", "-", case.id if case else "good"))
        if not dest.exists():
            shutil.copytree(template.parent, dest)
            if case is not None and case.breaks_project is not None:
                case.breaks_project(dest / "pyproject.toml")
        s3dir = f"s3://{bucket}/bad/{dest.name}/"
        args: dict[str, Any] = dict(
            layer_name=LAYER,
            path_pyproject_toml=str(dest / "pyproject.toml"),
            s3dir_lambda=s3dir,
            tool="uv",
            python_version="3.12",
            architecture="x86_64",
        )
        if case is None:
            return args
        if case.id == "s3dir recording another layer":
            record_foreign_layer(args, s3_client, lambda_client)
        args.update(case.args)
        return args

    return prepare


def record_foreign_layer(args: dict[str, Any], s3_client, lambda_client) -> None:
    """Another layer published and recorded in this ``s3dir_lambda`` (no build: a staged test zip)."""
    path = Path(args["path_pyproject_toml"])
    write_test_zip(path)
    upload_layer_zip_to_s3(
        s3dir_lambda=args["s3dir_lambda"], path_pyproject_toml=path, s3_client=s3_client, verbose=False
    )
    publish_layer_version(
        **dict(args, layer_name=FOREIGN_LAYER), s3_client=s3_client, lambda_client=lambda_client, verbose=False
    )
    shutil.rmtree(path.parent / "build")


def test_the_table_covers_every_input_the_core_checks():
    """Every option of the spec that the core checks with its own rule (``inputs.CHECKED_INPUTS``) has a
    bad case, besides the packaging options (tests/unit/test_spec.py) and the secret login, which no
    front end but the API takes as an object (tests/integration/test_bad_inputs.py)."""
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS) >= 19
    checked = {f.name for f in spec_fields() if f.name in CHECKED_INPUTS}
    assert {c.prop for c in BAD_INPUTS} == {
        f.name for f in spec_fields() if f.name in checked and not (f.option.packaging or f.option.secret)
    }


# ---------------------------------------------------------------------------- API
@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_api(case: Bad, prepared, bucket, s3_client, lambda_client, credentials):
    args = prepared(case)
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)
    with pytest.raises(LayerError) as raised:
        deploy_layer(**args, credentials=credentials, verbose=False)
    message = str(raised.value)
    assert case.mentions in message and "\n" not in message.strip(), message
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before
    if not case.aws:
        assert case.prop in [prop for prop, _ in validate_layer_inputs(**args)]


# ---------------------------------------------------------------------------- CLI
def cli_args(args: dict[str, Any]) -> list[str]:
    argv = []
    for prop, flag in CLI_FLAGS.items():
        value = args.get(prop)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            argv += [flag, str(item)]
    return argv


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_cli(case: Bad, prepared, bucket, s3_client, lambda_client):
    args = prepared(case)
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)
    result = alab("layer", "deploy", *cli_args(args))
    # alab --help's exit codes: 3 a wrong input, 4 a lock that is the only problem, 6 what only AWS can tell
    # (a missing bucket), 1 the CLI's own table.
    assert result.returncode in (1, 3, 4, 6), result.stderr
    assert (result.returncode == 4) == ("lock" in case.id), result.stderr
    assert result.returncode == 6 if case.id == "s3dir missing bucket" else result.returncode != 6, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    # An input given as a flag is named as the flag (--keep-last), one from pyproject.toml by its key.
    assert case.mentions in lines[0] or "--" + case.mentions.replace("_", "-") in lines[0], lines[0]
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before


# ---------------------------------------------------------------------------- Pulumi
def test_pulumi_check_fails_on_the_property(
    prepared,
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    bucket,
    s3_client,
):
    stack = open_stack()  # one provider process answers every preview, as in one `pulumi preview`
    for case in LOCAL:
        with pytest.raises(CheckFailed) as failed:
            stack.preview(declare_layer(**prepared(case)))
        reasons = [reason for prop, reason in failed.value.failures if prop == case.prop]
        assert reasons and any(case.mentions in reason for reason in reasons), (case.id, failed.value.failures)
    assert {e.method for e in stack.server.transcript} == {"Configure", "Check"}
    assert s3_snapshot(s3_client, bucket) == {}


def test_pulumi_diff_of_an_existing_layer_fails_on_what_only_aws_shows(
    prepared,
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
    credentials,
    bucket,
    s3_client,
    lambda_client,
):
    args = prepared(None)
    key_record = args["s3dir_lambda"].split("/", 3)[3] + "layer/last-uv.lock"
    goal = declare_layer(credentials=credentials, **args)
    for case in sorted(ON_AWS, key=lambda c: c.id == "s3dir missing bucket"):  # deleting the bucket comes last
        stack = open_stack()
        stack.up(goal)
        if case.id == "s3dir recording another layer":
            # Someone else's deploy replaced the record of the folder: a plan must not flip between the two.
            s3_client.delete_object(Bucket=bucket, Key=key_record)
            record_foreign_layer(args, s3_client, lambda_client)
        else:  # the bucket was deleted
            for key in s3_snapshot(s3_client, bucket):
                s3_client.delete_object(Bucket=bucket, Key=key)
            s3_client.delete_bucket(Bucket=bucket)
        with pytest.raises(ProviderError) as failed:
            stack.preview(goal)
        assert failed.value.method == "Diff", case.id
        # pulumi.dynamic sends any provider exception as its formatted traceback; the engine shows it as
        # is. What the user must read is the last line: our one-line error naming what is wrong.
        last_line = failed.value.details.strip().splitlines()[-1]
        named = bucket if case.id == "s3dir missing bucket" else case.mentions
        # The error's class is the model's (AwsError for a missing bucket, LayerInputError for another layer's record).
        assert re.match(r"aws_lambda_artifact_builder\.errors\.\w+Error: s3dir_lambda ", last_line), (
            failed.value.details
        )
        assert named in last_line, failed.value.details
        if case.id == "s3dir recording another layer":
            s3_client.delete_object(Bucket=bucket, Key=key_record)  # the next case starts from our own record


# ---------------------------------------------------------------------------- Terraform
def terraform_config(cases: list[Bad], prepared, endpoint_url: str) -> dict[str, Any]:
    """One ``alab_layer`` per case (``case_<n>``), in Terraform's JSON syntax."""
    resources = {}
    for n, case in enumerate(cases):
        args = prepared(case)
        resources[f"case_{n}"] = {k: v for k, v in args.items() if v is not None}
    return {
        "terraform": {"required_providers": {"alab": {"source": "terraform.local/alab/alab"}}},
        "provider": {"alab": {"region": "us-east-1", "endpoint_url": endpoint_url}},
        "resource": {"alab_layer": resources},
    }


def diagnostics(stderr: str) -> dict[str, list[str]]:
    """Terraform's error diagnostics by the resource they are on: ``{"case_3": [summary + detail, ...]}``."""
    found: dict[str, list[str]] = {}
    for block in re.split(r"^Error: ", stderr, flags=re.MULTILINE)[1:]:
        where = re.search(r"with alab_layer\.(case_\d+)", block)
        if where:
            found.setdefault(where.group(1), []).append(normal(block))
    return found


@pytest.mark.parametrize("cases", [LOCAL, ON_AWS], ids=["input checks", "plan against AWS"])
def test_terraform_plan_fails_on_every_case_resource(
    cases: list[Bad],
    prepared,
    terraform_cli_config: Path,
    aws,
    tmp_path: Path,
    bucket,
    s3_client,
    lambda_client,
):
    terraform = shutil.which("terraform")
    assert terraform is not None
    workdir = tmp_path / "terraform"
    workdir.mkdir()
    (workdir / "main.tf.json").write_text(json.dumps(terraform_config(cases, prepared, aws.endpoint_url), indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(terraform_cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    tf = Terraform(binary=terraform, workdir=workdir, env=env)
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)

    result = tf.run("plan", "-input=false", ok_codes=(1,))

    found = diagnostics(result.stderr)
    for n, case in enumerate(cases):
        blocks = found.get(f"case_{n}", [])
        summary = f"Invalid {case.prop}" if not case.aws else f"Cannot plan layer {LAYER}"
        assert any(b.startswith(summary) and normal(case.mentions) in b for b in blocks), (
            case.id,
            blocks,
            result.stderr,
        )
    assert "Traceback" not in result.stderr
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before
