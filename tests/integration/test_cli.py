"""The ``alab`` console script, run as a process against the moto server and the private index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import alab, configure
from support.layers import layer_versions, s3_snapshot
from support.projects import lock, set_pin


@pytest.fixture()
def configured(project_copy, bucket: str, credentials) -> Path:
    """A uv project whose pyproject.toml carries the tool's configuration table."""
    return configure(
        project_copy("uv"), layer_name="sample-deps", s3dir=f"s3://{bucket}/apps/sample/", credentials=credentials
    )


def _env(credentials, password: str | None = None) -> dict[str, str]:
    return dict(os.environ, ALAB_INDEX_PASSWORD=password if password is not None else credentials.password)


def test_plan_deploy_plan_with_defaults_from_pyproject(
    configured, credentials, lambda_client, private_index, dir_tool_cache
):
    project = str(configured.parent)
    first = alab("layer", "plan", "--project", project, "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "Layer sample-deps: CHANGE: no earlier version is recorded" in first.stdout
    assert "+ alab-demo-core 1.0.0" in first.stdout

    deployed = alab("layer", "deploy", "--project", project, env=_env(credentials))
    assert deployed.returncode == 0, deployed.stderr
    assert "Published: sample-deps version 1" in deployed.stdout
    print(deployed.stderr)
    stages = [line.split()[0] for line in deployed.stderr.splitlines()]
    assert stages == ["plan", "install", "package", "upload", "publish", "record"], deployed.stderr
    assert credentials.password not in deployed.stdout + deployed.stderr
    assert layer_versions(lambda_client, "sample-deps") == [1]

    again = alab("layer", "plan", "--project", project, "--detailed-exitcode")
    assert again.returncode == 0, again.stderr
    assert "no change" in again.stdout

    noop = alab("layer", "deploy", "--project", project, "--json", env=_env(credentials))
    assert noop.returncode == 0, noop.stderr
    assert json.loads(noop.stdout)["published"] is False
    assert [line.split()[0] for line in noop.stderr.splitlines()] == ["plan"], noop.stderr

    set_pin(configured, "alab-demo-core", "1.1.0")
    lock("uv", configured.parent, private_index, dir_tool_cache)
    changed = alab("layer", "plan", "--project", project, "--json", "--detailed-exitcode")
    assert changed.returncode == 2
    plan = json.loads(changed.stdout)
    assert plan["changed"] and plan["current_version"] == 1
    assert plan["package_changes"]["changed"] == {"alab-demo-core": {"old": "1.0.0", "new": "1.1.0"}}


def test_flags_override_the_configuration(configured, credentials, bucket, lambda_client):
    result = alab(
        "layer",
        "deploy",
        "--project",
        str(configured),
        "--layer-name",
        "other-deps",
        "--s3dir",
        f"s3://{bucket}/apps/other/",
        "--architecture",
        "arm64",
        "--quiet",
        "--json",
        env=_env(credentials),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    deployment = json.loads(result.stdout)
    assert deployment["layer_name"] == "other-deps"
    version = lambda_client.get_layer_version(LayerName="other-deps", VersionNumber=1)
    assert version["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["--python-version", "3.9"], "--python-version 3.9 is not a Lambda Python runtime", 3),
        (["--architecture", "sparc"], "invalid choice: 'sparc'", 1),  # a usage error (argparse)
        (["--s3dir", "my-bucket/prefix"], "--s3dir 'my-bucket/prefix' is not an S3 URI", 3),  # a wrong input
        (["--layer-name", "bad name"], "--layer-name 'bad name' is not a Lambda layer name", 3),
        (
            ["--keep-last", "0"],
            "--keep-last 0 must be a whole number of at least 1 (leave it unset to keep every version)",
            3,
        ),
        (["--permission", "everyone"], "--permission entry 'everyone'", 3),
        (["--tool", "poetry"], "poetry.lock not found", 4),  # the lock is the only problem: a manifest error
        (["--s3dir", "s3://alab-no-such-bucket/x/"], "bucket 'alab-no-such-bucket', which does not exist", 6),
    ],
)
def test_errors_are_one_line_with_the_exit_code_of_their_class(
    configured, credentials, s3_client, bucket, args, message, code
):
    """Exit codes per error class (``alab --help``): 3 a wrong input, 6 a failed AWS call, 1 a usage error."""
    result = alab("layer", "deploy", "--project", str(configured), *args, env=_env(credentials))
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert s3_snapshot(s3_client, bucket) == {}


def test_a_wrong_index_password_is_one_masked_line(configured, credentials, s3_client, bucket):
    wrong = "Wr0ng-" + credentials.password[::-1]
    result = alab("layer", "deploy", "--project", str(configured), env=_env(credentials, password=wrong))
    assert result.returncode == 5  # a failed build
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: uv could not install the pins") and "refused the login (HTTP 403)" in last, (
        result.stderr
    )
    assert wrong not in result.stdout + result.stderr
    assert s3_snapshot(s3_client, bucket) == {}


