"""The command line of the artifact store and of many regions/accounts (``layer/store.py``, ``layer/targets.py``).

``alab layer deploy`` takes ``--region`` once per region and ``--role-arn`` once per account (the
targets are their product; ``--role-arn ''`` is the caller's own account), or a ``targets`` list in
``[tool.aws_lambda_artifact_builder]``; ``{region}`` and ``{account}`` in the s3dir are filled in
per target. ``--from-store`` never builds. ``alab layer push`` builds into the store only.
``alab layer plan`` plans each of the same targets.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import LayerError
from .layer.clients import default_session
from .layer.foundation import Credentials
from .layer.publish import LayerDeployment
from .layer.targets import (
    DeployTarget,
    MultiDeployment,
    deploy_layer_to_targets,
    expand_targets,
    push_layer_artifact,
    resolve_s3dir,
    target_clients,
)

if TYPE_CHECKING:  # pragma: no cover
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
        if not all(isinstance(item, dict) for item in configured):
            raise CliError(f"targets in [tool.{CONFIG_TABLE}] must be a list of tables (region, role_arn, s3dir)")
        return [DeployTarget.from_mapping(item, default_s3dir=s3dir) for item in configured]
    if not regions:
        region = settings.get("region") if isinstance(settings.get("region"), str) else None
        region = region or default_session().region_name
        if not region:
            raise CliError(
                f"no AWS region set: set AWS_REGION or AWS_DEFAULT_REGION, pass --region, or set region in [tool.{CONFIG_TABLE}]"
            )
        regions = [region]
    return expand_targets(regions, args.role_arn, s3dir)


def plan_targets(args: argparse.Namespace, settings: dict[str, Any]) -> list[tuple[str, LayerPlan]] | None:
    """``(target label, plan)`` of every target when the command names several (``--region`` more than once,
    ``--role-arn``, or a ``targets`` list, as deploy takes them); ``None`` for one place, planned as before."""
    from .cli import CliError, _common
    from .layer.workflow import plan_layer

    if args.from_store:
        raise CliError("--from-store works with `alab layer deploy` only: a plan never builds")
    regions = [r for r in args.region if r]
    if len(regions) < 2 and not args.role_arn and (regions or not settings.get("targets")):
        return None
    options = _common(settings)
    options.pop("s3dir_lambda")
    plans = []
    for target in _targets(args, settings):
        s3_client, lambda_client = target_clients(target, args.endpoint_url)
        s3dir = resolve_s3dir(target, args.endpoint_url)
        plans.append(
            (target.label, plan_layer(**options, s3dir_lambda=s3dir, s3_client=s3_client, lambda_client=lambda_client))
        )
    return plans


def _layer_options(settings: dict[str, Any]) -> dict[str, Any]:
    from .cli import _common

    options = _common(settings, deploy=True)
    options.pop("s3dir_lambda")
    return options


def deploy_to_targets(
    args: argparse.Namespace, settings: dict[str, Any], credentials: Credentials | None, out: Any, err: Any
) -> LayerDeployment | None:
    """Deploy to every target; one target's deployment is returned for the usual rendering, else printed here."""
    targets = _targets(args, settings)
    result = deploy_layer_to_targets(
        targets=targets,
        from_store=args.from_store,
        endpoint_url=args.endpoint_url,
        credentials=credentials,
        **_layer_options(settings),
    )
    if len(result.outcomes) == 1:
        result.raise_for_failures()
        return result.outcomes[0].deployment
    _render(result, args.json, out)
    args._targets_failed = bool(result.failed)
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
    options = _layer_options(settings)
    for key in ("keep_last", "permissions"):
        options.pop(key, None)
    uri, code_sha256, built = push_layer_artifact(
        targets=targets,
        endpoint_url=args.endpoint_url,
        credentials=credentials,
        **options,
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
