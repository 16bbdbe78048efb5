"""The command line of the artifact store and of many regions/accounts (``layer/store.py``, ``layer/targets.py``).

``alab layer deploy`` takes ``--region`` once per region and ``--role-arn`` once per account (the
targets are their product; ``--role-arn ''`` is the caller's own account), or a ``targets`` list in
``[tool.aws_lambda_artifact_builder]``; ``{region}`` and ``{account}`` in the s3dir are filled in
per target. ``--from-store`` never builds. ``alab layer push`` builds into the store only.
``alab layer plan`` plans each of the same targets. ``alab layer list``, ``sbom`` and ``diff`` read
one target (:func:`read_place`): ``--region`` and ``--role-arn`` at most once each, by default the first
item of the ``targets`` list, else the caller's region. ``--artifact-store S3DIR`` (or the
``artifact_store`` key) names the store, so stacks with different targets share one build.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import LayerError, LayerInputError
from .layer.clients import default_session, make_clients
from .layer.foundation import Credentials, coerce_s3dir
from .layer.publish import LayerDeployment
from .layer.spec import DeployOptions, LayerSpec, make_spec
from .layer.targets import (
    DeployTarget,
    MultiDeployment,
    bucket_region,
    deploy_layer_to_targets,
    expand_targets,
    push_layer_artifact,
    resolve_s3dir,
    target_clients,
)

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

    from .layer.workflow import LayerPlan


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="REGION",
        help="AWS region to publish in (repeatable: one copy per region; default: the targets list, else boto3's)",
    )
    p.add_argument(
        "--role-arn",
        dest="role_arn",
        action="append",
        default=[],
        metavar="ARN",
        help="IAM role to assume for another account (repeatable: every region in every account; '' = your own)",
    )
    p.add_argument(
        "--from-store",
        dest="from_store",
        action="store_true",
        help="never build: publish the artifact `alab layer push` stored, and fail if it is missing",
    )


def _targets(args: argparse.Namespace, settings: dict[str, Any]) -> list[DeployTarget]:
    from .cli import CONFIG_TABLE, CliError

    s3dir = str(settings["s3dir_lambda"])
    regions = [r for r in args.region if r]
    configured = settings.get("targets")
    if not regions and configured:
        if args.role_arn:
            raise CliError("--role-arn combines with --region; the targets list names each target's role_arn")
        return _configured_targets(settings)
    if not regions:
        region = settings.get("region") if isinstance(settings.get("region"), str) else None
        region = region or default_session().region_name
        if not region:
            raise CliError(
                f"no AWS region set: set AWS_REGION or AWS_DEFAULT_REGION, pass --region, or set region in [tool.{CONFIG_TABLE}]"
            )
        regions = [region]
    return expand_targets(regions, args.role_arn, s3dir)


def _configured_targets(settings: dict[str, Any]) -> list[DeployTarget]:
    from .cli import CONFIG_TABLE, CliError

    configured = settings.get("targets") or []
    if not all(isinstance(item, dict) for item in configured):
        raise CliError(f"targets in [tool.{CONFIG_TABLE}] must be a list of tables (region, role_arn, s3dir)")
    s3dir = settings.get("s3dir_lambda")
    return [DeployTarget.from_mapping(item, default_s3dir=s3dir) for item in configured]


@dataclasses.dataclass(frozen=True)
class ReadPlace:
    """The one target ``alab layer list``, ``sbom`` and ``diff`` read: its filled-in s3dir and clients."""

    #: The target's label where there is a choice of targets (``""``: the one place of a plain setup).
    label: str
    s3dir_lambda: str
    s3_client: S3Client
    lambda_client: LambdaClient


def read_target(args: argparse.Namespace, settings: dict[str, Any]) -> DeployTarget | None:
    """The target a reading command names: the ``targets`` item matching ``--region``/``--role-arn`` (the
    first one when neither is given), else the top-level s3dir in that region and account. ``None``: no
    region anywhere and nothing to fill in (boto3's defaults apply, as before targets existed)."""
    from .cli import CONFIG_TABLE, CliError

    if args.from_store:
        raise CliError("--from-store works with `alab layer deploy` only")
    regions, roles = [r for r in args.region if r], list(args.role_arn)
    if len(regions) > 1 or len(roles) > 1:
        raise CliError("list, sbom and diff read one target: give --region and --role-arn at most once each")
    role = (roles[0] or None) if roles else None
    for target in _configured_targets(settings):
        if (not regions or target.region == regions[0]) and (not roles or target.role_arn == role):
            return target
    s3dir = settings.get("s3dir_lambda")
    if not s3dir:
        raise CliError(f"s3dir_lambda is required: pass --s3dir or set s3dir_lambda in [tool.{CONFIG_TABLE}]")
    region = regions[0] if regions else settings.get("region") if isinstance(settings.get("region"), str) else None
    region = region or default_session().region_name
    if region:
        return DeployTarget(region=region, s3dir_lambda=str(s3dir), role_arn=role)
    if role or "{region}" in str(s3dir):
        raise CliError(f"no AWS region: pass --region, set region in [tool.{CONFIG_TABLE}] or AWS_REGION")
    return None


def read_place(args: argparse.Namespace, settings: dict[str, Any]) -> ReadPlace:
    """:func:`read_target`'s s3dir (``{region}``/``{account}`` filled in) and clients (as its role)."""
    target = read_target(args, settings)
    if target is None:
        s3_client, lambda_client = make_clients(region=None, endpoint_url=args.endpoint_url)
        s3dir = str(coerce_s3dir(str(settings["s3dir_lambda"])).uri)
        return ReadPlace("", s3dir, s3_client, lambda_client)
    s3_client, lambda_client = target_clients(target, args.endpoint_url)
    label = target.label if target.role_arn or settings.get("targets") else ""  # named where there is a choice
    return ReadPlace(label, resolve_s3dir(target, args.endpoint_url), s3_client, lambda_client)


def plan_targets(args: argparse.Namespace, settings: dict[str, Any]) -> list[tuple[str, LayerPlan]] | None:
    """``(target label, plan)`` of every target when the command names several (``--region`` more than once,
    ``--role-arn``, or a ``targets`` list, as deploy takes them); ``None`` for one place, planned as before."""
    from .cli import CliError, layer_spec
    from .layer import workflow

    if args.from_store:
        raise CliError("--from-store works with `alab layer deploy` only: a plan never builds")
    regions = [r for r in args.region if r]
    if len(regions) < 2 and not args.role_arn and (regions or not settings.get("targets")):
        return None
    spec = layer_spec(settings, args)
    plans = []
    for target in _targets(args, settings):
        s3_client, lambda_client = target_clients(target, args.endpoint_url)
        here = dataclasses.replace(spec, s3dir_lambda=resolve_s3dir(target, args.endpoint_url))
        plans.append((target.label, workflow.plan(here, s3_client=s3_client, lambda_client=lambda_client)))
    return plans


def _spec_and_options(
    args: argparse.Namespace, settings: dict[str, Any], credentials: Credentials | None
) -> tuple[LayerSpec, DeployOptions]:
    """The spec and options the settings describe (of the spec classes the command line was generated
    from), with the index login the CLI builds from its own settings."""
    from .cli import spec_classes

    spec, options = make_spec(settings, spec_classes(args))
    return spec, dataclasses.replace(options, credentials=credentials)


def store_target(
    settings: dict[str, Any], targets: list[DeployTarget], endpoint_url: str | None
) -> DeployTarget | None:
    """The store ``--artifact-store`` (or the ``artifact_store`` key) names, as a target of the caller's own
    account in its bucket's region; ``None``: the default, :func:`~.layer.targets.store_target_of` the targets.
    Stacks or jobs with different targets that name one store share its builds."""
    named = settings.get("artifact_store")
    if not named:
        return None
    try:
        s3dir = str(coerce_s3dir(str(named)).uri)
    except LayerError as e:
        raise LayerInputError([("artifact_store", str(e).replace("s3dir_lambda", "artifact_store", 1))]) from None
    probe, _ = make_clients(region=targets[0].region, endpoint_url=endpoint_url)
    region = bucket_region(probe, coerce_s3dir(s3dir).bucket) or targets[0].region
    return DeployTarget(region=region, s3dir_lambda=s3dir)


def deploy_to_targets(
    args: argparse.Namespace, settings: dict[str, Any], credentials: Credentials | None, out: Any, err: Any
) -> LayerDeployment | None:
    """Deploy to every target; one target's deployment is returned for the usual rendering, else printed here."""
    targets = _targets(args, settings)
    spec, options = _spec_and_options(args, settings, credentials)
    result = deploy_layer_to_targets(
        spec,
        options,
        targets=targets,
        from_store=args.from_store,
        store_target=store_target(settings, targets, args.endpoint_url),
        endpoint_url=args.endpoint_url,
    )
    if len(result.outcomes) == 1:
        result.raise_for_failures()
        return result.outcomes[0].deployment
    _render(result, args.json, out)
    args._targets_failed = result.exit_code  # the failed targets' error class (all AWS failures: 6), else 1
    if result.failed:
        try:
            result.raise_for_failures()
        except LayerError as e:
            print(f"error: {e}", file=err)
    return None


def _render(result: MultiDeployment, as_json: bool, out: Any) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2), file=out)
        return
    for outcome in result.outcomes:
        d = outcome.deployment
        if d is None:
            print(f"Failed: {outcome.target.label}: {outcome.error}", file=out)
            continue
        action = "Published" if d.published else "Adopted" if d.adopted else "Unchanged"
        print(f"{action}: {outcome.target.label} {d.layer_name} version {d.layer_version} ({d.code_sha256})", file=out)
        print(f"  {d.layer_version_arn}", file=out)
    print(f"Builds in this run: {result.builds}", file=out)


