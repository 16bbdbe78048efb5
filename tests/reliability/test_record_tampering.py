"""A tampered S3 record never makes plan or deploy return a version other than this layer's own.

Anyone who can write the ``s3dir_lambda`` can edit the ``last-`` record. Each case below edits it
(or plants a version in Lambda) against the moto server; the plan must say the record is not what
Lambda has, and the deploy must end on a version of this layer whose description and CodeSha256
carry the fingerprint, verified in Lambda.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import deploy_layer, local_fingerprint, plan_layer
from aws_lambda_artifact_builder.layer.publish import layer_description, parse_layer_description
from reliability_helpers import alab, check_history
from support.projects import set_pin

LAYER = "tamper-deps"
PREFIX = "apps/tamper/"
LAST = f"{PREFIX}layer/last-requirements.txt"


def _target(tool: str, bucket: str, s3_client: Any, lambda_client: Any) -> dict[str, Any]:
    """The layer every test here deploys, through the test's clients."""
    return dict(
        layer_name=LAYER,
        s3dir_lambda=f"s3://{bucket}/{PREFIX}",
        tool=tool,
        s3_client=s3_client,
        lambda_client=lambda_client,
    )


def _edit_record(s3_client: Any, bucket: str, *, body: bytes | None = None, **meta: str) -> None:
    """Rewrite the ``last-`` object with some metadata (and maybe its body) changed, as an intruder would."""
    got = s3_client.get_object(Bucket=bucket, Key=LAST)
    metadata = dict(got["Metadata"], **meta)
    s3_client.put_object(Bucket=bucket, Key=LAST, Body=got["Body"].read() if body is None else body, Metadata=metadata)


def _plant(s3_client: Any, lambda_client: Any, bucket: str, *, description: str) -> dict[str, Any]:
    """A version of the layer published by someone else, with code of their own."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/alab_demo_core/__init__.py", "STOLEN = True\n")
    s3_client.put_object(Bucket=bucket, Key="planted.zip", Body=buf.getvalue())
    return lambda_client.publish_layer_version(
        LayerName=LAYER,
        Description=description,
        Content={"S3Bucket": bucket, "S3Key": "planted.zip"},
        CompatibleRuntimes=["python3.12"],
    )


def _zip_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _assert_ours(deployment: Any, lambda_client: Any, fingerprint: str) -> None:
    """The invariant: the returned ARN is this layer's, and Lambda says it holds this fingerprint's code."""
    got = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=deployment.layer_version)
    assert got["LayerVersionArn"] == deployment.layer_version_arn
    assert parse_layer_description(got["Description"]) == (fingerprint, got["Content"]["CodeSha256"])
    assert got["Content"]["CodeSha256"] == deployment.code_sha256
    assert deployment.fingerprint == fingerprint


TAMPERINGS: dict[str, Callable[..., str]] = {}


def tampering(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    def register(fn: Callable[..., str]) -> Callable[..., str]:
        TAMPERINGS[name] = fn
        return fn

    return register


@tampering("another account's ARN")
def _other_account(s3_client, lambda_client, bucket, v2) -> str:
    arn = v2["layer_version_arn"].replace(":123456789012:", ":999999999999:")
    _edit_record(s3_client, bucket, **{"layer-version-arn": arn, "layer-arn": arn.rsplit(":", 1)[0]})
    return "999999999999"


@tampering("an older version")
def _older(s3_client, lambda_client, bucket, v2) -> str:
    v1 = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=1)
    _edit_record(s3_client, bucket, **{"layer-version": "1", "layer-version-arn": v1["LayerVersionArn"]})
    return "carries fingerprint"


@tampering("an edited CodeSha256")
def _edited_sha(s3_client, lambda_client, bucket, v2) -> str:
    _edit_record(s3_client, bucket, **{"code-sha256": _zip_sha256(b"something else")})
    return "holds code"


@tampering("a version with a foreign description")
def _foreign(s3_client, lambda_client, bucket, v2) -> str:
    planted = _plant(s3_client, lambda_client, bucket, description="hand-made layer")
    _edit_record(
        s3_client,
        bucket,
        **{
            "layer-version": str(planted["Version"]),
            "layer-version-arn": planted["LayerVersionArn"],
            "code-sha256": planted["Content"]["CodeSha256"],
        },
    )
    return "not published by this tool"


@tampering("a planted version whose description copies the fingerprint")
def _copied_description(s3_client, lambda_client, bucket, v2) -> str:
    """Description and record agree (the intruder wrote both); only Lambda's CodeSha256 tells."""
    got = lambda_client.get_layer_version(LayerName=LAYER, VersionNumber=2)
    fingerprint, sha = parse_layer_description(got["Description"])
    planted = _plant(
        s3_client, lambda_client, bucket, description=layer_description(fingerprint=fingerprint, code_sha256=sha)
    )
    _edit_record(
        s3_client, bucket, **{"layer-version": str(planted["Version"]), "layer-version-arn": planted["LayerVersionArn"]}
    )
    # Two listed versions carry the recorded fingerprint: the plan asks Lambda for the recorded one's code.
    return f"version {planted['Version']} holds code {planted['Content']['CodeSha256']}"


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_record_is_detected_and_the_deploy_ends_on_this_layers_version(
    name, project_copy, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    target = _target("pip", bucket, s3_client, lambda_client)
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    set_pin(path, "alab-demo-core", "1.1.0")
    v2 = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target).to_dict()
    fingerprint = v2["fingerprint"]

    expected_reason = TAMPERINGS[name](s3_client, lambda_client, bucket, v2)
    plan = plan_layer(path_pyproject_toml=path, **target)
    assert plan.changed and "does not match Lambda" in plan.reason and expected_reason in plan.reason, plan.reason
    assert plan.current_layer_version_arn is None
    assert "a deploy adopts version 2" in plan.reason, plan.reason  # as the deploy below does
    lines: list[str] = []
    deployment = deploy_layer(path_pyproject_toml=path, credentials=credentials, printer=lines.append, **target)
    _assert_ours(deployment, lambda_client, fingerprint)
    assert deployment.layer_version == 2 and deployment.adopted, lines  # the real version 2, recorded again
    assert any("does not match Lambda" in line for line in lines), lines
    after = plan_layer(path_pyproject_toml=path, **target)
    assert not after.changed and after.current_layer_version_arn == deployment.layer_version_arn


