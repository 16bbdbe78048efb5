"""Hostile project files and settings: every one is a problem named on its input, never a crash.

- API: ``validate_layer_inputs`` returns ``(property, message)`` (what Pulumi Check and Terraform
  validate report), ``deploy_layer`` raises ``LayerInputError`` with the same problem; nothing is written
  to S3 or Lambda.
- CLI: exit 3 (a wrong input; 1 if its configuration table is what is wrong), one ``error:`` line, never
  ``error: unexpected``.
- Pulumi: declaring the resource never fails; the preview fails in Check on ``path_pyproject_toml``.
- Terraform: ``terraform plan`` reports a diagnostic on each resource's ``path_pyproject_toml``.
- ``index_password_env`` names only a variable meant for an index password, never an AWS credential.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerInputError, deploy_layer, validate_layer_inputs
from aws_lambda_artifact_builder.cli import CliError, check_password_env_name
from reliability_helpers import alab
from support.layers import all_layer_versions, s3_snapshot

LAYER = "hostile-deps"


@dataclasses.dataclass(frozen=True)
class Hostile:
    id: str
    file: str
    edit: Callable[[str], bytes]
    tool: str = "uv"


def _deps_string(text: str) -> bytes:
    return re.sub(r"dependencies = \[[^\]]*\]", 'dependencies = "alab-demo-core"', text, count=1).encode()


def _sub(old: str, new: str) -> Callable[[str], bytes]:
    """Replace the first ``old`` (which must be there: a case that edits nothing tests nothing)."""

    def edit(text: str) -> bytes:
        assert old in text, old
        return text.replace(old, new, 1).encode()

    return edit


def _first_package(edit: Callable[[str], str]) -> Callable[[str], bytes]:
    """Apply ``edit`` to the lock's first ``[[package]]`` block only."""

    def apply(text: str) -> bytes:
        head, sep, rest = text.partition("[[package]]")
        block, sep2, tail = rest.partition("[[package]]")
        changed = edit(block)
        assert changed != block
        return (head + sep + changed + sep2 + tail).encode()

    return apply


CORE = '"alab-demo-core==1.0.0"'
HOSTILE = [
    Hostile("pyproject invalid utf-8", "pyproject.toml", lambda t: b"\xff\xfe" + t.encode()),
    Hostile("pyproject dependencies a string", "pyproject.toml", _deps_string),
    Hostile("pyproject project a string", "pyproject.toml", _sub("[project]\n", 'project = "x"\n[tool.other]\n')),
    Hostile("pyproject bad marker", "pyproject.toml", _sub(CORE, '"alab-demo-core==1.0.0 ; python_version >>> 3"')),
    Hostile("pyproject bad specifier", "pyproject.toml", _sub(CORE, '"alab-demo-core==^abc"')),
    Hostile("pyproject missing name", "pyproject.toml", _sub('name = "sample-app"\n', "")),
    Hostile("pyproject name a table", "pyproject.toml", _sub('name = "sample-app"', "name = { x = 1 }")),
    Hostile("pyproject dependency a table", "pyproject.toml", _sub(CORE, "{ x = 1 }")),
    Hostile("uv.lock invalid utf-8", "uv.lock", lambda t: b"\xff" + t.encode()),
    Hostile("uv.lock name a table", "uv.lock", _sub('name = "alab-demo-core"', "name = { x = 1 }")),
    Hostile(
        "uv.lock package a string",
        "uv.lock",
        lambda t: re.sub(r"\[\[package\]\][\s\S]*", 'package = "x"\n', t).encode(),
    ),
    Hostile(
        "uv.lock missing name",
        "uv.lock",
        _first_package(lambda b: re.sub(r'^name = ".*"\n', "", b, count=1, flags=re.M)),
    ),
    Hostile(
        "uv.lock missing version",
        "uv.lock",
        _first_package(lambda b: re.sub(r'^version = ".*"\n', "", b, count=1, flags=re.M)),
    ),
    Hostile("uv.lock unicode name", "uv.lock", lambda t: t.replace('"alab-demo-extra"', '"alab-démo-extra"').encode()),
    Hostile(
        "uv.lock version a table",
        "uv.lock",
        _first_package(lambda b: re.sub(r'^version = ".*"', "version = { x = 1 }", b, count=1, flags=re.M)),
    ),
    Hostile(
        "uv.lock bad marker",
        "uv.lock",
        _sub("[[package]]", "[[package]]\nresolution-markers = [\"python_version <<< '3'\"]"),
    ),
    Hostile("uv.lock not toml", "uv.lock", lambda t: ("[[package]\n" + t).encode()),
    Hostile("poetry pyproject ^abc", "pyproject.toml", _sub(CORE, '"alab-demo-core==^abc"'), tool="poetry"),
    Hostile(
        "poetry pyproject bad marker",
        "pyproject.toml",
        _sub(CORE, '"alab-demo-core; python_version <<< 3"'),
        tool="poetry",
    ),
    Hostile(
        "poetry tool.poetry ^abc",
        "pyproject.toml",
        _sub(
            "[tool.poetry.group.dev.dependencies]",
            '[tool.poetry.dependencies]\nalab-demo-core = "^abc"\n\n[tool.poetry.group.dev.dependencies]',
        ),
        tool="poetry",
    ),
    Hostile("poetry pyproject invalid utf-8", "pyproject.toml", lambda t: b"\xff\xfe" + t.encode(), tool="poetry"),
    Hostile(
        "poetry.lock version a table", "poetry.lock", _sub('version = "1.0.0"', "version = { x = 1 }"), tool="poetry"
    ),
    Hostile("poetry.lock not toml", "poetry.lock", lambda t: ("\ufffe[[package]\n" + t).encode(), tool="poetry"),
    Hostile("poetry.lock invalid utf-8", "poetry.lock", lambda t: b"\xff" + t.encode(), tool="poetry"),
    Hostile(
        "poetry.lock missing name",
        "poetry.lock",
        _first_package(lambda b: re.sub(r'^name = ".*"\n', "", b, count=1, flags=re.M)),
        tool="poetry",
    ),
    Hostile(
        "poetry.lock missing version",
        "poetry.lock",
        _first_package(lambda b: re.sub(r'^version = ".*"\n', "", b, count=1, flags=re.M)),
        tool="poetry",
    ),
    Hostile(
        "poetry.lock unicode name",
        "poetry.lock",
        lambda t: t.replace('"alab-demo-extra"', '"alab-démo-extra"').encode(),
        tool="poetry",
    ),
    Hostile(
        "requirements bad specifier",
        "requirements.txt",
        _sub("alab-demo-core==1.0.0", "alab-demo-core==^abc"),
        tool="pip",
    ),
    Hostile(
        "requirements bad marker",
        "requirements.txt",
        _sub("alab-demo-core==1.0.0", "alab-demo-core==1.0.0 ; python_version >>> '3'"),
        tool="pip",
    ),
    Hostile("requirements invalid utf-8", "requirements.txt", lambda t: b"\xff\xfe" + t.encode(), tool="pip"),
    Hostile("requirements unicode name", "requirements.txt", _sub("alab-demo-extra", "alab-démo-extra"), tool="pip"),
    # Read by our own code (pip locks have no tool that parses pyproject.toml for us): tomllib recurses.
    Hostile(
        "pyproject arrays nested 3000 deep",
        "pyproject.toml",
        lambda t: (t + "\n[tool.x]\ny = " + "[" * 3000 + "]" * 3000 + "\n").encode(),
        tool="pip",
    ),
]
#: What an installer's or build backend's output looks like: never in the one line a user reads.
NOISE = ("raise ", "Traceback", "usually indicate", "unexpected", "hint:", 'File "')


