"""Errors a user can act on: every message names the input that is wrong, or the operation and a fix.

One small hierarchy, all under :class:`LayerError` (a ``ValueError``, as the seed API promised):

- :class:`LayerInputError`: inputs that are wrong, as data (``problems``: ``(input, reason)`` pairs),
  so Pulumi reports ``CheckFailure``\\ s and Terraform diagnostics on the right property;
- :class:`ManifestError`: a dependency manifest (lock file) that cannot be used; when it is the only
  problem of a spec, :class:`ManifestInputError` is both (its ``problems`` for Pulumi and Terraform);
- :class:`BuildError`: an install, container or packaging step that failed;
- :class:`AwsError`: an S3 or Lambda call that failed, with the operation and what to do;
  :class:`ConflictError`: another deploy held a claim on the same S3 folder too long, or took it over.

Each front end maps them once: the CLI to one line and an exit code per class (:data:`EXIT_CODES`),
Pulumi to check failures or an error, Terraform to diagnostics; :func:`user_error` is their net for any
botocore failure the core did not map. :func:`redact` is the one way any of them removes secrets from text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote


class LayerError(ValueError):
    """Base of every clear, user-facing error raised by this package."""


class LayerInputError(LayerError):
    """One or more inputs are wrong; ``problems`` holds ``(input, reason)`` for each."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems: list[tuple[str, str]] = list(problems)
        super().__init__("; ".join(reason for _, reason in self.problems))


class ManifestError(LayerError):
    """A dependency manifest is missing, unpinned, or stale against ``pyproject.toml``; or a manifest
    recorded in S3 is not a layer record any more (edited by hand)."""


class ManifestProblem(tuple[str, str]):
    """An ``(input, reason)`` problem that a :class:`ManifestError` caused (the lock is missing, stale, …):
    a plain pair to every reader, told apart only by :func:`input_error`."""


class ManifestInputError(LayerInputError, ManifestError):
    """A spec whose only problems are its manifest's: the CLI's exit code of a :class:`ManifestError`, the
    ``problems`` of a :class:`LayerInputError` (Pulumi and Terraform report them on ``path_pyproject_toml``)."""


def input_error(problems: Iterable[tuple[str, str]]) -> LayerInputError:
    """The error of a spec's ``problems``: a :class:`ManifestInputError` when each is a :class:`ManifestProblem`."""
    problems = list(problems)
    if problems and all(isinstance(p, ManifestProblem) for p in problems):
        return ManifestInputError(problems)
    return LayerInputError(problems)


class BuildError(LayerError):
    """An install, a container run or the packaging of a layer failed."""


class AwsError(LayerError):
    """An AWS call failed; ``operation`` names it and ``fix`` says what the user can do."""

    def __init__(self, message: str, *, operation: str, fix: str = "") -> None:
        self.operation = operation
        self.fix = fix
        super().__init__(f"{message}; {fix}" if message and fix else message or fix)


class ConflictError(AwsError):
    """Another deploy holds the claim on the same S3 folder (and did not finish in time), took it over from
    this one, or stored an artifact this one cannot use: nothing is wrong with the inputs or the build, and
    the same command run again later finishes. ``operation`` is the S3 action on the contested object."""


#: How a botocore failure the user fixes by configuration reads, and what fixes it.
_NO_CREDENTIALS_FIX = (
    "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "or run `aws configure` / `aws sso login`"
)
_NO_REGION_FIX = "no AWS region set: set AWS_REGION or AWS_DEFAULT_REGION, pass --region, or configure a profile"
_EXPIRED_FIX = (
    "the AWS credentials have expired: refresh them (`aws sso login`, or new temporary credentials) and rerun"
)
_UNKNOWN_CREDENTIALS_FIX = (
    "AWS does not accept these credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
)
_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
_UNKNOWN_CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})

#: The IAM action behind each S3 API call this package makes (the rest are Lambda's, named alike).
_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
}


#: The STS calls this package makes (another account's role, ``layer/targets.py``).
_STS_ACTIONS = {"AssumeRole": "sts:AssumeRole", "GetCallerIdentity": "sts:GetCallerIdentity"}


