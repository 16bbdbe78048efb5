"""Plan-time checks (issue 11): what the lock already tells is refused before any claim, build or S3 write."""

from __future__ import annotations

import pytest

from aws_lambda_artifact_builder.api import LayerError, deploy_layer
from support.layers import s3_snapshot
from support.projects import lock


def test_no_wheel_for_the_target_is_refused_before_any_s3_write(project_copy, private_index, dir_tool_cache, bucket, s3_client, lambda_client, credentials):
    path = project_copy("uv")
    path.write_text(path.read_text().replace('"alab-demo-extra==1.0.0",', '"alab-demo-extra==1.0.0",\n    "alab-demo-native==1.0.0",', 1))
    lock("uv", path.parent, private_index, dir_tool_cache)
    with pytest.raises(LayerError, match=r"no wheel for python3.12 on arm64.*alab-demo-native==1.0.0"):
        deploy_layer(
            layer_name="native-deps", path_pyproject_toml=path, s3dir_lambda=f"s3://{bucket}/apps/native/", tool="uv",
            architecture="arm64", credentials=credentials, s3_client=s3_client, lambda_client=lambda_client, verbose=False,
        )
    assert s3_snapshot(s3_client, bucket) == {}
    assert not (path.parent / "build" / "lambda" / "layer").exists()


def test_a_target_the_lock_excludes_is_refused(project_copy, private_index, dir_tool_cache, bucket, s3_client, lambda_client):
    path = project_copy("uv")
    path.write_text(path.read_text().replace('requires-python = ">=3.10"', 'requires-python = ">=3.11"'))
    lock("uv", path.parent, private_index, dir_tool_cache)
    with pytest.raises(LayerError, match=r"supports python >=3.11 .*excludes the target python3.10"):
        deploy_layer(
            layer_name="py-deps", path_pyproject_toml=path, s3dir_lambda=f"s3://{bucket}/apps/py/", tool="uv",
            python_version="3.10", s3_client=s3_client, lambda_client=lambda_client, verbose=False,
        )
    assert s3_snapshot(s3_client, bucket) == {}
