"""One error model (``errors.py``): data on the errors, botocore never leaking, one ``redact`` for every sink."""

from __future__ import annotations

import pytest
from aws_lambda_artifact_builder.api import Credentials, LayerError
from aws_lambda_artifact_builder.cli import _one_line, main
from aws_lambda_artifact_builder.errors import (
    EXIT_CODES_HELP,
    AwsError,
    BuildError,
    ConflictError,
    LayerInputError,
    ManifestError,
    aws_error,
    aws_fix,
    exit_code,
    iam_action,
    redact,
    user_error,
)
from aws_lambda_artifact_builder.layer.clients import aws_call, make_clients
from aws_lambda_artifact_builder.layer.inputs import LayerPermission, resolve_layer_inputs
from aws_lambda_artifact_builder.layer.install_plan import mask_secrets
from aws_lambda_artifact_builder.layer.publish import get_layer_version, sync_layer_version_permissions
from aws_lambda_artifact_builder.terraform_provider.resource import _scrub
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber
from s3pathlib.api import S3Path

PASSWORD = "p@ss/word&1"  # URL-encoded: p%40ss%2Fword%261
ENCODED = "p%40ss%2Fword%261"


def test_every_error_is_a_layer_error_and_a_value_error():
    for cls in (LayerInputError, ManifestError, BuildError, AwsError):
        assert issubclass(cls, LayerError) and issubclass(cls, ValueError)


def test_bad_inputs_are_data_one_problem_per_input(tmp_path):
    with pytest.raises(LayerInputError) as info:
        resolve_layer_inputs(
            layer_name="bad name!", path_pyproject_toml=tmp_path / "missing.toml", s3dir_lambda="not-s3", tool="npm"
        )
    names = [name for name, _ in info.value.problems]
    assert names == ["layer_name", "s3dir_lambda", "tool", "path_pyproject_toml"]
    assert all(reason in str(info.value) for _, reason in info.value.problems)


@pytest.mark.parametrize(
    "sink",
    [
        lambda text: redact(text, [PASSWORD]),
        lambda text: _one_line(text, PASSWORD),
        lambda text: _scrub(
            text, Credentials(index_name="i", index_url="https://x/simple/", username="u", password=PASSWORD)
        ),
        lambda text: mask_secrets(
            text, Credentials(index_name="i", index_url="https://x/simple/", username="u", password=PASSWORD)
        ),
    ],
    ids=["redact", "cli", "terraform", "build"],
)
def test_every_sink_removes_the_password_raw_encoded_and_in_urls(sink):
    text = f"pip said {PASSWORD} and {ENCODED}; index https://u:{ENCODED}@index.example/simple/"
    shown = sink(text)
    assert PASSWORD not in shown and ENCODED not in shown
    assert "https://index.example/simple/" in shown


def _lambda_client():
    import boto3

    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def test_get_layer_version_raises_an_aws_error_not_a_client_error():
    client = _lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_layer_version", service_error_code="AccessDeniedException", http_status_code=403)
        with pytest.raises(AwsError) as info:
            get_layer_version(lambda_client=client, layer_name="demo", version=3)
    assert not isinstance(info.value, ClientError)
    assert info.value.operation == "lambda:GetLayerVersion"
    assert info.value.fix == "AWS denied lambda:GetLayerVersion: allow it for the AWS identity in use"
    assert "demo" in str(info.value)


def test_get_layer_version_of_a_missing_version_is_none():
    client = _lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_layer_version", service_error_code="ResourceNotFoundException", http_status_code=404)
        assert get_layer_version(lambda_client=client, layer_name="demo", version=3) is None


def test_sync_permissions_raises_an_aws_error_not_a_client_error():
    client = _lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_layer_version_policy", service_error_code="AccessDeniedException", http_status_code=403
        )
        with pytest.raises(AwsError) as info:
            sync_layer_version_permissions(
                lambda_client=client,
                layer_name="demo",
                version=2,
                permissions=[LayerPermission(statement_id="alab-public", principal="*")],
            )
    assert "version 2" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("error", "fix"),
    [(NoCredentialsError(), "AWS_PROFILE"), (NoRegionError(), "AWS_REGION")],
)
def test_no_credentials_and_no_region_name_the_fix_in_one_line(error, fix):
    message = str(aws_error(error, operation="s3:GetObject", what="layer_name 'demo'"))
    assert fix in message and "\n" not in message and message.startswith("layer_name 'demo'")


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("ExpiredToken", "the AWS credentials have expired: refresh them"),
        ("ExpiredTokenException", "the AWS credentials have expired: refresh them"),
        ("InvalidAccessKeyId", "AWS does not accept these credentials"),
        ("AccessDenied", "AWS denied s3:PutObject on bucket 'b': allow it for the AWS identity in use"),
    ],
)
def test_aws_refusals_name_the_fix_with_the_action(code, fix):
    error = ClientError({"Error": {"Code": code, "Message": "no"}}, "CreateMultipartUpload")
    assert iam_action(error) == "s3:PutObject"
    assert aws_fix(error, action=iam_action(error), resource="bucket 'b'").startswith(fix)
    message = str(aws_error(error, operation=iam_action(error), what="s3dir_lambda s3://b/p/"))
    assert message.startswith("s3dir_lambda s3://b/p/; ") and fix.split(":")[0] in message and "\n" not in message