def cmd_layer_push(args: argparse.Namespace, out: Any, err: Any) -> int:
    """Build the layer into the artifact store unless it is there; never publishes."""
    from .cli import CliError, _credentials, resolve_settings

    if args.from_store:
        raise CliError("alab layer push builds what the store lacks: --from-store does not apply")
    settings = resolve_settings(args)
    credentials = _credentials(settings)
    args._secret = credentials.password if credentials else None
    targets = _targets(args, settings)
    spec, options = _spec_and_options(args, settings, credentials)
    uri, code_sha256, built = push_layer_artifact(
        spec,
        options,
        targets=targets,
        store_target=store_target(settings, targets, args.endpoint_url),
        endpoint_url=args.endpoint_url,
    )
    if args.json:
        print(json.dumps({"s3uri": uri, "code_sha256": code_sha256, "built": built}, indent=2), file=out)
    else:
        print(f"{'Stored' if built else 'Already stored'}: {uri}", file=out)
        print(f"  CodeSha256  {code_sha256}", file=out)
    return 0


def add_push_command(layer_commands: Any, add_layer_options: Callable[..., None]) -> None:
    """``alab layer push``: what ``alab layer build --push`` does (the build half of build/deploy split)."""
    push = layer_commands.add_parser(
        "push",
        help="build the layer into the artifact store unless it is there",
        description="Build and package the layer into the targets' artifact store (layer/artifacts/ of each "
        "s3dir) unless that fingerprint is stored already, for a later `alab layer deploy --from-store`.",
    )
    add_layer_options(push, groups=("layer", "build", "index", "aws"))
    push.set_defaults(handler=cmd_layer_push)