def assert_one_line_naming(case: Hostile, message: str) -> None:
    """The message is one line, names the file at fault, and carries no backend noise."""
    assert "\n" not in message.strip(), (case.id, message)
    assert case.file in message, (case.id, message)
    assert not [n for n in NOISE if n in message], (case.id, message)


@pytest.fixture()
def hostile_project(project_copy) -> Callable[[Hostile], Path]:
    templates = {tool: project_copy(tool) for tool in sorted({case.tool for case in HOSTILE})}

    def make(case: Hostile) -> Path:
        template = templates[case.tool]
        dest = template.parent.with_name("hostile-" + re.sub(r"\W+", "-", case.id))
        shutil.copytree(template.parent, dest)
        path = dest / case.file
        path.write_bytes(case.edit(path.read_text()))
        return dest / "pyproject.toml"

    return make


@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_a_hostile_project_file_is_a_problem_of_the_input(case, hostile_project, bucket, s3_client, lambda_client):
    path = hostile_project(case)
    args = dict(layer_name=LAYER, path_pyproject_toml=str(path), s3dir_lambda=f"s3://{bucket}/hostile/", tool=case.tool)
    problems = validate_layer_inputs(**args)  # never raises
    assert [prop for prop, _ in problems] == ["path_pyproject_toml"], problems
    assert_one_line_naming(case, problems[0][1])
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)
    with pytest.raises(LayerInputError) as info:
        deploy_layer(**args, s3_client=s3_client, lambda_client=lambda_client, verbose=False)
    assert info.value.problems == problems  # the same problem, on the same input, as validate named
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before

    for command in ("plan", "deploy"):
        result = alab(
            "layer",
            command,
            "--project",
            str(path),
            "--layer-name",
            LAYER,
            "--s3dir",
            args["s3dir_lambda"],
            "--tool",
            case.tool,
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        # 4: the project file is the only problem (a manifest problem); 1: the CLI's own read of the
        # configuration table refused the file first (usage).
        assert result.returncode in (1, 4) and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "unexpected" not in lines[0] and "Traceback" not in result.stderr, lines[0]
        assert_one_line_naming(case, lines[0])
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before


# ---------------------------------------------------------------------------- index_password_env
REFUSED = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "ALAB_AWS_SECRET_ACCESS_KEY",
    "HOME",
    "GITHUB_TOKEN",
    "MY_SECRET",
    "alab_index_password",
    "ALAB_X;rm",
    "",
]
ACCEPTED = ["ALAB_INDEX_PASSWORD", "ALAB_CORP_TOKEN", "CORP_INDEX_PASSWORD"]


