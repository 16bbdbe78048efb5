"""Many regions and accounts from one build: a deploy target is (region, optional role ARN, s3dir).

Lambda reads a layer's zip only from a bucket in its own region, so each target has its own
``s3dir`` (``{region}`` and ``{account}`` in it are filled in per target) with its own record and
deploy claim: a failure in one target leaves the others recorded, and a rerun finishes only
what is missing (the others plan "unchanged"). The artifact store lives in the first target's
``s3dir`` unless one is named (``store_target``, the CLI's ``--artifact-store``); every target that needs the fingerprint copies the one stored zip (``store.py``), so
every published copy has the same CodeSha256, and across runners it is built once (build claim).

Targets deploy side by side, one thread each. Another account is reached through STS
``AssumeRole`` with the caller's credentials; the assumed credentials live in memory only and
are refreshed by botocore when they near expiry (a long build must not outlive them).

A wrong target is a :class:`~..errors.LayerInputError` naming the input (``region``, ``role_arn``,
``targets``, ``s3dir_lambda``); every AWS call here (STS, the bucket's region) is mapped by
``clients.aws_call``. What each target does is logged on the ``target`` logger.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.credentials import (
    Credentials as BotoCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..errors import AwsError, LayerError, LayerInputError, aws_error, exit_code
from ..progress import forward_logs, get_logger, labelled
from ..typehint import T_PRINTER
from .clients import aws_call, default_session, make_clients
from .foundation import coerce_s3dir
from .inputs import resolve_spec
from .publish import LayerDeployment
from .spec import DeployOptions, LayerSpec
from .store import ArtifactStore

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 3})
_log = get_logger("target")


def _not_a_role(role_arn: object) -> str:
    return f"role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"


@dataclasses.dataclass(frozen=True)
class DeployTarget:
    """Where one copy of the layer is published: a region, optionally another account, and its s3dir."""

    region: str
    #: May contain ``{region}`` and ``{account}``.
    s3dir_lambda: str
    role_arn: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.region, str) or not _REGION.fullmatch(self.region):
            raise LayerInputError(
                [("region", f"target region {self.region!r} is not an AWS region name like 'eu-west-1'")]
            )
        if self.role_arn is not None and not _ROLE_ARN.fullmatch(self.role_arn):
            raise LayerInputError([("role_arn", f"target {_not_a_role(self.role_arn)}")])

    @property
    def account(self) -> str | None:
        """The account the role is in (``None``: the caller's own)."""
        m = _ROLE_ARN.fullmatch(self.role_arn or "")
        return m.group("account") if m else None

    @property
    def label(self) -> str:
        return self.region + (f"/{self.account}" if self.account else "")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, default_s3dir: str | None) -> DeployTarget:
        """A ``targets`` item of ``[tool.aws_lambda_artifact_builder]``: region, role_arn, s3dir."""
        unknown = sorted(set(raw) - {"region", "role_arn", "s3dir_lambda", "s3dir"})
        if unknown:
            why = f"targets item {dict(raw)!r}: unknown keys {', '.join(unknown)} (known: region, role_arn, s3dir)"
            raise LayerInputError([("targets", why)])
        s3dir = raw.get("s3dir_lambda") or raw.get("s3dir") or default_s3dir
        if not isinstance(s3dir, str) or not isinstance(raw.get("region"), str):
            why = f"targets item {dict(raw)!r} needs a region and an s3dir (or a top-level s3dir_lambda)"
            raise LayerInputError([("targets", why)])
        role = raw.get("role_arn") or None
        return cls(region=raw["region"], s3dir_lambda=s3dir, role_arn=role if isinstance(role, str) else None)


def expand_targets(regions: Sequence[str], role_arns: Sequence[str], s3dir: str) -> list[DeployTarget]:
    """``--region`` × ``--role-arn`` (an empty role ARN is the caller's own account)."""
    roles: Sequence[str | None] = [r or None for r in role_arns] or [None]
    return [DeployTarget(region=region, s3dir_lambda=s3dir, role_arn=role) for role in roles for region in regions]