def error_code(error: BaseException) -> str:
    """AWS's error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def iam_action(error: BaseException, default: str = "the AWS call") -> str:
    """The IAM action a refused call needs, e.g. ``s3:GetObject`` or ``lambda:PublishLayerVersion``."""
    operation = getattr(error, "operation_name", None)
    if not operation:
        return default
    return _S3_ACTIONS.get(operation) or _STS_ACTIONS.get(operation) or f"lambda:{operation}"


def aws_fix(error: BaseException, *, action: str, resource: str = "") -> str:
    """What fixes a botocore failure, in one phrase; ``""`` when configuration is not the cause."""
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return _NO_CREDENTIALS_FIX
    if isinstance(error, NoRegionError):
        return _NO_REGION_FIX
    code = error_code(error)
    if code in _EXPIRED_CODES:
        return _EXPIRED_FIX
    if code in _UNKNOWN_CREDENTIAL_CODES:
        return _UNKNOWN_CREDENTIALS_FIX
    if code in _DENIED_CODES:
        return f"AWS denied {action}{f' on {resource}' if resource else ''}: allow it for the AWS identity in use"
    return ""


def _network_fix(error: BaseException) -> str:
    """What to check when the endpoint could not be reached or did not answer in time (``""`` otherwise)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return "check the network and the AWS endpoint (AWS_ENDPOINT_URL, --region), then rerun"
    return ""


def aws_error(error: BaseException, *, operation: str, what: str, resource: str = "") -> AwsError:
    """``error`` (botocore's) as one line: ``what`` failed, why, and what fixes it.

    Missing, expired or unknown credentials, a missing region and a refusal become the fix alone
    (naming the action and resource to allow); anything else keeps botocore's text (one line),
    with what to check when the endpoint was not reached.
    """
    fix = aws_fix(error, action=operation, resource=resource)
    if fix:
        # No ``what`` (nothing to name, e.g. no region at all): the fix is the whole line.
        return AwsError(what, operation=operation, fix=fix)
    text = " ".join(str(error).split())
    return AwsError(f"{what}: {text}", operation=operation, fix=_network_fix(error))


def user_error(error: BaseException) -> BaseException:
    """Any botocore failure that reached a front end as an :class:`AwsError` (the rest unchanged).

    The core maps every AWS call it makes (``layer.clients.aws_call``); this is each front end's
    last net, so no user ever reads a botocore class name or a traceback for a configuration problem.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, (ClientError, BotoCoreError)):
        action = iam_action(error)
        return aws_error(error, operation=action, what=f"AWS call {action} failed")
    return error


#: The CLI's exit code per error class (``alab --help``), the first class that matches: a subclass
#: before its base (a manifest problem of a spec is a manifest error, a conflict is not any AWS failure).
#: 2 is plan's "changes" under ``--detailed-exitcode``, 1 any other error (a usage error, an unexpected one).
EXIT_CODES: tuple[tuple[type[LayerError], int], ...] = (
    (ManifestError, 4),
    (LayerInputError, 3),
    (BuildError, 5),
    (ConflictError, 7),
    (AwsError, 6),
)


EXIT_CODES_HELP = (
    "exit codes: 0 done (plan: no change); 2 plan --detailed-exitcode: a deploy would publish; 1 a usage or "
    "unexpected error; 3 a wrong input; 4 an unusable manifest or lock file; 5 a failed build; 6 a failed AWS "
    "call; 7 another deploy of the same layer held it too long or took it over (rerun later)"
)


def exit_code(error: BaseException) -> int:
    """The exit code the CLI ends with for ``error`` (1 when no class of the model matches)."""
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 1)


MASK = "****"


def mask_url_credentials(text: str) -> str:
    """Replace the ``user:password@`` part of every URL in ``text`` so logs never show it."""
    # The user-info ends at the LAST "@" before the path: a raw "@" in a password is still login.
    return re.sub(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]*@", r"\g<scheme>", text)


def mask_token(text: str, secret: str) -> str:
    """``secret`` replaced by ``****`` wherever no letter or digit touches it on either side.

    A short password would otherwise turn every occurrence of its letters into ``****``.
    """
    if not secret:
        return text
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Text safe for any sink (CLI, logs, Pulumi and Terraform diagnostics): URL logins removed and each
    secret masked as written and URL-encoded (how it appears inside an index URL)."""
    text = mask_url_credentials(str(text))
    for secret in secrets:
        if not secret:
            continue
        for form in sorted({secret, quote(secret, safe="")}, key=len, reverse=True):
            text = mask_token(text, form)
    return text