def test_missing_settings_and_a_bad_table_are_clear(project_copy, credentials):
    path = project_copy("uv")
    missing = alab("layer", "plan", "--project", str(path))
    assert missing.returncode == 1
    assert (
        "layer_name is required: pass --layer-name or set layer_name in [tool.aws_lambda_artifact_builder]"
        in missing.stderr
    )

    path.write_text(path.read_text() + '\n[tool.aws_lambda_artifact_builder]\nlayer_nme = "x"\nkeep_last = "2"\n')
    bad = alab("layer", "plan", "--project", str(path))
    assert bad.returncode == 1
    assert "unknown keys layer_nme" in bad.stderr

    path.write_text(path.read_text().replace('layer_nme = "x"\n', ""))
    typed = alab("layer", "plan", "--project", str(path))
    assert "keep_last must be a whole number, not '2'" in typed.stderr


def test_index_url_without_password_variable_is_an_error_naming_the_variable(configured, credentials):
    env = {k: v for k, v in os.environ.items() if k != "ALAB_INDEX_PASSWORD"}
    result = alab("layer", "deploy", "--project", str(configured), env=env)
    assert result.returncode == 1
    assert "needs index_username and the password in the environment variable ALAB_INDEX_PASSWORD" in result.stderr


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "aws_lambda_artifact_builder", "layer", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "plan" in result.stdout and "deploy" in result.stdout


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    result = alab("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"alab {version('aws-lambda-artifact-builder')}"


def test_the_nearest_pyproject_upward_is_the_configuration(configured, tmp_path):
    subfolder = configured.parent / "src" / "handlers"
    subfolder.mkdir(parents=True)
    result = alab("layer", "plan", "--detailed-exitcode", cwd=subfolder)
    assert result.returncode == 2, result.stderr
    assert "Layer sample-deps: CHANGE: no earlier version is recorded" in result.stdout

    nowhere = alab("layer", "plan", cwd=tmp_path)  # the project is a subfolder of it: nothing above
    assert nowhere.returncode == 1
    assert "error: no pyproject.toml in " in nowhere.stderr and "or any folder above it" in nowhere.stderr


def test_lock_detection_says_which_locks_it_found(configured):
    (configured.parent / "requirements.txt").write_text("alab-demo-core==1.0.0\n")
    several = alab("layer", "plan", cwd=configured.parent)
    assert several.returncode == 1
    assert f"found requirements.txt and uv.lock in {configured.parent}, cannot choose: pass --tool" in several.stderr
    assert "(pip or uv)" in several.stderr
    (configured.parent / "requirements.txt").unlink()
    (configured.parent / "uv.lock").unlink()
    none = alab("layer", "plan", cwd=configured.parent)
    assert none.returncode == 1
    assert "no lock file in" in none.stderr and "looked for requirements.txt, poetry.lock, uv.lock" in none.stderr


def test_keep_last_deletes_old_versions_with_their_records_and_no_staging_zip_stays(
    configured, credentials, bucket, s3_client, lambda_client, private_index, dir_tool_cache
):
    project = str(configured.parent)
    first = alab("layer", "deploy", "--project", project, env=_env(credentials))
    assert first.returncode == 0, first.stderr
    evidence = {"sbom.cdx.json", "provenance.json"}  # beside each version's record (layer/evidence.py)
    assert set(_records(s3_client, bucket)) == {
        *(f"apps/sample/layer/000001/{name}" for name in {"uv.lock", *evidence}),
        "apps/sample/layer/last-uv.lock",
    }

    set_pin(configured, "alab-demo-core", "1.1.0")
    lock("uv", configured.parent, private_index, dir_tool_cache)
    second = alab("layer", "deploy", "--project", project, "--keep-last", "1", env=_env(credentials))
    assert second.returncode == 0, second.stderr
    assert "deleted   versions 1 (keep_last)" in second.stdout
    assert "deleted versions 1 (keep last 1) and their 3 records in S3" in second.stderr
    assert layer_versions(lambda_client, "sample-deps") == [2]
    assert set(_records(s3_client, bucket)) == {
        *(f"apps/sample/layer/000002/{name}" for name in {"uv.lock", *evidence}),
        "apps/sample/layer/last-uv.lock",
    }
    # The artifact store keeps each fingerprint's zip, description, SBOM and provenance (retention does not
    # prune it yet).
    stored = sorted(k.rsplit("/", 1)[1] for k in s3_snapshot(s3_client, bucket) if "/layer/artifacts/" in k)
    assert stored == sorted(["layer.json", "layer.zip", *evidence] * 2)


def _records(s3_client, bucket: str) -> list[str]:
    """Every object but the artifact store's (``layer/artifacts/``), which keeps zips on purpose."""
    return [k for k in s3_snapshot(s3_client, bucket) if "/layer/artifacts/" not in k]