@pytest.mark.parametrize("name", REFUSED)
def test_index_password_env_refuses_variables_not_named_for_it(name):
    with pytest.raises(CliError, match="index_password_env"):
        check_password_env_name(name)


@pytest.mark.parametrize("name", ACCEPTED)
def test_index_password_env_accepts_variables_named_for_it(name):
    assert check_password_env_name(name) == name


@pytest.mark.parametrize("where", ["flag", "pyproject"])
def test_the_cli_never_sends_an_aws_secret_as_the_index_password(where, project_copy, bucket, credentials):
    path = project_copy("pip")
    argv = [
        "layer",
        "deploy",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        f"s3://{bucket}/hostile/",
        "--tool",
        "pip",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
    ]
    if where == "flag":
        argv += ["--index-password-env", "AWS_SECRET_ACCESS_KEY"]
    else:
        text = path.read_text()
        table = '[tool.aws_lambda_artifact_builder]\nindex_password_env = "AWS_SECRET_ACCESS_KEY"\n'
        path.write_text(
            text.replace("[tool.aws_lambda_artifact_builder]\n", table)
            if "[tool.aws_lambda_artifact_builder]" in text
            else text + "\n" + table
        )
    result = alab(*argv, env=dict(os.environ, AWS_SECRET_ACCESS_KEY=credentials.password))
    named = "--index-password-env" if where == "flag" else "index_password_env"  # as the user gave it
    # The CLI's own check of its configuration table: a usage error (exit 1).
    assert result.returncode == 1 and f"{named} 'AWS_SECRET_ACCESS_KEY'" in result.stderr, result.stderr
    assert credentials.password not in result.stderr + result.stdout
    assert not (path.parent / "build").exists(), "nothing may be built (or sent to the index)"


# ---------------------------------------------------------------------------- Terraform
def test_terraform_plan_names_the_hostile_file_on_each_resource(
    hostile_project,
    terraform_cli_config: Path,
    aws,
    tmp_path: Path,
    bucket,
    s3_client,
    lambda_client,
):
    """The provider's input check is ``validate_layer_inputs``: each hostile file is a diagnostic on its property."""
    import json

    from terraform_harness import Terraform

    resources = {
        f"case_{n}": dict(
            layer_name=LAYER,
            path_pyproject_toml=str(hostile_project(case)),
            s3dir_lambda=f"s3://{bucket}/hostile/",
            tool=case.tool,
            python_version="3.12",
            architecture="x86_64",
        )
        for n, case in enumerate(HOSTILE)
    }
    workdir = tmp_path / "terraform"
    workdir.mkdir()
    config = {
        "terraform": {"required_providers": {"alab": {"source": "terraform.local/alab/alab"}}},
        "provider": {"alab": {"region": "us-east-1", "endpoint_url": aws.endpoint_url}},
        "resource": {"alab_layer": resources},
    }
    (workdir / "main.tf.json").write_text(json.dumps(config, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(terraform_cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    terraform = shutil.which("terraform")
    assert terraform is not None
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)
    tf = Terraform(binary=terraform, workdir=workdir, env=env)
    # validate calls the provider's ValidateResourceConfig, where the inputs are checked; plan does too.
    for argv in (("validate",), ("plan", "-input=false")):
        result = tf.run(*argv, ok_codes=(1,))
        blocks = re.split(r"^Error: ", result.stderr, flags=re.MULTILINE)[1:]
        for n, case in enumerate(HOSTILE):
            mine = [" ".join(b.split()) for b in blocks if re.search(rf"with alab_layer\.case_{n}\b", b)]
            assert [b for b in mine if b.startswith("Invalid path_pyproject_toml") and case.file in b], (
                argv[0],
                case.id,
                mine,
            )
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before


# ---------------------------------------------------------------------------- Pulumi
def test_pulumi_check_names_the_hostile_file(
    hostile_project,
    open_stack,
    declare_layer,
    bucket,
    s3_client,
    lambda_client,
):
    """Declaring the resource reads the lock (fingerprint, packages): a hostile file must not fail the program,
    but the preview's Check, on ``path_pyproject_toml``, naming the file; nothing reaches S3 or Lambda."""
    from pulumi_engine_harness import CheckFailed

    stack = open_stack()  # one provider process answers every preview, as in one `pulumi preview`
    before = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)
    for case in HOSTILE:
        path = hostile_project(case)
        goal = declare_layer(
            layer_name=LAYER, path_pyproject_toml=str(path), s3dir_lambda=f"s3://{bucket}/hostile/", tool=case.tool
        )
        with pytest.raises(CheckFailed) as failed:
            stack.preview(goal)
        props = [prop for prop, _ in failed.value.failures]
        assert props == ["path_pyproject_toml"], (case.id, failed.value.failures)
        assert str(path.parent) in failed.value.failures[0][1], (case.id, failed.value.failures)
        assert_one_line_naming(case, failed.value.failures[0][1])
    assert {e.method for e in stack.server.transcript} == {"Configure", "Check"}
    assert (s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)) == before
