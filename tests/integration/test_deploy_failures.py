"""Deploys that crash, race, or find the staging object replaced: they converge on one version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    LayerError,
    deploy_layer,
    plan_layer,
    publish_layer_version,
    upload_layer_zip_to_s3,
)
from support import deploy_child
from support.layers import layer_versions, s3_snapshot, write_test_zip
from support.projects import set_pin


@pytest.fixture()
def spec(bucket: str, credentials, tmp_path: Path) -> dict:
    """deploy_layer arguments for a child process (clients come from the environment there)."""
    path_credentials = tmp_path / "credentials.json"
    credentials.dump(path_credentials)
    return dict(
        layer_name="sample-deps",
        s3dir_lambda=f"s3://{bucket}/apps/sample/",
        tool="pip",
        credentials_file=str(path_credentials),
    )


def test_a_run_killed_after_publishing_is_finished_by_the_next_run_without_publishing_again(
    project_copy, spec, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    child = deploy_child.start(dict(spec, path_pyproject_toml=str(path), die_at=["publish", "done"]))
    output, _ = child.communicate(timeout=120)
    assert child.returncode == -9, output
    assert deploy_child.events_of(output)[-1] == {"stage": "publish", "state": "done", "done": 0}, output
    assert layer_versions(lambda_client, "sample-deps") == [1]
    keys = set(s3_snapshot(s3_client, bucket))
    assert "apps/sample/layer/last-requirements.txt" not in keys
    assert "apps/sample/layer/deploy-claim.json" in keys, "the killed run still holds the claim"
    shutil.rmtree(path.parent / "build")

    lines: list[str] = []
    result = deploy_layer(
        path_pyproject_toml=path,
        credentials=credentials,
        s3_client=s3_client,
        lambda_client=lambda_client,
        printer=lines.append,
        **{k: v for k, v in spec.items() if k != "credentials_file"},
    )

    assert result.adopted and not result.published and result.layer_version == 1
    assert layer_versions(lambda_client, "sample-deps") == [1]
    assert not (path.parent / "build").exists(), "finishing a crashed run must not build"
    assert any(line.startswith("[claim] took over") and "is gone" in line for line in lines), lines
    keys = set(s3_snapshot(s3_client, bucket))
    assert {"apps/sample/layer/last-requirements.txt", "apps/sample/layer/000001/requirements.txt"} <= keys
    assert "apps/sample/layer/deploy-claim.json" not in keys
    plan = plan_layer(
        path_pyproject_toml=path,
        s3_client=s3_client,
        lambda_client=lambda_client,
        **{k: v for k, v in spec.items() if k != "credentials_file"},
    )
    assert not plan.changed and plan.current_version == 1


def test_eight_concurrent_identical_deploys_publish_exactly_one_version(
    project_copy, spec, lambda_client, s3_client, bucket
):
    path = project_copy("pip")
    children = [deploy_child.start(dict(spec, path_pyproject_toml=str(path))) for _ in range(8)]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert [c.returncode for c in children] == [0] * 8, "\n---\n".join(outputs)
    results = [deploy_child.result_of(o) for o in outputs]

    assert layer_versions(lambda_client, "sample-deps") == [1]
    assert {r["layer_version_arn"] for r in results} == {results[0]["layer_version_arn"]}
    assert sum(r["published"] for r in results) == 1
    builds = [
        [e for e in deploy_child.events_of(o) if e["stage"] == "install" and e["state"] == "done"] for o in outputs
    ]
    assert sum(map(len, builds)) == 1
    assert "apps/sample/layer/deploy-claim.json" not in s3_snapshot(s3_client, bucket)


def test_concurrent_deploys_of_different_locks_each_get_a_version_and_the_record_ends_on_the_newest(
    project_copy, spec, lambda_client, s3_client
):
    variants = []
    for i, (core, python) in enumerate([("1.0.0", "3.12"), ("1.1.0", "3.12"), ("1.0.0", "3.11"), ("1.1.0", "3.11")]):
        path = project_copy("pip")
        dest = path.parent.with_name(f"variant-{i}")
        shutil.move(str(path.parent), dest)
        set_pin(dest / "pyproject.toml", "alab-demo-core", core)
        variants.append(dict(spec, path_pyproject_toml=str(dest / "pyproject.toml"), python_version=python))
    children = [deploy_child.start(v) for v in variants]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert [c.returncode for c in children] == [0] * 4, "\n---\n".join(outputs)
    results = [deploy_child.result_of(o) for o in outputs]

    assert sorted(r["layer_version"] for r in results) == [1, 2, 3, 4]
    assert all(r["published"] for r in results)
    assert len({r["fingerprint"] for r in results}) == 4
    assert layer_versions(lambda_client, "sample-deps") == [1, 2, 3, 4]
    newest = max(results, key=lambda r: r["layer_version"])
    plans = [
        plan_layer(
            path_pyproject_toml=v["path_pyproject_toml"],
            python_version=v["python_version"],
            s3_client=s3_client,
            lambda_client=lambda_client,
            **{k: val for k, val in spec.items() if k != "credentials_file"},
        )
        for v in variants
    ]
    assert {p.current_version for p in plans} == {newest["layer_version"]}
    assert [p.fingerprint for p in plans if not p.changed] == [newest["fingerprint"]]


def test_a_replaced_staging_object_is_detected_and_never_recorded(project_copy, s3_client, lambda_client, bucket):
    path = project_copy("pip")
    write_test_zip(path)
    kwargs = dict(
        layer_name="sample-deps",
        path_pyproject_toml=path,
        s3dir_lambda=f"s3://{bucket}/apps/sample/",
        tool="pip",
        s3_client=s3_client,
        lambda_client=lambda_client,
        verbose=False,
    )
    staged = upload_layer_zip_to_s3(
        s3dir_lambda=kwargs["s3dir_lambda"], path_pyproject_toml=path, s3_client=s3_client, verbose=False
    )
    s3_client.put_object(Bucket=bucket, Key=staged.key, Body=b"someone else's zip")

    with pytest.raises(LayerError, match="CodeSha256 .* staging object .* was replaced or is missing"):
        publish_layer_version(**kwargs)
    assert layer_versions(lambda_client, "sample-deps") == []
    # Nothing recorded; the intent (the code this fingerprint was to be published with) may stay: it only
    # ever vouches for a version holding exactly the zip built here.
    left = {k for k in s3_snapshot(s3_client, bucket) if not k.startswith("apps/sample/layer/intent-")}
    assert left == {"apps/sample/layer/layer.zip"}

    s3_client.delete_object(Bucket=bucket, Key=staged.key)
    with pytest.raises(LayerError, match="was replaced or is missing"):
        publish_layer_version(**kwargs)
    assert layer_versions(lambda_client, "sample-deps") == []

    upload_layer_zip_to_s3(
        s3dir_lambda=kwargs["s3dir_lambda"], path_pyproject_toml=path, s3_client=s3_client, verbose=False
    )
    deployment = publish_layer_version(**kwargs)
    assert deployment.published and deployment.layer_version == 3
    assert not plan_layer(**{k: v for k, v in kwargs.items() if k != "verbose"}).changed


@pytest.mark.parametrize(
    "die_at, published_before",
    [(["install", "done"], False), (["upload", "done"], False), (["record", "progress", 1], True)],
)
def test_a_run_killed_at_another_step_is_finished_by_the_next_run(
    die_at, published_before, project_copy, spec, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    child = deploy_child.start(dict(spec, path_pyproject_toml=str(path), die_at=die_at))
    output, _ = child.communicate(timeout=120)
    assert child.returncode == -9, output
    assert deploy_child.is_event(deploy_child.events_of(output)[-1], die_at), output
    assert layer_versions(lambda_client, "sample-deps") == ([1] if published_before else [])

    result = deploy_layer(
        path_pyproject_toml=path,
        credentials=credentials,
        s3_client=s3_client,
        lambda_client=lambda_client,
        verbose=False,
        **{k: v for k, v in spec.items() if k != "credentials_file"},
    )

    assert result.layer_version == 1 and result.adopted == published_before and result.published != published_before
    assert layer_versions(lambda_client, "sample-deps") == [1]
    keys = set(s3_snapshot(s3_client, bucket))
    assert {"apps/sample/layer/last-requirements.txt", "apps/sample/layer/000001/requirements.txt"} <= keys
    assert "apps/sample/layer/deploy-claim.json" not in keys
