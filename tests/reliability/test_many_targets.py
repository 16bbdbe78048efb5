"""Build once, publish everywhere: the artifact store, many regions and accounts, many runners.

Against the moto server: regions are real moto regions, other accounts are reached through STS
``AssumeRole`` (moto attributes what assumed credentials create to the role's account), runners
are separate ``alab`` processes with their own build folders. Builds are counted from the
``[build] installing`` progress line every build prints.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_artifact_builder.errors import LayerError
from aws_lambda_artifact_builder.layer.foundation import LayerS3Layout
from aws_lambda_artifact_builder.layer.store import ArtifactStore
from aws_lambda_artifact_builder.layer.targets import DeployTarget, deploy_layer_to_targets, expand_targets
from aws_lambda_artifact_builder.progress import ProgressEvent, observe
from fault_proxy import FaultProxy, Rule
from reliability_helpers import alab_argv
from s3pathlib.api import S3Path
from support.aws import as_role

LAYER = "multi-deps"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ROLES = ("arn:aws:iam::111111111111:role/alab-deployer", "arn:aws:iam::222222222222:role/alab-deployer")
BUILD_LINE = "[build] installing"  # said with -v (every run below passes it)


def store_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the artifact store said on its logger (``store``) while the test ran."""
    return [r.getMessage() for r in caplog.records if r.name == "aws_lambda_artifact_builder.store"]


def assumed(role_arn: str | None, region: str, service: str, endpoint_url: str) -> Any:
    """A client as the role (or as the caller), the way a test looks into another account."""
    return as_role(role_arn, service, region, endpoint_url)


def bucket_name(prefix: str, region: str, account: str | None = None) -> str:
    return f"{prefix}-{account}-{region}" if account else f"{prefix}-{region}"


def make_buckets(endpoint_url: str, prefix: str, roles: tuple[str | None, ...] = (None,)) -> None:
    for role in roles:
        account = role.split(":")[4] if role else None
        for region in REGIONS:
            s3 = assumed(role, region, "s3", endpoint_url)
            kwargs: dict[str, Any] = {}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(Bucket=bucket_name(prefix, region, account), **kwargs)


def versions(role: str | None, region: str, endpoint_url: str) -> list[dict[str, Any]]:
    client = assumed(role, region, "lambda", endpoint_url)
    try:
        listed = client.list_layer_versions(LayerName=LAYER)["LayerVersions"]
    except client.exceptions.ResourceNotFoundException:
        return []
    found = [client.get_layer_version(LayerName=LAYER, VersionNumber=v["Version"]) for v in listed]
    return [{k: v for k, v in item.items() if k != "ResponseMetadata"} for item in found]


def runner_copy(project_copy: Any, tmp_path: Path, name: str) -> Path:
    """One more build folder of the same locked project (another runner's checkout)."""
    source = tmp_path / "project-pip"
    if not source.exists():
        project_copy("pip")
    dest = tmp_path / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("build", ".venv"))
    return dest / "pyproject.toml"


def layer_args(path: Path, credentials: Any) -> dict[str, Any]:
    return dict(layer_name=LAYER, path_pyproject_toml=str(path), tool="pip", credentials=credentials)