# ---------------------------------------------------------------------------- credentials
class _AssumedRole(CredentialProvider):
    """botocore's own refreshing assume-role credentials, fed from the caller's credentials."""

    METHOD = CANONICAL_NAME = "alab-assume-role"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher, role_arn: str) -> None:
        super().__init__()
        self._fetcher = fetcher
        self._role_arn = role_arn

    def load(self) -> BotoCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)

    def _fetch(self) -> dict[str, Any]:
        """The role's credentials; a refused ``AssumeRole`` names the role and ``sts:AssumeRole``, not the S3
        or Lambda call that needed them (botocore assumes the role on a client's first request)."""
        try:
            return dict(self._fetcher.fetch_credentials())
        except (ClientError, BotoCoreError) as e:
            role = self._role_arn
            raise aws_error(e, operation="sts:AssumeRole", what=f"could not assume {role}", resource=role) from None


def _session(target: DeployTarget, role_arn: str, endpoint_url: str | None) -> boto3.session.Session:
    base = boto3.session.Session(region_name=target.region)
    source = base.get_credentials()
    if source is None:  # botocore's own failure, mapped as every other: the fix names the variables to set
        what = f"target {target.label}: could not assume {role_arn}"
        raise aws_error(NoCredentialsError(), operation="sts:AssumeRole", what=what)
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=functools.partial(base.client, region_name=target.region, endpoint_url=endpoint_url),
        source_credentials=source,
        role_arn=role_arn,
        extra_args={"RoleSessionName": "alab-layer-deploy"},
        cache={},  # in memory only: assumed credentials are never written anywhere
    )
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_AssumedRole(fetcher, role_arn)]))
    return boto3.session.Session(botocore_session=core, region_name=target.region)


def target_clients(target: DeployTarget, endpoint_url: str | None = None) -> tuple[S3Client, LambdaClient]:
    """S3 and Lambda clients in the target's region, as the target's role when it names one."""
    if target.role_arn is None:
        return make_clients(region=target.region, endpoint_url=endpoint_url)
    session = _session(target, target.role_arn, endpoint_url)
    return (
        session.client("s3", endpoint_url=endpoint_url, config=_CONFIG),
        session.client("lambda", endpoint_url=endpoint_url, config=_CONFIG),
    )


def _caller_account(region: str, endpoint_url: str | None) -> str:
    what = f"{{account}} in the s3dir: could not ask STS which account the credentials in {region} are in"
    with aws_call("sts:GetCallerIdentity", what):
        sts = boto3.session.Session(region_name=region).client("sts", endpoint_url=endpoint_url, config=_CONFIG)
        return str(sts.get_caller_identity()["Account"])


def resolve_s3dir(target: DeployTarget, endpoint_url: str | None = None) -> str:
    """The target's s3dir with ``{region}`` and ``{account}`` filled in, checked."""
    s3dir = target.s3dir_lambda.replace("{region}", target.region)
    if "{account}" in s3dir:
        s3dir = s3dir.replace("{account}", target.account or _caller_account(target.region, endpoint_url))
    try:
        return str(coerce_s3dir(s3dir).uri)
    except LayerError as e:
        raise LayerInputError([("s3dir_lambda", str(e))]) from None


def bucket_region(s3_client: S3Client, bucket: str) -> str | None:
    """The region a bucket is in; ``None`` when we may not ask, or S3 gives no answer within
    ``ALAB_AWS_DEADLINE_SECONDS`` (the S3 calls that follow report it, within their own deadline)."""
    from .workflow import _in_background, aws_deadline_seconds

    def ask() -> str | None:
        with aws_call("s3:GetBucketLocation", f"could not ask where bucket {bucket!r} is"):
            return s3_client.get_bucket_location(Bucket=bucket).get("LocationConstraint")

    try:
        location = _in_background(ask).result(timeout=aws_deadline_seconds())
    except (AwsError, TimeoutError):
        return None
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def check_bucket_region(target: DeployTarget, s3dir: str, s3_client: S3Client) -> None:
    """Lambda in one region cannot read a layer zip from a bucket in another: say so before any build."""
    bucket = coerce_s3dir(s3dir).bucket
    region = bucket_region(s3_client, bucket)
    if region is None:
        return  # not allowed to ask: the deploy's own S3 calls report a missing or denied bucket
    if region != target.region:
        why = (
            f"target {target.label}: bucket {bucket!r} of {s3dir} is in {region}, but Lambda in {target.region} "
            f"reads layer zips only from a bucket in its own region: give each region its own bucket "
            f"(e.g. s3dir 's3://my-layers-{{region}}/prefix/')"
        )
        raise LayerInputError([("s3dir_lambda", why)])


