"""boto3 clients for S3 and Lambda, and the one mapping of their failures to :class:`~..errors.AwsError`.

Every AWS call of the package runs inside :func:`aws_call`: whatever botocore raises that the call
site does not handle itself (a missing key, a lost condition, the publish's lost response) leaves
as one ``AwsError`` naming the operation and the fix, never as botocore's exception.

Creating a client costs tens of milliseconds, more than a no-op plan's S3 request, so the
default clients are cached per process and per AWS environment (profile, region, endpoint,
credentials): planning twenty layers must not pay twenty client set-ups. They connect within
10 s and retry three times at most (standard mode), so an endpoint that never answers is given up
on; a plan also has a total deadline (see ``workflow``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from ..errors import AwsError, aws_error, aws_fix, iam_action
from ..errors import error_code as error_code  # re-exported: the modules that read it here keep working

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from s3pathlib.api import S3Path


def _aws_environment_key() -> str:
    """A digest of the ``AWS_*`` variables, so a changed profile or endpoint gets new clients."""
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
    return hashlib.sha256(repr(items).encode("utf-8")).hexdigest()


def default_session(region: str | None = None) -> boto3.session.Session:
    """boto3's default session, in ``$AWS_REGION`` when boto3 finds no region of its own.

    botocore reads ``AWS_DEFAULT_REGION`` and the profile but not ``AWS_REGION``, which the other AWS
    SDKs, Lambda and CI runners set and users expect to work.
    """
    session = boto3.session.Session(region_name=region)
    if session.region_name is None and os.environ.get("AWS_REGION"):
        session = boto3.session.Session(region_name=os.environ["AWS_REGION"])
    return session


@functools.lru_cache(maxsize=16)
def _cached_clients(region: str | None, endpoint_url: str | None, pid: int, env_key: str) -> tuple[Any, Any]:
    session = default_session(region)
    config = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 3})
    return (
        session.client("s3", endpoint_url=endpoint_url, config=config),
        session.client("lambda", endpoint_url=endpoint_url, config=config),
    )


def make_clients(region: str | None = None, endpoint_url: str | None = None) -> tuple[S3Client, LambdaClient]:
    """``(s3_client, lambda_client)`` from boto3's default session; ``AWS_ENDPOINT_URL`` and profiles apply.

    No region anywhere is an :class:`AwsError` saying how to set one, not botocore's bare text.
    """
    try:
        return _cached_clients(region, endpoint_url, os.getpid(), _aws_environment_key())
    except NoRegionError as e:
        raise aws_error(e, operation="creating the S3 and Lambda clients", what="") from None


def resolve_clients(
    s3_client: S3Client | None,
    lambda_client: LambdaClient | None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> tuple[S3Client, LambdaClient]:
    """The caller's clients where given, default ones (in ``region``, at ``endpoint_url``) for the rest."""
    if s3_client is not None and lambda_client is not None:
        return s3_client, lambda_client
    default_s3, default_lambda = make_clients(region=region, endpoint_url=endpoint_url)
    return s3_client or default_s3, lambda_client or default_lambda


#: Lambda calls that are not idempotent: sent again after a lost response, each creates something new.
NON_IDEMPOTENT_LAMBDA_CALLS = ("PublishLayerVersion", "AddLayerVersionPermission")


def _never_retry(**_kwargs: Any) -> bool:
    return False


def without_automatic_retries(lambda_client: LambdaClient) -> LambdaClient:
    """Make botocore never resend ``NON_IDEMPOTENT_LAMBDA_CALLS`` on this client; other calls keep retrying.

    A publish whose response was lost (dropped connection, read timeout, 5xx) may have created
    the version: resending it would create a second one. The caller looks the version up
    instead. botocore asks the ``needs-retry`` handlers in order and takes the first answer
    that is not ``None``: this handler, registered first, answers ``False`` (no retry).
    Registering is idempotent (a fixed ``unique_id``), so every call may do it.
    """
    for name in NON_IDEMPOTENT_LAMBDA_CALLS:
        lambda_client.meta.events.register_first(
            # The stubs type handlers as returning None; a needs-retry handler's answer is its return value.
            f"needs-retry.lambda.{name}",
            cast(Any, _never_retry),
            unique_id=f"alab-no-retry-{name}",
        )
    return lambda_client


def http_status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_precondition_failure(error: BaseException) -> bool:
    """A conditional write lost: 412, or 409 when S3 saw a concurrent write to the same key."""
    return error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict") or http_status(error) in (409, 412)


def is_missing_key(error: BaseException) -> bool:
    return error_code(error) in ("NoSuchKey", "404", "NotFound")


def s3_error(error: BaseException, s3path: S3Path, action: str) -> AwsError:
    """A failed S3 call on ``s3path`` (below ``s3dir_lambda``) as one line; ``action`` says what it was for."""
    operation = iam_action(error, "s3")
    if error_code(error) == "NoSuchBucket":
        return AwsError(
            f"s3dir_lambda names bucket {s3path.bucket!r}, which does not exist (trying to {action} at {s3path.uri})",
            operation=operation,
        )
    fix = aws_fix(error, action=operation, resource=f"bucket {s3path.bucket!r}")
    if fix:  # credentials, region or a refusal: the one line names the fix
        return AwsError(f"s3dir_lambda {s3path.uri}: could not {action}", operation=operation, fix=fix)
    return aws_error(error, operation=operation, what=f"s3dir_lambda: could not {action} at {s3path.uri}")


@contextlib.contextmanager
def aws_call(operation: str, what: str, *, s3path: S3Path | None = None) -> Iterator[None]:
    """Run AWS calls; a botocore failure escaping the block becomes an :class:`AwsError`.

    ``operation`` is the IAM action (``lambda:GetLayerVersion``; an S3 call names its own). With
    ``s3path``, ``what`` is the purpose (``read the layer record``) and the message names the object;
    without, ``what`` is the message's start (``layer_name 'x': could not list its versions``).
    Code that inspects an error (a 404, a lost condition) does so inside the block and re-raises
    what it does not handle: only that reaches the mapping.
    """
    try:
        yield
    except S3UploadFailedError as e:  # boto3's upload_file wraps the refusal of a part in its own class
        cause = e.__context__ if isinstance(e.__context__, (ClientError, BotoCoreError)) else e
        if s3path is not None:
            raise s3_error(cause, s3path, what) from None
        raise aws_error(cause, operation=operation, what=what) from None
    except (ClientError, BotoCoreError) as e:
        if s3path is not None:
            raise s3_error(e, s3path, what) from None
        raise aws_error(e, operation=operation, what=what) from None