def test_one_lock_three_regions_two_accounts_six_versions_one_build(aws, project_copy, credentials):
    make_buckets(aws.endpoint_url, "alab-acct", ROLES)
    path = project_copy("pip")
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    common = (
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--tool",
        "pip",
        "--s3dir",
        "s3://alab-acct-{account}-{region}/apps/",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        "--json",
    )
    first = subprocess.run(
        alab_argv(
            "-v",
            "layer",
            "deploy",
            *common,
            *[a for r in REGIONS for a in ("--region", r)],
            *[a for r in ROLES for a in ("--role-arn", r)],
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert len(result["targets"]) == 6 and all(t["deployment"]["published"] for t in result["targets"])
    assert result["builds"] == 1 and first.stderr.count(BUILD_LINE) == 1, first.stderr

    shas = set()
    for role in ROLES:
        account = role.split(":")[4]
        for region in REGIONS:
            found = versions(role, region, aws.endpoint_url)
            assert len(found) == 1, (account, region, found)
            assert f":{region}:{account}:" in found[0]["LayerVersionArn"]
            shas.add(found[0]["Content"]["CodeSha256"])
            s3 = assumed(role, region, "s3", aws.endpoint_url)
            record = s3.head_object(
                Bucket=bucket_name("alab-acct", region, account), Key="apps/layer/last-requirements.txt"
            )
            assert record["Metadata"]["layer-version"] == "1"
    assert len(shas) == 1, shas
    fingerprint = result["targets"][0]["deployment"]["fingerprint"]
    home = assumed(ROLES[0], REGIONS[2], "s3", aws.endpoint_url)  # ap-southeast-2 sorts first: the store
    stored = home.get_object(
        Bucket=bucket_name("alab-acct", "ap-southeast-2", "111111111111"),
        Key=f"apps/layer/artifacts/{fingerprint}/layer.json",
    )
    assert json.loads(stored["Body"].read())["code_sha256"] == shas.pop()

    # The same six targets declared in pyproject.toml: nothing to build, nothing to publish.
    targets = "".join(
        f'\n[[tool.aws_lambda_artifact_builder.targets]]\nregion = "{region}"\nrole_arn = "{role}"\n'
        for role in ROLES
        for region in REGIONS
    )
    path.write_text(path.read_text() + "\n[tool.aws_lambda_artifact_builder]\n" + targets)
    again = subprocess.run(
        alab_argv("-v", "layer", "deploy", *common), capture_output=True, text=True, env=env, timeout=600
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["builds"] == 0 and len(rerun["targets"]) == 6
    assert not any(t["deployment"]["published"] for t in rerun["targets"])
    assert all(len(versions(r, g, aws.endpoint_url)) == 1 for r in ROLES for g in REGIONS)
    labels = {f"{g}/{r.split(':')[4]}" for r in ROLES for g in REGIONS}
    said = {label: [line for line in again.stderr.splitlines() if f"[{label}] " in line] for label in labels}
    assert all(said.values()), again.stderr  # with -v, each target's own lines are named by the target

    # `alab layer plan` plans the same six targets: no change anywhere, then one whose version is gone.
    def plan() -> tuple[int, dict[str, bool]]:
        done = subprocess.run(
            alab_argv("layer", "plan", *common, "--detailed-exitcode"), capture_output=True, text=True, env=env
        )
        assert done.returncode in (0, 2), done.stderr
        return done.returncode, {p["target"]: p["changed"] for p in json.loads(done.stdout)}

    assert plan() == (0, dict.fromkeys(labels, False))
    assumed(ROLES[1], REGIONS[0], "lambda", aws.endpoint_url).delete_layer_version(LayerName=LAYER, VersionNumber=1)
    gone = f"{REGIONS[0]}/{ROLES[1].split(':')[4]}"
    assert plan() == (2, {label: label == gone for label in labels})


def test_a_second_writer_of_a_fingerprint_is_harmless(aws, s3_client, tmp_path):
    s3_client.create_bucket(Bucket="alab-writers")
    fingerprint = "ab" * 32
    zips = []
    for i, content in enumerate((b"first build", b"second build")):
        zips.append(tmp_path / f"{i}.zip")
        zips[-1].write_bytes(content)
    with (
        ArtifactStore(s3_client=s3_client, s3dir="s3://alab-writers/apps/") as one,
        ArtifactStore(s3_client=s3_client, s3dir="s3://alab-writers/apps/") as two,
    ):
        first = one.put(fingerprint, zips[0])
        second = two.put(fingerprint, zips[1])  # lost the race: it uses what the first stored
        assert second.code_sha256 == first.code_sha256 and second.path_local.read_bytes() == b"first build"
    body = s3_client.get_object(Bucket="alab-writers", Key=f"apps/layer/artifacts/{fingerprint}/layer.zip")["Body"]
    assert body.read() == b"first build"

    # A writer that died between the zip and its description left an orphan: the next build replaces it.
    orphan = "cd" * 32
    s3_client.put_object(
        Bucket="alab-writers",
        Key=f"apps/layer/artifacts/{orphan}/layer.zip",
        Body=b"half",
        Metadata={"code-sha256": "x"},
    )
    with ArtifactStore(s3_client=s3_client, s3dir="s3://alab-writers/apps/") as three:
        assert three.fetch(orphan) is None
        stored = three.put(orphan, zips[1])
    with ArtifactStore(s3_client=s3_client, s3dir="s3://alab-writers/apps/") as four:
        found = four.fetch(orphan)
        assert found is not None and found.code_sha256 == stored.code_sha256
        assert found.path_local.read_bytes() == b"second build"


def test_storing_a_zip_reports_its_bytes_as_the_upload_stage(aws, s3_client, tmp_path):
    """The store's one-request upload still draws a byte bar: its reads are the stage's progress."""
    s3_client.create_bucket(Bucket="alab-progress")
    path = tmp_path / "layer.zip"
    path.write_bytes(os.urandom(3_000_000))
    size = path.stat().st_size
    events: list[ProgressEvent] = []
    with (
        observe(events.append),
        ArtifactStore(s3_client=s3_client, s3dir="s3://alab-progress/apps/") as store,
    ):
        stored = store.put("ef" * 32, path)
    upload = [e for e in events if e.stage == "upload"]
    assert upload[0].state == "started" and upload[-1].state == "done" and upload[-1].done == size
    progress = [e.done for e in upload if e.state == "progress"]
    assert len(progress) > 1 and max(progress) == size and all(0 <= done <= size for done in progress)
    body = s3_client.get_object(Bucket="alab-progress", Key=stored.s3path_zip.key)["Body"].read()
    assert body == path.read_bytes()


def test_eight_runners_three_regions_at_once_build_once_and_publish_three_versions(
    aws, project_copy, credentials, tmp_path
):
    make_buckets(aws.endpoint_url, "alab-race")
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    procs = []
    for i in range(8):
        path = runner_copy(project_copy, tmp_path, f"runner-{i}")
        regions = REGIONS[i % 3 :] + REGIONS[: i % 3]  # each runner starts with another region
        argv = alab_argv(
            "-v",
            "layer",
            "deploy",
            "--project",
            str(path),
            "--layer-name",
            LAYER,
            "--tool",
            "pip",
            "--s3dir",
            "s3://alab-race-{region}/apps/",
            "--index-url",
            credentials.index_url,
            "--index-username",
            credentials.username,
            "--json",
            *[arg for region in regions for arg in ("--region", region)],
        )
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    builds = sum(err.count(BUILD_LINE) for _, err in outputs)
    assert builds == 1, "\n=====\n".join(err for _, err in outputs)

    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url)
    stored = [
        f"{bucket_name('alab-race', region)}/{o['Key']}"
        for region in REGIONS
        for o in s3.list_objects_v2(Bucket=bucket_name("alab-race", region), Prefix="apps/layer/artifacts/").get(
            "Contents", []
        )
    ]
    assert len([key for key in stored if key.endswith("/layer.zip")]) == 1, stored  # one store, whatever the order
    published = {region: versions(None, region, aws.endpoint_url) for region in REGIONS}
    assert all(len(v) == 1 for v in published.values()), published
    assert len({v[0]["Content"]["CodeSha256"] for v in published.values()}) == 1
    for out, _ in outputs:  # every runner converged on the same three versions
        arns = {t["region"]: t["deployment"]["layer_version_arn"] for t in json.loads(out)["targets"]}
        assert arns == {region: published[region][0]["LayerVersionArn"] for region in REGIONS}


def test_one_region_failing_midway_then_rerun_finishes_only_that_region(aws, project_copy, credentials):
    make_buckets(aws.endpoint_url, "alab-fault")
    failing = REGIONS[2]
    targets = expand_targets(REGIONS, [], "s3://alab-fault-{region}/apps/")
    path = project_copy("pip")
    proxy = FaultProxy(aws.endpoint_url)
    # Staging the zip in the failing region's bucket never gets an answer back (copy and upload alike).
    proxy.add(Rule("PUT", rf"^/{bucket_name('alab-fault', failing)}/apps/layer/layer\.zip", "drop", times=1000))
    lines: list[str] = []
    try:
        first = deploy_layer_to_targets(
            targets=targets, endpoint_url=proxy.url, printer=lines.append, **layer_args(path, credentials)
        )
    finally:
        proxy.close()
    assert [o.target.region for o in first.failed] == [failing], "\n".join(lines)
    assert first.builds == 1
    assert first.exit_code == 6, first.failed  # a failed AWS call (the CLI ends with it: errors.EXIT_CODES)
    with pytest.raises(LayerError, match="rerun to finish only the failed ones"):
        first.raise_for_failures()
    before = {region: versions(None, region, aws.endpoint_url) for region in REGIONS}
    assert [len(before[r]) for r in REGIONS] == [1, 1, 0]

    lines = []
    rerun = deploy_layer_to_targets(targets=targets, printer=lines.append, **layer_args(path, credentials))
    rerun.raise_for_failures()
    assert rerun.builds == 0 and not any(BUILD_LINE in line for line in lines), "\n".join(lines)
    by_region = {o.target.region: o.deployment for o in rerun.outcomes}
    assert by_region[failing].published
    assert not by_region[REGIONS[0]].published and not by_region[REGIONS[1]].published
    after = {region: versions(None, region, aws.endpoint_url) for region in REGIONS}
    assert after[REGIONS[0]] == before[REGIONS[0]] and after[REGIONS[1]] == before[REGIONS[1]]
    assert len({v[0]["Content"]["CodeSha256"] for v in after.values()}) == 1


def test_tampered_stored_artifact_is_refused_and_rebuilt_never_published(
    aws, project_copy, credentials, s3_client, caplog
):
    make_buckets(aws.endpoint_url, "alab-tamper")
    path = project_copy("pip")
    home = DeployTarget(region=REGIONS[2], s3dir_lambda="s3://alab-tamper-{region}/apps/")  # sorts first: the store
    first = deploy_layer_to_targets(targets=[home], printer=lambda _l: None, **layer_args(path, credentials))
    first.raise_for_failures()
    deployed = first.outcomes[0].deployment
    layout = LayerS3Layout(s3dir_lambda="s3://alab-tamper-ap-southeast-2/apps/")
    key = layout.get_s3path_artifact_zip(deployed.fingerprint).key
    original = s3_client.head_object(Bucket="alab-tamper-ap-southeast-2", Key=key)
    # A writer keeps the metadata (it claims the old CodeSha256) but swaps the bytes.
    s3_client.put_object(
        Bucket="alab-tamper-ap-southeast-2", Key=key, Body=b"PK\x05\x06" + b"\0" * 18, Metadata=original["Metadata"]
    )

    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder")
    second = deploy_layer_to_targets(
        targets=[home, DeployTarget(region=REGIONS[1], s3dir_lambda="s3://alab-tamper-{region}/apps/")],
        **layer_args(path, credentials),
    )
    second.raise_for_failures()
    refused = [r for r in caplog.records if "[store] refused" in r.getMessage()]  # named by its target
    assert refused and all(r.levelno == logging.WARNING for r in refused), store_lines(caplog)
    assert second.builds == 1
    new = versions(None, REGIONS[1], aws.endpoint_url)
    assert len(new) == 1 and new[0]["Content"]["CodeSha256"] == deployed.code_sha256
    restored = s3_client.head_object(Bucket="alab-tamper-ap-southeast-2", Key=key)
    assert restored["Metadata"]["code-sha256"] == deployed.code_sha256 and restored["ContentLength"] > 22


def test_build_push_in_one_job_then_deploy_from_store_in_another_never_builds(aws, project_copy, credentials, tmp_path):
    make_buckets(aws.endpoint_url, "alab-split")
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    # push and deploy name the same targets, so they agree on where the store is
    common = (
        "--layer-name",
        LAYER,
        "--tool",
        "pip",
        "--s3dir",
        "s3://alab-split-{region}/apps/",
        "--region",
        REGIONS[0],
        "--region",
        REGIONS[1],
    )
    missing = subprocess.run(
        alab_argv(
            "-v",
            "layer",
            "deploy",
            "--project",
            str(runner_copy(project_copy, tmp_path, "job-0")),
            *common,
            "--from-store",
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    # Both targets miss the artifact: what only S3 could tell, so the CLI ends as for a failed AWS call.
    assert missing.returncode == 6 and "not in the artifact store" in missing.stderr, missing.stderr
    assert "run `alab layer push` for this lock first" in missing.stderr, missing.stderr
    assert BUILD_LINE not in missing.stderr

    push = subprocess.run(
        alab_argv(
            "-v",
            "layer",
            "build",
            "--push",
            "--project",
            str(runner_copy(project_copy, tmp_path, "job-1")),
            *common,
            "--index-url",
            credentials.index_url,
            "--index-username",
            credentials.username,
            "--json",
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert push.returncode == 0, push.stderr
    pushed = json.loads(push.stdout)
    assert pushed["built"] is True and push.stderr.count(BUILD_LINE) == 1
    assert versions(None, REGIONS[0], aws.endpoint_url) == []  # push never publishes

    deploy = subprocess.run(
        alab_argv(
            "-v",
            "layer",
            "deploy",
            "--project",
            str(runner_copy(project_copy, tmp_path, "job-2")),
            *common,
            "--from-store",
            "--json",
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert deploy.returncode == 0, deploy.stderr
    assert BUILD_LINE not in deploy.stderr
    for region in REGIONS[:2]:
        found = versions(None, region, aws.endpoint_url)
        assert len(found) == 1 and found[0]["Content"]["CodeSha256"] == pushed["code_sha256"]
        # The deploy that never built still describes what it published: the store's checked zip.
        s3 = assumed(None, region, "s3", aws.endpoint_url)
        folder = LayerS3Layout(s3dir_lambda=f"s3://alab-split-{region}/apps/").get_s3dir_layer_version(1)
        sbom = json.loads(s3.get_object(Bucket=folder.bucket, Key=folder.key + "sbom.cdx.json")["Body"].read())
        provenance = json.loads(s3.get_object(Bucket=folder.bucket, Key=folder.key + "provenance.json")["Body"].read())
        assert [c["name"] for c in sbom["components"]], sbom
        assert provenance["build"]["artifact_store"] == pushed["s3uri"]
        assert provenance["layer"]["code_sha256"] == pushed["code_sha256"]
        # ... and says how the push built it: the store keeps the SBOM and build provenance beside the zip.
        store = S3Path(pushed["s3uri"]).parent
        built = json.loads(s3.get_object(Bucket=store.bucket, Key=store.key + "provenance.json")["Body"].read())
        stored_sbom = json.loads(s3.get_object(Bucket=store.bucket, Key=store.key + "sbom.cdx.json")["Body"].read())
        assert "layer" not in built and built["fingerprint"] == provenance["fingerprint"]
        assert built["zip_sha256"] == provenance["layer"]["zip_sha256"] and stored_sbom == sbom
        assert provenance["built_at"] == built["created_at"]
        assert provenance["build"] == {**built["build"], "artifact_store": pushed["s3uri"]}


def test_a_stored_zip_replaced_after_its_check_is_not_copied_the_checked_bytes_are_uploaded(
    aws, s3_client, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder")
    s3_client.create_bucket(Bucket="alab-stage")
    fingerprint = "ef" * 32
    path = tmp_path / "layer.zip"
    path.write_bytes(b"checked bytes")
    with ArtifactStore(s3_client=s3_client, s3dir="s3://alab-stage/apps/") as store:
        stored = store.put(fingerprint, path)
        first = LayerS3Layout(s3dir_lambda="s3://alab-stage/first/").s3path_temp_layer_zip
        store.stage(stored, s3_client=s3_client, s3path=first, metadata={})
        lines = store_lines(caplog)
        assert lines[-1].startswith("[store] copied"), lines  # server-side while the stored zip is the checked one
        # Replaced between the check and the copy: the copy names the checked ETag, so it must not go through.
        s3_client.put_object(Bucket="alab-stage", Key=stored.s3path_zip.key, Body=b"swapped")
        staging = LayerS3Layout(s3dir_lambda="s3://alab-stage/other/").s3path_temp_layer_zip
        store.stage(stored, s3_client=s3_client, s3path=staging, metadata={"fingerprint": fingerprint})
    assert s3_client.get_object(Bucket="alab-stage", Key=staging.key)["Body"].read() == b"checked bytes"
    lines = store_lines(caplog)
    assert any("changed after it was checked; uploading the checked copy" in line for line in lines), lines


def test_a_role_that_may_not_read_the_store_gets_the_checked_zip_uploaded(aws, s3_client, tmp_path, caplog):
    """A Terraform or Pulumi resource with a ``role_arn`` keeps the store in the caller's account; when the
    role may not read it (AWS answers the copy AccessDenied, which moto does not enforce: a botocore hook
    answers for it), the role's bucket gets the checked local copy instead."""
    from botocore.exceptions import ClientError

    s3_client.create_bucket(Bucket="alab-own-store")
    role_s3 = assumed(ROLES[1], "us-east-1", "s3", aws.endpoint_url)
    role_s3.create_bucket(Bucket="alab-role-bucket")
    denied: list[str] = []

    def deny_copy(params: dict[str, Any], **_: Any) -> None:
        denied.append(params["CopySource"]["Bucket"])
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
        raise ClientError(error, "CopyObject")

    role_s3.meta.events.register("provide-client-params.s3.CopyObject", deny_copy)
    fingerprint = "ab" * 32
    path = tmp_path / "layer.zip"
    path.write_bytes(b"checked bytes")
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder")
    with ArtifactStore(s3_client=s3_client, s3dir="s3://alab-own-store/store/") as store:
        stored = store.put(fingerprint, path)
        staging = LayerS3Layout(s3dir_lambda="s3://alab-role-bucket/apps/").s3path_temp_layer_zip
        store.stage(stored, s3_client=role_s3, s3path=staging, metadata={"fingerprint": fingerprint})
    assert denied == ["alab-own-store"]
    assert role_s3.get_object(Bucket="alab-role-bucket", Key=staging.key)["Body"].read() == b"checked bytes"
    lines = store_lines(caplog)
    # The refusal, mapped as every AWS failure is (clients.aws_call): the action to allow, in one line.
    assert any("server-side copy to" in line and "AWS denied s3:" in line for line in lines), lines


# ---------------------------------------------------------------------------- reading one target, naming the store
def _targets_toml(s3dir: str, extra: dict[tuple[str, str], str]) -> str:
    """The README's configuration: a default s3dir with ``{account}``/``{region}``, and a targets list where
    some target has an s3dir of its own (``extra``: (role, region) -> s3dir)."""
    items = []
    for role in ROLES:
        for region in REGIONS:
            own = extra.get((role, region))
            items.append(
                f'[[tool.aws_lambda_artifact_builder.targets]]\nregion = "{region}"\nrole_arn = "{role}"\n'
                + (f's3dir = "{own}"\n' if own else "")
            )
    return f'\n[tool.aws_lambda_artifact_builder]\ns3dir_lambda = "{s3dir}"\n' + "\n".join(items)


def _all_stored_bytes(endpoint_url: str, bucket_role_region: list[tuple[str, str, str]]) -> bytes:
    """Every object of the buckets, read as their accounts: what a deploy left behind in S3."""
    found = b""
    for bucket, role, region in bucket_role_region:
        s3 = assumed(role, region, "s3", endpoint_url)
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            found += s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def test_list_sbom_and_diff_read_any_target_of_a_targets_list_and_credentials_stay_off_disk(
    aws, project_copy, credentials
):
    """The README's TOML end to end: 3 regions × 2 accounts, one target with its own s3dir; `alab layer
    list`/`sbom`/`diff` read any one target (default: the first); moto's session tokens appear nowhere."""
    from support.aws import MOTO_SESSION_TOKEN_PREFIX

    make_buckets(aws.endpoint_url, "alab-read", ROLES)
    own_s3dir = "s3://alab-read-own-eu/app/"
    assumed(ROLES[1], "eu-west-1", "s3", aws.endpoint_url).create_bucket(
        Bucket="alab-read-own-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    path = project_copy("pip")
    path.write_text(
        path.read_text()
        + _targets_toml("s3://alab-read-{account}-{region}/apps/", {(ROLES[1], "eu-west-1"): own_s3dir})
    )
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    login = ("--index-url", credentials.index_url, "--index-username", credentials.username)
    common = ("--project", str(path), "--layer-name", LAYER, "--tool", "pip")

    def alab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(alab_argv(*args), capture_output=True, text=True, env=env, timeout=600)

    deploy = alab("-v", "layer", "deploy", *common, *login, "--json")
    assert deploy.returncode == 0, deploy.stderr
    result = json.loads(deploy.stdout)
    assert result["builds"] == 1 and deploy.stderr.count(BUILD_LINE) == 1
    by_label = {f"{t['region']}/{t['role_arn'].split(':')[4]}": t for t in result["targets"]}
    assert by_label["eu-west-1/222222222222"]["s3dir_lambda"] == own_s3dir
    assert len({t["deployment"]["code_sha256"] for t in result["targets"]}) == 1

    first = alab("layer", "list", *common, "--json")  # default: the first target of the list
    assert first.returncode == 0, first.stderr
    assert [v["layer_version_arn"].split(":")[3:5] for v in json.loads(first.stdout)] == [["us-east-1", "111111111111"]]
    own = ("--region", "eu-west-1", "--role-arn", ROLES[1])
    listed = alab("layer", "list", *common, *own, "--provenance")
    assert listed.returncode == 0, listed.stderr
    assert "alab-read-own-eu/app/layer/ (eu-west-1/222222222222)" in listed.stdout, listed.stdout
    assert "BUILT IN" in listed.stdout and "local" in listed.stdout and ":eu-west-1:222222222222:" in listed.stdout
    sbom = alab("layer", "sbom", "1", *common, *own)
    assert sbom.returncode == 0, sbom.stderr
    assert {c["name"] for c in json.loads(sbom.stdout)["components"]}, sbom.stdout
    other = ("--region", "ap-southeast-2", "--role-arn", ROLES[1])
    provenance = alab("layer", "sbom", "1", "--provenance", *common, *other)
    assert provenance.returncode == 0, provenance.stderr
    recorded = json.loads(provenance.stdout)
    assert recorded["layer"]["arn"].startswith(f"arn:aws:lambda:ap-southeast-2:222222222222:layer:{LAYER}:")
    assert recorded["layer"]["code_sha256"] == result["targets"][0]["deployment"]["code_sha256"]
    diff = alab("layer", "diff", "1", "local", *common, *other)
    assert diff.returncode == 0 and "No package differs" in diff.stdout, diff.stderr
    two = alab("layer", "list", *common, "--region", "eu-west-1", "--region", "us-east-1")
    assert two.returncode == 1 and "read one target" in two.stderr

    # Assumed-role credentials are kept in memory only: not in any output, file or stored object.
    outputs = "".join(p.stdout + p.stderr for p in (deploy, first, listed, sbom, provenance, diff))
    assert MOTO_SESSION_TOKEN_PREFIX not in outputs
    build_files = [p for p in (path.parent / "build").rglob("*") if p.is_file()]
    assert build_files and not any(MOTO_SESSION_TOKEN_PREFIX.encode() in p.read_bytes() for p in build_files)
    buckets = [(bucket_name("alab-read", g, r.split(":")[4]), r, g) for r in ROLES for g in REGIONS]
    stored = _all_stored_bytes(aws.endpoint_url, [*buckets, ("alab-read-own-eu", ROLES[1], "eu-west-1")])
    assert b'"components"' in stored  # the SBOMs and provenance were read too
    assert MOTO_SESSION_TOKEN_PREFIX.encode() not in stored


def test_two_stacks_with_disjoint_regions_share_a_named_artifact_store_and_build_once(
    aws, project_copy, credentials, tmp_path
):
    """`--artifact-store` (or the `artifact_store` key): stacks whose targets differ still share one build."""
    make_buckets(aws.endpoint_url, "alab-named")
    boto3.client("s3", region_name="eu-west-1", endpoint_url=aws.endpoint_url).create_bucket(
        Bucket="alab-named-store", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    store = "s3://alab-named-store/shared/"
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    common = ("--layer-name", LAYER, "--tool", "pip", "--s3dir", "s3://alab-named-{region}/apps/", "--json")
    login = ("--index-url", credentials.index_url, "--index-username", credentials.username)
    stack_a = runner_copy(project_copy, tmp_path, "stack-a")
    stack_b = runner_copy(project_copy, tmp_path, "stack-b")
    stack_b.write_text(stack_b.read_text() + f'\n[tool.aws_lambda_artifact_builder]\nartifact_store = "{store}"\n')
    runs = [
        subprocess.run(
            alab_argv("-v", "layer", "deploy", "--project", str(project), *common, *login, *args),
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        for project, args in (
            (stack_a, ("--region", REGIONS[0], "--artifact-store", store)),
            (stack_b, ("--region", REGIONS[1], "--region", REGIONS[2])),  # the store from pyproject.toml
        )
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert [json.loads(r.stdout).get("builds", r.stderr.count(BUILD_LINE)) for r in runs] == [1, 0]
    assert sum(r.stderr.count(BUILD_LINE) for r in runs) == 1, runs[1].stderr
    shas = {versions(None, region, aws.endpoint_url)[0]["Content"]["CodeSha256"] for region in REGIONS}
    assert len(shas) == 1 and all(len(versions(None, g, aws.endpoint_url)) == 1 for g in REGIONS)
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws.endpoint_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alab-named-store").get("Contents", [])]
    assert len([k for k in keys if k.startswith("shared/layer/artifacts/") and k.endswith("/layer.zip")]) == 1
    for region in REGIONS:  # no target's own s3dir holds a store
        own = boto3.client("s3", region_name=region, endpoint_url=aws.endpoint_url)
        assert not own.list_objects_v2(Bucket=bucket_name("alab-named", region), Prefix="apps/layer/artifacts/").get(
            "Contents"
        )


# ---------------------------------------------------------------------------- failures of a multi-target run
def _deploy_argv(path: Path, credentials: Any, prefix: str, *more: str) -> list[str]:
    return alab_argv(
        "-v",
        "layer",
        "deploy",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--tool",
        "pip",
        "--s3dir",
        f"s3://{prefix}-{{region}}/apps/",
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        *[a for r in REGIONS for a in ("--region", r)],
        *more,
    )


def test_a_version_published_but_not_recorded_in_one_region_fails_in_one_line_and_the_rerun_adopts_it(
    aws, project_copy, credentials
):
    """The CLI's partial failure: exit 1, one `error:` line naming the failed target, the others deployed;
    that target's version is in Lambda without its record, and the rerun adopts it: no new version."""
    make_buckets(aws.endpoint_url, "alab-unrec")
    failing = REGIONS[1]
    path = project_copy("pip")
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    proxy = FaultProxy(aws.endpoint_url)
    # Lambda published the version; writing its record (layer/000001/<manifest>) never gets an answer.
    proxy.add(Rule("PUT", rf"^/{bucket_name('alab-unrec', failing)}/apps/layer/0+1/", "drop", times=1000))
    try:
        first = subprocess.run(
            _deploy_argv(path, credentials, "alab-unrec", "--endpoint-url", proxy.url),
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    finally:
        proxy.close()
    assert first.returncode == 6, first.stderr  # the failed target's class: a failed AWS call
    errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"1 of 3 targets failed ({failing}: " in errors[0], first.stderr
    assert "rerun to finish only the failed ones" in errors[0]
    assert f"Failed: {failing}: " in first.stdout and first.stdout.count("Published: ") == 2, first.stdout
    assert [len(versions(None, region, aws.endpoint_url)) for region in REGIONS] == [1, 1, 1]

    rerun = subprocess.run(
        _deploy_argv(path, credentials, "alab-unrec", "--json"), capture_output=True, text=True, env=env, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["builds"] == 0 and BUILD_LINE not in rerun.stderr
    by_region = {t["region"]: t["deployment"] for t in result["targets"]}
    assert by_region[failing]["adopted"] and not by_region[failing]["published"], by_region[failing]
    assert not any(d["published"] for d in by_region.values())
    found = {region: versions(None, region, aws.endpoint_url) for region in REGIONS}
    assert all(len(v) == 1 for v in found.values()), found  # adopted, never published again
    assert by_region[failing]["layer_version_arn"] == found[failing][0]["LayerVersionArn"]
    s3 = boto3.client("s3", region_name=failing, endpoint_url=aws.endpoint_url)
    record = s3.head_object(Bucket=bucket_name("alab-unrec", failing), Key="apps/layer/last-requirements.txt")
    assert record["Metadata"]["layer-version"] == "1"


def test_a_runner_killed_mid_build_is_taken_over_one_build_succeeds_and_versions_converge(
    aws, project_copy, credentials, tmp_path
):
    """SIGKILL a runner while it builds: the next runner takes over its build claim (the holder's process is
    gone) and its deploy claims, builds once and publishes one version per region."""
    import signal
    import time

    make_buckets(aws.endpoint_url, "alab-kill")
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    doomed = subprocess.Popen(
        _deploy_argv(runner_copy(project_copy, tmp_path, "doomed"), credentials, "alab-kill"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its installer child is killed with it
    )
    seen: list[str] = []
    deadline = time.monotonic() + 300
    assert doomed.stderr is not None
    while time.monotonic() < deadline:
        line = doomed.stderr.readline()
        seen.append(line)
        if BUILD_LINE in line or not line:
            break
    assert any(BUILD_LINE in line for line in seen), "".join(seen)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=60)
    assert all(versions(None, region, aws.endpoint_url) == [] for region in REGIONS)

    survivor = subprocess.run(
        _deploy_argv(runner_copy(project_copy, tmp_path, "survivor"), credentials, "alab-kill", "--json"),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert survivor.returncode == 0, survivor.stderr
    assert "[claim] took over" in survivor.stderr and "is gone" in survivor.stderr, survivor.stderr
    assert survivor.stderr.count(BUILD_LINE) == 1 and json.loads(survivor.stdout)["builds"] == 1
    found = {region: versions(None, region, aws.endpoint_url) for region in REGIONS}
    assert all(len(v) == 1 for v in found.values()), found
    assert len({v[0]["Content"]["CodeSha256"] for v in found.values()}) == 1
    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url)
    stored = [
        o["Key"]
        for region in REGIONS
        for o in s3.list_objects_v2(Bucket=bucket_name("alab-kill", region), Prefix="apps/layer/artifacts/").get(
            "Contents", []
        )
    ]
    assert len([k for k in stored if k.endswith("/layer.zip")]) == 1 and not [k for k in stored if "claim" in k]