# ---------------------------------------------------------------------------- deploy
@dataclasses.dataclass(frozen=True)
class TargetOutcome:
    target: DeployTarget
    s3dir_lambda: str
    deployment: LayerDeployment | None = None
    #: Why this target failed (``""`` when it succeeded).
    error: str = ""
    #: The CLI's exit code of this target's error (``errors.exit_code``; 0 when it succeeded).
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.target.region,
            "role_arn": self.target.role_arn,
            "s3dir_lambda": self.s3dir_lambda,
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True)
class MultiDeployment:
    """What a deploy to several targets ended on, target by target."""

    outcomes: tuple[TargetOutcome, ...]
    #: Builds this process ran (0 when every target found its fingerprint recorded or stored).
    builds: int

    @property
    def failed(self) -> tuple[TargetOutcome, ...]:
        return tuple(o for o in self.outcomes if o.error)

    @property
    def exit_code(self) -> int:
        """0 when every target succeeded; else the exit code the failed targets' errors share (all AWS
        failures: 6), or 1 when they differ."""
        codes = {o.exit_code for o in self.failed}
        return 0 if not codes else codes.pop() if len(codes) == 1 else 1

    def raise_for_failures(self) -> None:
        if self.failed:
            ok = len(self.outcomes) - len(self.failed)
            lines = "; ".join(f"{o.target.label}: {o.error}" for o in self.failed)
            raise LayerError(
                f"{len(self.failed)} of {len(self.outcomes)} targets failed ({lines}); the other {ok} are "
                f"deployed and recorded: rerun to finish only the failed ones"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"builds": self.builds, "targets": [o.to_dict() for o in self.outcomes]}


def store_target_of(targets: Sequence[DeployTarget]) -> DeployTarget:
    """Where the store lives when none is named: the same target whatever order runners list them in
    (the caller's own account first, then by region), so a fleet shares one store and builds once."""
    return min(targets, key=lambda t: (t.role_arn or "", t.region, t.s3dir_lambda))


def _check_targets(targets: Sequence[DeployTarget]) -> None:
    """At least one target, and none twice (same label and s3dir): they would race on one record."""
    if not targets:
        raise LayerInputError([("targets", "no deploy target: give at least one region (--region) or a targets list")])
    labels = [t.label for t in targets]
    if len(set(zip(labels, [t.s3dir_lambda for t in targets], strict=True))) != len(targets):
        raise LayerInputError([("targets", f"the same target is given twice: {', '.join(labels)}")])


def layer_spec_of(
    spec: LayerSpec | None, options: DeployOptions | None, layer: Mapping[str, Any]
) -> tuple[LayerSpec, DeployOptions]:
    """The spec and options of a many-target call: given as values, or (the keyword form kept for the
    API's callers) as ``deploy_layer``'s layer options by name, without ``s3dir_lambda`` and the clients."""
    if spec is not None:
        if layer:
            raise TypeError(f"give the layer as a spec or as keywords, not both: {', '.join(sorted(layer))}")
        return spec, DeployOptions() if options is None else options
    from .inputs import check_spec, spec_from_kwargs

    made, made_options, problems = spec_from_kwargs(**layer)
    if problems:  # a packaging_options of another type, with every other problem (the s3dirs are the targets')
        others = [p for p in check_spec(made, made_options)[0] if p[0] != "s3dir_lambda"]
        raise LayerInputError(others + problems)
    return made, made_options