@pytest.mark.parametrize(
    "body, meta",
    [
        (b"\xff\xfe not a manifest [[[", {}),
        (None, {"layer-version": "two"}),
        (None, {"tool": "conda"}),
        (None, {"python-version": "2.7"}),
        (None, {"fingerprint": "abc"}),
        (None, {"code-size": "-1x"}),
        (None, {"alab-record-format": "9"}),
    ],
    ids=[
        "garbage body",
        "non-numeric version",
        "unknown tool",
        "bad python",
        "short fingerprint",
        "bad size",
        "format",
    ],
)
def test_a_wrong_shaped_record_counts_as_changed_and_is_rewritten(
    body, meta, project_copy, credentials, s3_client, lambda_client, bucket
):
    path = project_copy("pip")
    target = _target("pip", bucket, s3_client, lambda_client)
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    set_pin(path, "alab-demo-core", "1.1.0")
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    set_pin(path, "alab-demo-core", "1.0.0")  # back to version 1's lock: the body matters for the diff
    _edit_record(s3_client, bucket, body=body, **meta)

    plan = plan_layer(path_pyproject_toml=path, **target)
    assert plan.changed, plan.reason
    cli = alab(
        "layer",
        "plan",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        target["s3dir_lambda"],
        "--tool",
        "pip",
    )
    assert cli.returncode == 0 and "unexpected" not in cli.stderr, cli.stderr
    deployment = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    _assert_ours(deployment, lambda_client, local_fingerprint(path_pyproject_toml=path, tool="pip"))
    assert deployment.layer_version == 1 and deployment.adopted  # version 1 has this lock's fingerprint
    assert not plan_layer(path_pyproject_toml=path, **target).changed
    check_history(
        s3_client=s3_client,
        lambda_client=lambda_client,
        bucket=bucket,
        prefix=PREFIX,
        layer_name=LAYER,
        manifest_name="requirements.txt",
        settled=False,
    )


def test_a_planted_version_with_our_fingerprint_but_other_code_is_not_adopted(
    project_copy, credentials, s3_client, lambda_client, bucket
):
    """Someone allowed only to publish plants the next lock's fingerprint first: the deploy publishes its own."""
    path = project_copy("pip")
    target = _target("pip", bucket, s3_client, lambda_client)
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    set_pin(path, "alab-demo-core", "1.1.0")
    fingerprint = local_fingerprint(path_pyproject_toml=path, tool="pip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/alab_demo_core/__init__.py", "STOLEN = True\n")
    planted_sha = _zip_sha256(buf.getvalue())
    planted = _plant(
        s3_client,
        lambda_client,
        bucket,
        description=layer_description(fingerprint=fingerprint, code_sha256=planted_sha),
    )
    assert planted["Content"]["CodeSha256"] == planted_sha

    plan = plan_layer(path_pyproject_toml=path, **target)
    assert plan.changed, plan.reason
    assert (
        f"version {planted['Version']} carries this fingerprint but not our code: a deploy publishes a new version"
        in plan.reason
    ), plan.reason
    assert "adopts" not in plan.reason, plan.reason
    deployment = deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    assert deployment.published and not deployment.adopted
    assert deployment.layer_version == planted["Version"] + 1
    assert deployment.code_sha256 != planted_sha
    _assert_ours(deployment, lambda_client, fingerprint)


@pytest.mark.parametrize(
    "body",
    [b'[[package]]\nversion = "1"\n', b'package = "x"\n', b'[[package]]\nname = 1\nversion = "1"\n'],
    ids=["package without name", "package is a string", "name is a number"],
)
def test_a_wrong_shaped_recorded_lock_is_a_reason_not_a_crash(
    body, project_copy, credentials, s3_client, lambda_client, bucket
):
    """The recorded uv.lock is read for the package diff: a hand-edited one is "cannot be read", and rewritten."""
    path = project_copy("uv")
    target = _target("uv", bucket, s3_client, lambda_client)
    deploy_layer(path_pyproject_toml=path, credentials=credentials, verbose=False, **target)
    key = f"{PREFIX}layer/last-uv.lock"
    got = s3_client.get_object(Bucket=bucket, Key=key)
    s3_client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=got["Metadata"])

    plan = plan_layer(
        path_pyproject_toml=path, python_version="3.11", **target
    )  # another fingerprint: the body is read
    assert plan.changed and "cannot be read" in plan.reason, plan.reason
    cli = alab(
        "layer",
        "plan",
        "--project",
        str(path),
        "--layer-name",
        LAYER,
        "--s3dir",
        target["s3dir_lambda"],
        "--tool",
        "uv",
        "--python-version",
        "3.11",
    )
    assert cli.returncode == 0 and "cannot be read" in cli.stdout, cli.stdout + cli.stderr
    deployment = deploy_layer(
        path_pyproject_toml=path, python_version="3.11", credentials=credentials, verbose=False, **target
    )
    assert deployment.published and deployment.layer_version == 2
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() != body
    assert not plan_layer(path_pyproject_toml=path, python_version="3.11", **target).changed
