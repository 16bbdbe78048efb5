"""examples/pulumi under the real `pulumi` CLI and engine, against a moto server, as a user runs it.

One module-scoped flow (:func:`lifecycle`) does what the README's Pulumi section shows, recording what
each command printed and what it did to S3 and Lambda; the tests below assert on that record:
`pulumi stack init` -> `pulumi preview --diff` -> `pulumi up` (v1) -> `pulumi preview` (no change) ->
a changed pin -> `pulumi preview --diff` (the packages that moved) -> `pulumi up` (v2) -> a second stack
on the same bucket and lock adopts v2 -> the version is deleted out of band -> `pulumi refresh` ->
`pulumi up` (v3) -> `pulumi destroy` (versions retained). The index password is a secret throughout.

How programs run: see pulumi_cli.py (inline programs through the Automation API; the CLI and engine are
the real ones, and so is the dynamic provider plugin process).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_artifact_builder.api import Credentials
from pulumi_cli import DIR_REPO, PulumiProject
from support.processes import ProcessWatch, files_containing, watch_processes
from support.projects import set_pin
from support.servers import MotoServer
from test_provider_secrets import secret_forms

LAYER = "sample-app-deps"
LAYER_TYPE = "pulumi-python:dynamic/aws_lambda_artifact_builder:LambdaLayer"
DIR_SAMPLE_APP = DIR_REPO / "examples" / "sample_app"


def s3_snapshot(s3: Any, bucket: str) -> dict[str, tuple[str, str]]:
    """Every object version of the bucket: a write of any kind changes it."""
    listing = s3.list_object_versions(Bucket=bucket)
    return {
        f"{v['Key']}@{v['VersionId']}": (v["ETag"], str(v["LastModified"])) for v in listing.get("Versions", [])
    } | {o["Key"]: (o["ETag"], str(o["LastModified"])) for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def layer_versions(lambda_client: Any, layer: str = LAYER) -> list[int]:
    return sorted(v["Version"] for v in lambda_client.list_layer_versions(LayerName=layer)["LayerVersions"])


def builds_in(watch: ProcessWatch, dir_app: Path) -> list[str]:
    """Installer runs into the app's build folder seen while watching (`... install --no-deps --target ...`)."""
    return sorted(c for c in watch.cmdlines if "install --no-deps --target" in c and str(dir_app) in c)


@dataclasses.dataclass
class Step:
    """What one CLI command printed, and what it did to S3, Lambda and the installers."""

    stdout: str
    summary: dict[str, int]
    s3_before: dict[str, tuple[str, str]]
    s3_after: dict[str, tuple[str, str]]
    versions: list[int]
    builds: list[str]
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Lifecycle:
    steps: dict[str, Step]
    project: PulumiProject
    credentials: Credentials
    watches: list[ProcessWatch]
    texts: list[str]  # every CLI output of the flow
    dir_app: Path
    exports: dict[str, str]