def deploy_layer_to_targets(
    spec: LayerSpec | None = None,
    options: DeployOptions | None = None,
    *,
    targets: Sequence[DeployTarget],
    from_store: bool = False,
    store_target: DeployTarget | None = None,
    endpoint_url: str | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
    **layer: Any,
) -> MultiDeployment:
    """The core's ``deploy`` of ``spec`` to every target side by side, sharing one artifact store; see the module.

    ``spec.s3dir_lambda`` is replaced by each target's. The keyword form (``layer``: ``deploy_layer``'s
    layer options by name, no ``spec``) is kept for the API's callers (:func:`layer_spec_of`).
    ``from_store=True`` never builds: a fingerprint missing from the store fails.
    The store is ``store_target``'s s3dir, by default :func:`store_target_of` the targets.
    A failed target does not stop the others; see :meth:`MultiDeployment.raise_for_failures`.
    ``verbose``/``printer``: the public API's adapter (``progress.forward_logs``); among several targets,
    each line is named by its target (``progress.labelled``).
    """
    spec, options = layer_spec_of(spec, options, layer)
    _check_targets(targets)
    resolved = [(t, resolve_s3dir(t, endpoint_url), target_clients(t, endpoint_url)) for t in targets]
    if len(resolved) > 1:  # a bad input fails once, not once per target
        resolve_spec(dataclasses.replace(spec, s3dir_lambda=resolved[0][1]), options)
    home = store_target or store_target_of(targets)
    home_s3dir = resolve_s3dir(home, endpoint_url)
    home_s3 = next((c[0] for t, _, c in resolved if t == home), None) or target_clients(home, endpoint_url)[0]
    store = ArtifactStore(s3_client=home_s3, s3dir=home_s3dir, may_build=not from_store)
    one = functools.partial(
        _deploy_one,
        spec=spec,
        options=options,
        store=store,
        several=len(resolved) > 1,
    )
    with (
        forward_logs(verbose, printer),
        store,
        ThreadPoolExecutor(max_workers=min(len(resolved), 8), thread_name_prefix="alab-target") as pool,
    ):  # each target in a copy of this context: its lines are forwarded, and named by its label
        outcomes = tuple(pool.map(lambda r: contextvars.copy_context().run(one, *r), resolved))
    return MultiDeployment(outcomes=outcomes, builds=store.builds)


def _deploy_one(
    target: DeployTarget,
    s3dir: str,
    clients: tuple[S3Client, LambdaClient],
    *,
    spec: LayerSpec,
    options: DeployOptions,
    store: ArtifactStore,
    several: bool,
) -> TargetOutcome:
    """One target's deploy; among ``several``, its failure is its outcome (with the CLI's exit code of its
    error), so the other targets go on."""
    from . import workflow

    try:
        check_bucket_region(target, s3dir, clients[0])
        label = labelled(target.label) if several else contextlib.nullcontext()
        with label:
            deployment = workflow.deploy(
                dataclasses.replace(spec, s3dir_lambda=s3dir),
                options,
                s3_client=clients[0],
                lambda_client=clients[1],
                artifact_store=store,
            )
    except Exception as e:
        if not several:
            raise
        _log.info("[%s] [target] failed: %s", target.label, e)
        return TargetOutcome(target=target, s3dir_lambda=s3dir, error=str(e), exit_code=exit_code(e))
    return TargetOutcome(target=target, s3dir_lambda=s3dir, deployment=deployment)