def test_make_clients_without_a_region_is_an_aws_error(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(AwsError) as info:
        make_clients(region=None, endpoint_url=None)
    assert "AWS_REGION" in str(info.value)


def test_the_cli_reports_missing_credentials_as_one_line_naming_the_fix(monkeypatch, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    (tmp_path / "requirements.txt").write_text("")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(
        [
            "layer",
            "plan",
            "--project",
            str(tmp_path),
            "--layer-name",
            "demo",
            "--s3dir",
            "s3://bucket/demo/",
            "--region",
            "us-east-1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 6  # an AWS error (errors.EXIT_CODES)
    assert err.count("\n") == 0 and "AWS_PROFILE" in err, err


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (NoRegionError(), "no AWS region set"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "check the network and the AWS endpoint"),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), "check the network and the AWS endpoint"),
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PublishLayerVersion"), "denied"),
    ],
    ids=["no credentials", "no region", "connection refused", "read timeout", "denied"],
)
def test_aws_call_maps_whatever_botocore_raises_to_one_line_aws_errors(error, words):
    with (
        pytest.raises(AwsError) as info,
        aws_call("lambda:PublishLayerVersion", "layer_name 'demo': could not publish"),
    ):
        raise error
    assert words in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("layer_name 'demo': could not publish")
    with (
        pytest.raises(AwsError) as on_s3,
        aws_call("s3:GetObject", "read the layer record", s3path=S3Path("s3://b/p/layer/last-uv.lock")),
    ):
        raise error
    assert str(on_s3.value).startswith("s3dir_lambda") and "s3://b/p/layer/last-uv.lock" in str(on_s3.value)


def test_aws_call_leaves_other_errors_alone():
    with pytest.raises(KeyError), aws_call("s3:GetObject", "read", s3path=S3Path("s3://b/p/x")):
        raise KeyError("x")


def test_user_error_is_the_front_ends_net_for_botocore():
    mapped = user_error(NoCredentialsError())
    assert isinstance(mapped, AwsError) and "no AWS credentials found" in str(mapped)
    other = ValueError("x")
    assert user_error(other) is other


def test_each_error_class_has_its_own_exit_code_and_the_help_names_them():
    codes = {
        cls: exit_code(error)
        for cls, error in [
            (LayerInputError, LayerInputError([("layer_name", "bad")])),
            (ManifestError, ManifestError("stale")),
            (BuildError, BuildError("pip failed")),
            (AwsError, AwsError("denied", operation="s3:GetObject")),
            (ConflictError, ConflictError("held", operation="s3:PutObject")),
            (LayerError, LayerError("other")),
            (OSError, OSError("disk")),
        ]
    }
    assert codes == {
        LayerInputError: 3,
        ManifestError: 4,
        BuildError: 5,
        AwsError: 6,
        ConflictError: 7,
        LayerError: 1,
        OSError: 1,
    }
    assert 2 not in codes.values()  # plan --detailed-exitcode's "a deploy would publish"
    for code, words in [
        (3, "wrong input"),
        (4, "lock file"),
        (5, "failed build"),
        (6, "failed AWS call"),
        (7, "another deploy"),
    ]:
        assert f"{code} " in EXIT_CODES_HELP and words in EXIT_CODES_HELP


