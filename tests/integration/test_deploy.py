"""plan_layer / deploy_layer against the moto server and real local builds from the private index."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    LayerError,
    LayerPathLayout,
    deploy_layer,
    plan_layer,
    read_layer_record,
)
from support.layers import RequestLog, layer_versions, s3_snapshot
from support.projects import lock, set_pin


@pytest.fixture()
def target(bucket: str, s3_client, lambda_client, credentials):
    """Keyword arguments every deploy in a test shares."""
    return dict(
        layer_name="sample-deps",
        s3dir_lambda=f"s3://{bucket}/apps/sample/",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )


def _deploy(path: Path, tool: str, target: dict, credentials, **kwargs):
    lines: list[str] = []
    result = deploy_layer(
        path_pyproject_toml=path, tool=tool, credentials=credentials, printer=lines.append, **target, **kwargs
    )
    return result, lines


@pytest.mark.parametrize("tool", ["pip", "uv", "poetry"])
def test_first_publish_records_the_version_in_s3_and_lambda(
    tool, project_copy, target, credentials, s3_client, lambda_client, bucket
):
    path = project_copy(tool)
    plan = plan_layer(path_pyproject_toml=path, tool=tool, **target)
    assert plan.changed and plan.current_version is None
    assert "no earlier version is recorded" in plan.reason
    assert plan.package_changes.added == {"alab-demo-core": "1.0.0", "alab-demo-extra": "1.0.0"}

    result, lines = _deploy(path, tool, target, credentials)

    assert result.published and not result.adopted
    assert result.layer_version == 1
    assert result.fingerprint == plan.fingerprint
    version = lambda_client.get_layer_version(LayerName="sample-deps", VersionNumber=1)
    assert version["CompatibleRuntimes"] == ["python3.12"]
    assert version["CompatibleArchitectures"] == ["x86_64"]
    assert plan.fingerprint in version["Description"]
    assert version["Content"]["CodeSha256"] == result.code_sha256
    zip_path = LayerPathLayout(path_pyproject_toml=path).path_build_lambda_layer_zip
    names = zipfile.ZipFile(zip_path).namelist()
    assert "python/alab_demo_core/__init__.py" in names
    assert not any("devtool" in n for n in names)

    manifest = {"pip": "requirements.txt", "uv": "uv.lock", "poetry": "poetry.lock"}[tool]
    keys = set(s3_snapshot(s3_client, bucket))
    assert keys == {  # the staging zip is gone once published and recorded: Lambda has its own copy
        f"apps/sample/layer/000001/{manifest}",
        "apps/sample/layer/000001/sbom.cdx.json",  # SBOM and provenance beside the record (layer/evidence.py)
        "apps/sample/layer/000001/provenance.json",
        f"apps/sample/layer/last-{manifest}",
    }
    record = read_layer_record(
        s3dir_lambda=target["s3dir_lambda"], tool=tool, s3_client=s3_client, lambda_client=lambda_client
    )
    assert record is not None and record.version_exists
    assert (record.layer_name, record.layer_version, record.fingerprint) == ("sample-deps", 1, plan.fingerprint)
    assert record.s3uri_manifest == f"s3://{bucket}/apps/sample/layer/000001/{manifest}"
    assert (record.tool, record.python_version, record.architecture) == (tool, "3.12", "x86_64")
    facts = read_layer_record(
        s3dir_lambda=target["s3dir_lambda"], tool=tool, s3_client=s3_client, lambda_client=lambda_client, manifest=False
    )
    assert (
        facts == record
        and facts.manifest_content == ""
        and record.manifest_content == (path.parent / manifest).read_text()
    )
    for step in ("[build]", "[package]", "[upload]", "[publish]", "[record]"):
        assert any(line.startswith(step) for line in lines), step


def test_no_change_costs_one_s3_get_and_builds_nothing(
    project_copy, target, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    first, _ = _deploy(path, "pip", target, credentials)
    shutil.rmtree(path.parent / "build")
    before = s3_snapshot(s3_client, bucket)
    requests = RequestLog.attach(s3_client, lambda_client)

    again, lines = _deploy(path, "pip", target, credentials)
    calls, writes = sorted(requests.calls), requests.writes()

    assert not again.published and again.layer_version == first.layer_version == 1
    assert again.layer_version_arn == first.layer_version_arn
    assert not (path.parent / "build").exists(), "a no-op deploy must not build"
    # The plan's two reads, then (side by side) Lambda's own CodeSha256 of the recorded version and a
    # look at the deploy claim (a crashed run's claim is removed by the next deploy, changed or not).
    assert calls == ["lambda.GetLayerVersion", "lambda.ListLayerVersions", "s3.GetObject", "s3.GetObject"]
    assert writes == []
    assert s3_snapshot(s3_client, bucket) == before
    assert not any(line.startswith(("[build]", "[upload]", "[publish]")) for line in lines)
    assert layer_versions(lambda_client, "sample-deps") == [1]

    requests.calls.clear()
    plan = plan_layer(path_pyproject_toml=path, tool="pip", **target)
    assert not plan.changed and plan.current_version == 1
    assert sorted(requests.calls) == ["lambda.ListLayerVersions", "s3.GetObject"]


def _record_size(s3_client, bucket: str, manifest: str) -> int:
    return int(s3_client.head_object(Bucket=bucket, Key=f"apps/sample/layer/last-{manifest}")["ContentLength"])


def test_a_no_op_plan_reads_the_records_facts_not_its_manifest(
    project_copy, target, credentials, s3_client, lambda_client, bucket
):
    """The recorded lock (up to a megabyte and more) only matters when the fingerprint moved."""
    path = project_copy("uv")
    _deploy(path, "uv", target, credentials)
    size = _record_size(s3_client, bucket, "uv.lock")
    assert size > 1000
    requests = RequestLog.attach(s3_client, lambda_client)

    plan = plan_layer(path_pyproject_toml=path, tool="uv", **target)

    assert not plan.changed and plan.current_version == 1 and plan.package_changes.is_empty
    assert sorted(requests.calls) == ["lambda.ListLayerVersions", "s3.GetObject"]
    assert [n for c, n in requests.received if c == "s3.GetObject"] == [1]  # the first byte, not the lock
    assert plan.record_etag == s3_client.head_object(Bucket=bucket, Key="apps/sample/layer/last-uv.lock")["ETag"]


def test_changed_pin_plans_the_package_diff_then_publishes_version_2(
    project_copy, target, credentials, private_index, dir_tool_cache, lambda_client, s3_client, bucket
):
    path = project_copy("uv")
    _deploy(path, "uv", target, credentials)
    set_pin(path, "alab-demo-core", "1.1.0")
    lock("uv", path.parent, private_index, dir_tool_cache)
    size = _record_size(s3_client, bucket, "uv.lock")
    requests = RequestLog.attach(s3_client)

    plan = plan_layer(path_pyproject_toml=path, tool="uv", **target)
    assert plan.changed and plan.current_version == 1
    # The facts first, then the recorded lock for the diff: the body crosses the wire once.
    assert requests.received == [("s3.GetObject", 1), ("s3.GetObject", size)]
    assert plan.package_changes.changed == {"alab-demo-core": ("1.0.0", "1.1.0")}
    assert plan.package_changes.lines() == ["~ alab-demo-core 1.0.0 -> 1.1.0"]
    assert "runtime dependencies changed since version 1" in plan.reason

    result, _ = _deploy(path, "uv", target, credentials)
    assert result.published and result.layer_version == 2
    assert layer_versions(lambda_client, "sample-deps") == [1, 2]
    assert not plan_layer(path_pyproject_toml=path, tool="uv", **target).changed


def test_a_record_replaced_between_its_facts_and_its_body_is_planned_again(
    project_copy, target, credentials, private_index, dir_tool_cache, s3_client, lambda_client, bucket
):
    """Another deploy records between the plan's two reads: the plan reads again and stands on the new record."""
    path = project_copy("uv")
    _deploy(path, "uv", target, credentials)
    set_pin(path, "alab-demo-core", "1.1.0")
    lock("uv", path.parent, private_index, dir_tool_cache)
    key = "apps/sample/layer/last-uv.lock"
    replaced: list[str] = []

    def replace_before_the_body_is_read(params, **_kwargs):
        if "If-Match" in params["headers"] and not replaced:
            got = s3_client.get_object(Bucket=bucket, Key=key)
            body = got["Body"].read() + b"\n"
            replaced.append(s3_client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=got["Metadata"])["ETag"])

    s3_client.meta.events.register("before-call.s3.GetObject", replace_before_the_body_is_read)
    plan = plan_layer(path_pyproject_toml=path, tool="uv", **target)

    assert replaced and plan.record_etag == replaced[0]
    assert plan.changed and plan.current_version == 1
    assert plan.package_changes.changed == {"alab-demo-core": ("1.0.0", "1.1.0")}


