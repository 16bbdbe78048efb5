"""A login written inside requirements.txt (issue 14, item 4): pip gets it through its environment,
and nothing of it reaches S3 (bodies, metadata), the plan or the fingerprint."""

from __future__ import annotations

from urllib.parse import quote

from aws_lambda_artifact_builder.api import deploy_layer, plan_layer


def test_index_login_inside_requirements_installs_and_never_reaches_s3(
    project_copy, private_index, bucket, s3_client, lambda_client
):
    path = project_copy("pip")
    # A raw "@" in the password: the user-info ends at the LAST "@".
    secret = quote(private_index.password, safe="@")
    assert "@" in secret
    url = private_index.url.replace("://", f"://{private_index.username}:{secret}@")
    req = path.parent / "requirements.txt"
    req.write_text(f"--index-url {url}\n" + req.read_text())
    target = dict(
        layer_name="login-deps",
        s3dir_lambda=f"s3://{bucket}/apps/login/",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    lines: list[str] = []
    result = deploy_layer(path_pyproject_toml=path, tool="pip", printer=lines.append, **target)
    assert result.published

    tail = private_index.password.split("@")[-1]
    head = private_index.password.split("@")[0]
    for obj in s3_client.list_objects_v2(Bucket=bucket)["Contents"]:
        got = s3_client.get_object(Bucket=bucket, Key=obj["Key"])
        blob = got["Body"].read() + repr(got["Metadata"]).encode()
        for piece in (tail, head, quote(tail, safe="")):
            assert piece.encode() not in blob, obj["Key"]
    assert not any(tail in line or head in line for line in lines)
    pins_file = path.parent / "build" / "lambda" / "layer" / "layer-requirements.txt"
    assert "${ALAB_REQUIREMENTS_LOGIN_0}" in pins_file.read_text() and head not in pins_file.read_text()

    req.write_text(req.read_text().replace(secret, "rotated-token"))
    plan = plan_layer(path_pyproject_toml=path, tool="pip", **target)
    assert not plan.changed and plan.fingerprint == result.fingerprint


def test_env_variables_in_an_index_url_are_expanded_by_pip_from_the_environment(
    project_copy, private_index, bucket, s3_client, lambda_client, monkeypatch
):
    path = project_copy("pip")
    monkeypatch.setenv("ALAB_TEST_INDEX_USER", private_index.username)
    monkeypatch.setenv("ALAB_TEST_INDEX_TOKEN", quote(private_index.password, safe=""))
    url = private_index.url.replace("://", "://${ALAB_TEST_INDEX_USER}:${ALAB_TEST_INDEX_TOKEN}@")
    req = path.parent / "requirements.txt"
    req.write_text(f"--index-url {url}\n" + req.read_text())
    target = dict(
        layer_name="token-deps",
        s3dir_lambda=f"s3://{bucket}/apps/token/",
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    result = deploy_layer(path_pyproject_toml=path, tool="pip", verbose=False, **target)
    assert result.published
    head = private_index.password.split("@")[0]
    for obj in s3_client.list_objects_v2(Bucket=bucket)["Contents"]:
        got = s3_client.get_object(Bucket=bucket, Key=obj["Key"])
        assert head.encode() not in got["Body"].read() + repr(got["Metadata"]).encode()