# ---------------------------------------------------------------------------- a missing lock; a claim conflict
@pytest.fixture()
def lockless(tmp_path, monkeypatch):
    """A uv project without its uv.lock, and an AWS environment that no command here reaches."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\ndependencies = ["six"]\n')
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    return tmp_path


@pytest.mark.parametrize("command", ["plan", "deploy", "push"])
def test_a_missing_lock_is_a_manifest_error_exit_4_through_the_cli(command, lockless, capsys):
    argv = ["layer", command, "--project", str(lockless), "--layer-name", "demo", "--tool", "uv"]
    argv += ["--s3dir", "s3://bucket-x/demo/", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 4, err  # an unusable manifest or lock file (errors.EXIT_CODES), not a wrong input (3)
    assert err == f"error: uv.lock not found at {lockless / 'uv.lock'}; run `uv lock`", err


def test_a_missing_lock_keeps_its_input_for_pulumi_and_terraform_and_a_wrong_input_beside_it_is_exit_3(tmp_path):
    from aws_lambda_artifact_builder.layer.inputs import resolve_layer_inputs

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    layer = dict(path_pyproject_toml=tmp_path / "pyproject.toml", s3dir_lambda="s3://bucket-x/demo/", tool="poetry")
    with pytest.raises(ManifestError) as only_the_lock:
        resolve_layer_inputs(layer_name="demo", **layer)
    assert isinstance(only_the_lock.value, LayerInputError) and exit_code(only_the_lock.value) == 4
    assert [name for name, _ in only_the_lock.value.problems] == ["path_pyproject_toml"]
    with pytest.raises(LayerInputError) as also_a_name:
        resolve_layer_inputs(layer_name="bad name!", **layer)
    assert not isinstance(also_a_name.value, ManifestError) and exit_code(also_a_name.value) == 3
    assert [name for name, _ in also_a_name.value.problems] == ["layer_name", "path_pyproject_toml"]


def _conflict():
    return ConflictError(
        "another deploy (pid 7 on ci-3, layer demo) has held s3://b/p/layer/deploy-claim.json for longer than 3600s",
        operation="s3:PutObject",
        fix="rerun once it is done (or, if it is stuck, once its claim expires)",
    )


def test_a_claim_conflict_is_an_aws_error_with_its_own_exit_code():
    error = _conflict()
    assert isinstance(error, AwsError) and exit_code(error) == 7 and user_error(error) is error
    assert str(error).endswith("; rerun once it is done (or, if it is stuck, once its claim expires)")
    assert "7 another deploy of the same layer" in EXIT_CODES_HELP


def test_the_terraform_resource_reports_a_claim_conflict_as_one_diagnostic(monkeypatch, tmp_path):
    from aws_lambda_artifact_builder.terraform_provider import resource as tf_resource
    from aws_lambda_artifact_builder.terraform_provider.provider import AlabProvider
    from tf.utils import Diagnostics

    def conflicting_deploy(*_args, **_kwargs):
        raise _conflict()

    monkeypatch.setattr(tf_resource.api, "deploy", conflicting_deploy)
    provider = AlabProvider()
    provider.region, provider.endpoint_url = "us-east-1", "http://127.0.0.1:9"
    monkeypatch.setattr(provider, "clients", lambda *_: {"s3_client": None, "lambda_client": None})
    resource = tf_resource.LayerResource(provider)
    planned = {f.name: f.default for f in tf_resource.spec_fields() if f.option.resource}
    planned.update(layer_name="demo", path_pyproject_toml=str(tmp_path), s3dir_lambda="s3://b/p/", tool="uv")
    diags = Diagnostics()
    assert resource._deploy(diags, planned, prior=None) is None
    (error,) = [d for d in diags.diagnostics if d.severity == "error"]
    assert error.summary == "Cannot deploy layer demo" and error.detail == str(_conflict()), error


def test_the_pulumi_provider_raises_a_claim_conflict_as_one_line(monkeypatch, tmp_path, capsys):
    from aws_lambda_artifact_builder import pulumi_provider

    def conflicting_deploy(*_args, **_kwargs):
        raise _conflict()

    monkeypatch.setattr(pulumi_provider, "deploy", conflicting_deploy)
    provider = pulumi_provider.LambdaLayerProvider()
    monkeypatch.setattr(provider, "_clients", lambda _layer: {"s3_client": None, "lambda_client": None})
    props = {f.name: f.default for f in pulumi_provider.spec_fields() if f.option.resource}
    props.update(layer_name="demo", path_pyproject_toml=str(tmp_path), s3dir_lambda="s3://b/p/", tool="uv")
    with pytest.raises(ConflictError) as info:
        provider._deploy(pulumi_provider.LayerProps.from_props(props))
    assert info.value.fix.startswith("rerun once it is done")
    said = capsys.readouterr().err
    assert f"error: layer 'demo' was not deployed: {_conflict()}" in said, said


def test_a_refused_upload_file_is_mapped_by_what_refused_it():
    """boto3's ``upload_file`` wraps S3's refusal in ``S3UploadFailedError``: the fix still names the action."""
    from boto3.exceptions import S3UploadFailedError

    refusal = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")
    with (
        pytest.raises(AwsError) as info,
        aws_call("s3:PutObject", "upload the layer zip", s3path=S3Path("s3://b/p/layer/layer.zip")),
    ):
        try:
            raise refusal
        except ClientError as e:
            raise S3UploadFailedError(f"Failed to upload layer.zip to b/p/layer/layer.zip: {e}") from None
    assert info.value.fix == "AWS denied s3:PutObject on bucket 'b': allow it for the AWS identity in use"
    assert "s3://b/p/layer/layer.zip" in str(info.value) and "S3UploadFailedError" not in str(info.value)