def test_a_recorded_version_deleted_in_lambda_counts_as_changed(project_copy, target, credentials, lambda_client):
    path = project_copy("pip")
    _deploy(path, "pip", target, credentials)
    lambda_client.delete_layer_version(LayerName="sample-deps", VersionNumber=1)

    plan = plan_layer(path_pyproject_toml=path, tool="pip", **target)
    assert plan.changed and plan.current_version is None
    assert "no longer exists in Lambda" in plan.reason
    assert plan.record is not None and plan.record.version_exists is False

    result, _ = _deploy(path, "pip", target, credentials)
    assert result.published and result.layer_version == 2
    assert layer_versions(lambda_client, "sample-deps") == [2]


def test_an_s3dir_recording_another_layer_is_a_clear_error(
    project_copy, target, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    _deploy(path, "pip", target, credentials)
    before = s3_snapshot(s3_client, bucket)
    other = dict(target, layer_name="another-layer")

    with pytest.raises(LayerError, match="already records layer 'sample-deps', not 'another-layer'"):
        plan_layer(path_pyproject_toml=path, tool="pip", **other)
    with pytest.raises(LayerError, match="s3dir_lambda .* already records layer 'sample-deps'"):
        _deploy(path, "pip", other, credentials)
    assert s3_snapshot(s3_client, bucket) == before
    assert layer_versions(lambda_client, "another-layer") == []


def test_returning_to_an_earlier_lock_adopts_its_version(
    project_copy, target, credentials, private_index, dir_tool_cache, lambda_client
):
    path = project_copy("pip")
    v1, _ = _deploy(path, "pip", target, credentials)
    set_pin(path, "alab-demo-core", "1.1.0")
    v2, _ = _deploy(path, "pip", target, credentials)
    set_pin(path, "alab-demo-core", "1.0.0")

    back, lines = _deploy(path, "pip", target, credentials)

    assert (v1.layer_version, v2.layer_version) == (1, 2)
    assert back.adopted and not back.published and back.layer_version == 1
    assert not any(line.startswith("[build]") for line in lines)
    assert layer_versions(lambda_client, "sample-deps") == [1, 2]
    assert plan_layer(path_pyproject_toml=path, tool="pip", **target).current_version == 1


def test_keep_last_deletes_only_older_versions_this_tool_published(
    project_copy, target, credentials, lambda_client, s3_client, bucket
):
    path = project_copy("pip")
    _deploy(path, "pip", target, credentials)  # version 1
    s3_client.put_object(Bucket=bucket, Key="hand/made.zip", Body=b"PK\x05\x06" + b"\x00" * 18)
    lambda_client.publish_layer_version(
        LayerName="sample-deps", Description="published by hand", Content={"S3Bucket": bucket, "S3Key": "hand/made.zip"}
    )  # version 2, not ours
    set_pin(path, "alab-demo-core", "1.1.0")
    _deploy(path, "pip", target, credentials)  # version 3

    v4, _ = _deploy(path, "pip", target, credentials, python_version="3.11", keep_last=2)
    assert v4.published and v4.layer_version == 4
    assert v4.deleted_versions == (1,)
    assert layer_versions(lambda_client, "sample-deps") == [2, 3, 4]

    again, lines = _deploy(path, "pip", target, credentials, python_version="3.11", keep_last=1)
    assert not again.published and again.deleted_versions == (3,)
    assert layer_versions(lambda_client, "sample-deps") == [2, 4]
    assert any(line.startswith("[retention] deleted versions [3]") for line in lines)


def _statements(lambda_client, version: int) -> dict[str, dict]:
    policy = json.loads(
        lambda_client.get_layer_version_policy(LayerName="sample-deps", VersionNumber=version)["Policy"]
    )
    return {s["Sid"]: s for s in policy["Statement"]}


def test_permissions_are_granted_idempotently_and_converge(project_copy, target, credentials, lambda_client):
    path = project_copy("pip")
    wanted = ["111122223333", "o-abcdefghij", "public"]
    first, _ = _deploy(path, "pip", target, credentials, permissions=wanted)
    statements = _statements(lambda_client, first.layer_version)
    assert statements["alab-account-111122223333"]["Principal"] == "111122223333"
    assert statements["alab-org-o-abcdefghij"]["OrganizationId"] == "o-abcdefghij"
    assert statements["alab-public"]["Principal"] == "*"
    lambda_client.add_layer_version_permission(
        LayerName="sample-deps",
        VersionNumber=1,
        StatementId="granted-by-hand",
        Action="lambda:GetLayerVersion",
        Principal="444455556666",
    )

    requests = RequestLog.attach(lambda_client)
    _deploy(path, "pip", target, credentials, permissions=wanted)
    assert requests.writes() == [], "granting what is already granted must write nothing"
    assert len(_statements(lambda_client, 1)) == 4

    _deploy(path, "pip", target, credentials, permissions=["111122223333"])
    assert set(_statements(lambda_client, 1)) == {"alab-account-111122223333", "granted-by-hand"}


def test_a_recorded_version_beyond_the_first_listing_page_is_asked_for(lambda_client, s3_client, bucket):
    from aws_lambda_artifact_builder.layer.workflow import _FirstPage, _lambda_version

    s3_client.put_object(Bucket=bucket, Key="z.zip", Body=b"PK\x05\x06" + b"\x00" * 18)
    for _ in range(3):
        lambda_client.publish_layer_version(LayerName="paged", Content={"S3Bucket": bucket, "S3Key": "z.zip"})
    lambda_client.delete_layer_version(LayerName="paged", VersionNumber=2)
    page = _FirstPage(versions=frozenset({3}), truncated=True)
    assert _lambda_version(lambda_client, "paged", 3, page) is not None
    asked = _lambda_version(lambda_client, "paged", 1, page)
    assert asked is not None and asked.layer_version_arn.endswith(":layer:paged:1") and asked.code_sha256
    assert _lambda_version(lambda_client, "paged", 2, page) is None
    assert _lambda_version(lambda_client, "paged", 4, page) is None
    assert _lambda_version(lambda_client, "paged", 1, _FirstPage(versions=frozenset({3}), truncated=False)) is None


def test_default_clients_take_an_explicit_region_and_endpoint(project_copy, target, credentials, aws, monkeypatch):
    path = project_copy("pip")
    _deploy(path, "pip", target, credentials)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    kwargs = {k: v for k, v in target.items() if k not in ("s3_client", "lambda_client")}
    plan = plan_layer(path_pyproject_toml=path, tool="pip", region="us-east-1", endpoint_url=aws.endpoint_url, **kwargs)
    assert not plan.changed and plan.current_version == 1


def test_another_layer_recording_through_another_tool_is_caught_before_publishing(
    project_copy, target, credentials, lambda_client, s3_client, bucket
):
    _deploy(project_copy("uv"), "uv", target, credentials)
    before = s3_snapshot(s3_client, bucket)
    with pytest.raises(LayerError, match=r"already records layer 'sample-deps' \(in .*last-uv\.lock\), not 'other'"):
        _deploy(project_copy("pip"), "pip", dict(target, layer_name="other"), credentials)
    assert s3_snapshot(s3_client, bucket) == before
    assert layer_versions(lambda_client, "other") == []


def test_deploys_of_one_project_take_turns_in_its_build_folder(project_copy, target, credentials, lambda_client):
    path = project_copy("pip")
    dir_build = path.parent / "build" / "lambda"
    dir_build.mkdir(parents=True)
    fd = os.open(dir_build / "layer-build.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another deploy of this project is building
    lines: list[str] = []
    done = threading.Event()

    def deploy() -> None:
        deploy_layer(path_pyproject_toml=path, tool="pip", credentials=credentials, printer=lines.append, **target)
        done.set()

    worker = threading.Thread(target=deploy)
    worker.start()
    try:
        assert not done.wait(1.5), "the deploy must wait for the build folder"
        assert any(line.startswith("[build] waiting for another deploy that builds in") for line in lines)
        assert not any(line.startswith("[build] installing") for line in lines)
    finally:
        os.close(fd)
    worker.join(60)
    assert done.is_set()
    assert layer_versions(lambda_client, "sample-deps") == [1]
