"""The fixture servers are real: moto answers boto3 over HTTP, the index enforces its password."""

from __future__ import annotations

import urllib.error
import urllib.request

from support.servers import PrivateIndex


def test_moto_server_answers_boto3_over_http(aws, s3_client, lambda_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert s3_client.meta.endpoint_url == aws.endpoint_url
    assert lambda_client.list_layers()["Layers"] == []


def test_moto_reset_gives_each_test_an_empty_account(aws, s3_client):
    assert s3_client.list_buckets()["Buckets"] == []


def _get(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_private_index_serves_the_fixture_wheels_with_the_right_password(private_index: PrivateIndex):
    with urllib.request.urlopen(
        urllib.request.Request(private_index.url + "alab-demo-core/", headers=private_index.auth_header()), timeout=10
    ) as r:
        page = r.read().decode()
    assert "alab_demo_core-1.0.0-py3-none-any.whl" in page
    assert "alab_demo_core-1.1.0-py3-none-any.whl" in page


def test_private_index_refuses_a_wrong_or_missing_password(private_index: PrivateIndex):
    url = private_index.url + "alab-demo-core/"
    assert _get(url, private_index.auth_header()) == 200
    assert _get(url, private_index.auth_header(password="wrong")) in (401, 403)
    assert _get(url, {}) == 401