@pytest.fixture(scope="module")
def cli_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server of this module's own: other tests reset the session's between tests."""
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def aws_clients(moto: MotoServer) -> tuple[Any, Any]:
    kw = {
        "endpoint_url": moto.endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("s3", **kw), boto3.client("lambda", **kw)


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def stack_config(moto: MotoServer, bucket: str, dir_app: Path, credentials: Credentials) -> dict[str, str]:
    return {
        "aws:region": "us-east-1",
        "alab:endpointUrl": moto.endpoint_url,
        "bucket": bucket,
        "pathPyprojectToml": str(dir_app / "pyproject.toml"),
        "tool": "pip",  # the private-index variant of the example's app (the default is sample_app_pypi, uv)
        "function": "false",  # the layer alone: the pulumi-aws plugin cannot be fetched offline
        "indexUrl": credentials.index_url,
        "indexUsername": credentials.username,
    }


@pytest.fixture(scope="module")
def lifecycle(
    pulumi_bin: Path, tmp_path_factory: pytest.TempPathFactory, cli_moto: MotoServer, credentials: Credentials
) -> Lifecycle:

    dir_root = tmp_path_factory.mktemp("pulumi-cli")
    dir_app = dir_root / "sample_app"
    shutil.copytree(DIR_SAMPLE_APP, dir_app, ignore=shutil.ignore_patterns("build", "__pycache__"))
    s3, lam = aws_clients(cli_moto)
    bucket = f"alab-cli-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    project = PulumiProject.create(pulumi_bin, dir_root, extra_env=AWS_ENV)
    config = stack_config(cli_moto, bucket, dir_app, credentials)
    steps: dict[str, Step] = {}
    watches: list[ProcessWatch] = []
    texts: list[str] = []
    mp = pytest.MonkeyPatch()

    def run(name: str, action: Any) -> Step:
        before = s3_snapshot(s3, bucket)
        with watch_processes(mp) as watch:
            result = action()
        watches.append(watch)
        stdout = getattr(result, "stdout", "") or ""
        texts.extend([stdout, getattr(result, "stderr", "") or ""])
        summary = (
            getattr(result, "change_summary", None)
            or getattr(getattr(result, "summary", None), "resource_changes", None)
            or {}
        )
        outputs = {k: v.value for k, v in (getattr(result, "outputs", None) or {}).items()}
        step = Step(
            stdout,
            {str(getattr(k, "value", k)): n for k, n in summary.items()},
            before,
            s3_snapshot(s3, bucket),
            layer_versions(lam),
            builds_in(watch, dir_app),
            outputs,
        )
        (dir_root / f"{name}.out").write_text(stdout)  # for a reader of a failure
        steps[name] = step
        return step

    project.stack_init("dev", config, {"indexPassword": credentials.password})
    dev = project.stack("dev")
    run("preview-create", lambda: dev.preview(diff=True))
    run("up-v1", lambda: dev.up(diff=True))
    run("preview-noop", lambda: dev.preview(diff=True))
    set_pin(dir_app / "pyproject.toml", "alab-demo-core", "1.1.0")
    run("preview-changed", lambda: dev.preview(diff=True))
    run("preview-changed-plain", lambda: dev.preview())
    run("up-v2", lambda: dev.up(diff=True))
    run("preview-after-v2", lambda: dev.preview(diff=True))
    exports = {"after-update": project.cli("stack", "export", "--stack", "dev").stdout}
    run("refresh-noop", lambda: dev.refresh())
    run("preview-after-refresh-noop", lambda: dev.preview(diff=True))

    project.stack_init("prod", config, {"indexPassword": credentials.password})
    prod = project.stack("prod")
    run("prod-preview", lambda: prod.preview(diff=True))
    run("prod-up", lambda: prod.up(diff=True))

    lam.delete_layer_version(LayerName=LAYER, VersionNumber=2)
    run("refresh", lambda: dev.refresh())
    run("preview-after-refresh", lambda: dev.preview(diff=True))
    run("up-v3", lambda: dev.up(diff=True))
    exports["export"] = project.cli("stack", "export", "--stack", "dev").stdout
    exports["export-show-secrets"] = project.cli("stack", "export", "--stack", "dev", "--show-secrets").stdout
    run("destroy-dev", lambda: dev.destroy())
    run("destroy-prod", lambda: prod.destroy())
    exports["after-destroy"] = project.cli("stack", "export", "--stack", "dev").stdout
    for stack in ("dev", "prod"):
        project.cli("stack", "rm", "--yes", "--stack", stack)
    mp.undo()
    return Lifecycle(steps, project, credentials, watches, texts, dir_app, exports)


def test_preview_of_a_new_stack_shows_the_create_and_builds_nothing(lifecycle: Lifecycle) -> None:
    step = lifecycle.steps["preview-create"]
    assert step.summary == {"create": 2}  # the stack and the layer
    assert f"+ {LAYER_TYPE}: (create)" in step.stdout and f"{LAYER_TYPE}::{LAYER}]" in step.stdout
    assert re.search(r'\+? *packages *: \{\s*alab-demo-core *: "1\.0\.0"', step.stdout)  # the packages input
    assert re.search(r"layer_version *: \[unknown\]", step.stdout)  # an output known only after up
    assert step.s3_after == step.s3_before == {} and step.versions == [] and step.builds == []


def test_up_publishes_version_1_and_a_second_preview_changes_nothing(lifecycle: Lifecycle) -> None:
    up = lifecycle.steps["up-v1"]
    assert up.summary == {"create": 2}
    assert up.outputs["layer_version"] == 1 and up.versions == [1]
    assert up.outputs["packages"] == {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}
    assert len(up.builds) == 1
    noop = lifecycle.steps["preview-noop"]
    assert noop.summary == {"same": 2}  # no `~ __provider`-only update (pulumi/pulumi#12401)
    assert "__provider" not in noop.stdout and "~ " not in noop.stdout
    assert noop.s3_after == noop.s3_before and noop.versions == [1] and noop.builds == []


def test_a_changed_pin_shows_which_packages_moved_and_up_publishes_version_2(lifecycle: Lifecycle) -> None:
    preview = lifecycle.steps["preview-changed"]
    assert preview.summary == {"same": 1, "update": 1}
    assert f"~ {LAYER_TYPE}: (update)" in preview.stdout
    # Pulumi's own diff of the packages map, and of the fingerprint; never of the pickled provider.
    assert re.search(
        r'~ packages *: \{\s*~ alab-demo-core *: "1\.0\.0" => "1\.1\.0"\s*alab-demo-extra *: "1\.0\.0"', preview.stdout
    )
    assert re.search(r'~ fingerprint *: "[0-9a-f]{64}" => "[0-9a-f]{64}"', preview.stdout)
    assert "__provider" not in preview.stdout
    # Without --diff, the reason and the packages that moved are the provider's diagnostics (see
    # test_pulumi_cli_diagnostics.py), and the engine lists the changed properties.
    plain = lifecycle.steps["preview-changed-plain"]
    assert f"{LAYER_TYPE} {LAYER} update [diff: ~fingerprint,packages]" in plain.stdout
    diagnostics = plain.stdout.split("Diagnostics:")[1]
    assert f"layer '{LAYER}': the runtime dependencies changed since version 1" in diagnostics
    assert "~ alab-demo-core 1.0.0 -> 1.1.0" in diagnostics
    assert plain.builds == [] and plain.s3_after == plain.s3_before
    assert preview.s3_after == preview.s3_before and preview.versions == [1] and preview.builds == []
    up = lifecycle.steps["up-v2"]
    assert up.summary == {"same": 1, "update": 1}
    assert up.outputs["layer_version"] == 2 and up.versions == [1, 2] and len(up.builds) == 1
    assert up.outputs["packages"]["alab-demo-core"] == "1.1.0"
    after = lifecycle.steps["preview-after-v2"]
    assert after.summary == {"same": 2} and after.builds == [] and after.s3_after == after.s3_before


def test_an_update_keeps_every_output_and_a_refresh_changes_nothing(lifecycle: Lifecycle) -> None:
    resources = json.loads(lifecycle.exports["after-update"])["deployment"]["resources"]
    (layer,) = [r for r in resources if r["type"] == LAYER_TYPE]
    outputs = layer["outputs"]
    assert outputs["layer_version"] == 2 and outputs["published_versions"] == [1, 2]  # pulumi/pulumi#7809
    for key in (
        "layer_arn",
        "layer_version_arn",
        "code_sha256",
        "code_size",
        "s3uri_manifest",
        "fingerprint",
        "packages",
        "layer_name",
        "path_pyproject_toml",
        "__provider",
    ):
        assert outputs.get(key) not in (None, "", {}), key
    assert "credentials" not in outputs
    refresh = lifecycle.steps["refresh-noop"]
    assert refresh.summary == {"same": 2} and refresh.builds == [] and refresh.s3_after == refresh.s3_before
    after = lifecycle.steps["preview-after-refresh-noop"]  # pulumi/pulumi#12738, #13839
    assert after.summary == {"same": 2} and "~ " not in after.stdout


def test_a_second_stack_on_the_same_bucket_and_lock_adopts_version_2(lifecycle: Lifecycle) -> None:
    preview = lifecycle.steps["prod-preview"]
    assert preview.summary == {"create": 2} and preview.builds == []
    up = lifecycle.steps["prod-up"]
    assert up.outputs["layer_version"] == 2 and re.search(r"published *: false", up.stdout)
    assert up.versions == [1, 2] and up.builds == []
    assert up.s3_after == up.s3_before  # adopting writes nothing


def test_refresh_after_the_version_was_deleted_out_of_band(lifecycle: Lifecycle) -> None:
    refresh = lifecycle.steps["refresh"]
    assert refresh.summary.get("delete") == 1  # the engine drops the layer whose version is gone
    assert refresh.builds == [] and refresh.s3_after == refresh.s3_before
    assert lifecycle.steps["preview-after-refresh"].summary == {"same": 1, "create": 1}
    up = lifecycle.steps["up-v3"]
    assert up.outputs["layer_version"] == 3 and up.versions == [1, 3] and len(up.builds) == 1


def test_destroy_retains_the_published_versions(lifecycle: Lifecycle) -> None:
    for name in ("destroy-dev", "destroy-prod"):
        step = lifecycle.steps[name]
        assert step.summary == {"delete": 2}
        assert step.versions == [1, 3]
    assert "retaining the versions" in lifecycle.steps["destroy-dev"].stdout
    resources = json.loads(lifecycle.exports["after-destroy"])["deployment"].get("resources") or []
    assert resources == []


def test_the_index_password_is_nowhere_but_the_encrypted_config_and_state(lifecycle: Lifecycle) -> None:
    forms = secret_forms(lifecycle.credentials.password)
    # The canary was really used: the state holds it, encrypted, and --show-secrets reveals it.
    assert lifecycle.credentials.password in lifecycle.exports["export-show-secrets"]
    state = json.loads(lifecycle.exports["export"])
    assert "ciphertext" in json.dumps(state) and state["deployment"]["resources"]
    for name, text in lifecycle.exports.items():
        if name != "export-show-secrets":
            assert not any(f.decode() in text for f in forms), name
    assert files_containing(lifecycle.project.dir_backend, forms) == []
    assert files_containing(lifecycle.project.dir_work, forms) == []
    for text in lifecycle.texts:
        assert not any(f.decode() in text for f in forms)
    argvs = [" ".join(a) for a in lifecycle.project.argvs]
    argvs += [" ".join(r.argv) for w in lifecycle.watches for r in w.spawned]
    argvs += [c for w in lifecycle.watches for c in w.cmdlines]
    assert sum(len(w.cmdlines) for w in lifecycle.watches) > 0
    assert [a for a in argvs if any(f.decode() in a for f in forms)] == []