def push_layer_artifact(
    spec: LayerSpec | None = None,
    options: DeployOptions | None = None,
    *,
    targets: Sequence[DeployTarget],
    store_target: DeployTarget | None = None,
    endpoint_url: str | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
    **layer: Any,
) -> tuple[str, str, bool]:
    """Build ``spec`` into the store of ``targets`` unless it is there: ``(s3uri, CodeSha256, built)``.

    The first half of the split "``alab layer push`` in one CI job, ``alab layer deploy --from-store`` in
    another" (give both the same targets, or the same ``store_target``: by default the store is
    :func:`store_target_of` them); it never publishes (the core's ``store_artifact``), so of ``options``
    only the index login is used. The keyword form (``layer``, no ``spec``) is :func:`layer_spec_of`'s.
    ``verbose``/``printer``: the public API's adapter (``progress.forward_logs``).
    """
    from . import workflow

    spec, options = layer_spec_of(spec, options, layer)
    target = store_target or store_target_of(targets)
    s3dir = resolve_s3dir(target, endpoint_url)
    login = type(options)(credentials=options.credentials)  # retention and grants are a deploy's, unchecked here
    s3_client, _ = target_clients(target, endpoint_url)
    with ArtifactStore(s3_client=s3_client, s3dir=s3dir) as store:
        with forward_logs(verbose, printer):
            artifact = workflow.store_artifact(dataclasses.replace(spec, s3dir_lambda=s3dir), login, store=store)
        return str(artifact.s3path_zip.uri), artifact.code_sha256, store.builds > 0


# ---------------------------------------------------------------------------- one resource of a front end
def placement_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(input, reason)`` for a Terraform or Pulumi resource's ``region``, ``role_arn`` and ``artifact_store``
    (spec ``Placement``), by the rules of :class:`DeployTarget`."""
    problems = []
    region = values.get("region")
    if isinstance(region, str) and not _REGION.fullmatch(region):
        problems.append(("region", f"region {region!r} is not an AWS region name like 'eu-west-1'"))
    role_arn = values.get("role_arn")
    if isinstance(role_arn, str) and not _ROLE_ARN.fullmatch(role_arn):
        problems.append(("role_arn", _not_a_role(role_arn)))
    store = values.get("artifact_store")
    if isinstance(store, str):
        try:
            coerce_s3dir(store)
        except LayerError as e:
            problems.append(("artifact_store", str(e).replace("s3dir_lambda", "artifact_store", 1)))
    return problems


def resource_clients(
    region: str | None, role_arn: str | None, *, endpoint_url: str | None
) -> tuple[S3Client, LambdaClient]:
    """S3 and Lambda clients of a Terraform or Pulumi resource: in its ``region`` (``None``: boto3's), as its
    ``role_arn`` when it names one (:func:`target_clients`: assumed credentials in memory only, refreshed)."""
    if role_arn is None:
        return make_clients(region=region, endpoint_url=endpoint_url)
    where = region or default_session().region_name
    if not where:
        raise LayerInputError(
            [("region", f"{role_arn} is assumed in a region: set the resource's region or the provider's")]
        )
    return target_clients(DeployTarget(region=where, s3dir_lambda="", role_arn=role_arn), endpoint_url)


def check_resource_bucket(region: str | None, s3dir_lambda: str, s3_client: S3Client) -> None:
    """A resource given its own ``region``: its ``s3dir_lambda`` bucket must be there (before any build)."""
    if region:
        check_bucket_region(DeployTarget(region=region, s3dir_lambda=s3dir_lambda), s3dir_lambda, s3_client)


@contextlib.contextmanager
def resource_artifact_store(
    s3dir: str | None, *, region: str | None, endpoint_url: str | None
) -> Iterator[ArtifactStore | None]:
    """The store a Terraform or Pulumi resource's deploy shares (``None``: none, the deploy builds).

    It is read and written with a client in the store bucket's own region (asked with one in
    ``region``), so layer resources in several regions share one store and one build; always with the
    caller's own credentials, never a resource's ``role_arn`` (as the CLI's store, :func:`store_target_of`),
    so resources in several accounts share it too. A role that may not read the store gets the checked
    local copy uploaded instead of a server-side copy (``ArtifactStore.stage``).
    """
    if s3dir is None:
        yield None
        return
    probe, _ = make_clients(region=region, endpoint_url=endpoint_url)
    home = bucket_region(probe, coerce_s3dir(s3dir).bucket) or region
    s3_client, _ = make_clients(region=home, endpoint_url=endpoint_url)
    with ArtifactStore(s3_client=s3_client, s3dir=s3dir) as store:
        yield store
