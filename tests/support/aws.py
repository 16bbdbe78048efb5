"""Looking into another account of the moto server, as the tests of many accounts do."""

from __future__ import annotations

from typing import Any

import boto3

#: How every session token moto's STS issues begins: none may reach a state, a log or a response.
MOTO_SESSION_TOKEN_PREFIX = "FQoGZXIvYXdzEBYaD"


def as_role(role_arn: str | None, service: str, region: str, endpoint_url: str) -> Any:
    """A boto3 client as the role (moto makes what it creates that role's account's), or as the caller."""
    if role_arn is None:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)
    creds = boto3.client("sts", region_name=region, endpoint_url=endpoint_url).assume_role(
        RoleArn=role_arn, RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
