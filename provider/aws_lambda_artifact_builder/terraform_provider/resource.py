"""The ``alab_layer`` resource: Terraform's lifecycle mapped onto the core plan/deploy API.

Nothing here decides whether a layer version is needed: the schema is generated from the spec
(``layer/spec.py``), each call builds a ``LayerSpec``/``DeployOptions`` from the resource's values and
``plan`` asks the core's ``plan`` (the fingerprint of the local lock file against the record in S3, no
build), ``create``/``update`` call the core's ``deploy``,
``read`` calls ``read_layer_record`` and ``delete`` calls ``delete_layer_versions``. This module only
translates between Terraform values and those calls.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from typing import TYPE_CHECKING, Any

from msgpack import ExtType
from tf import schema, types
from tf.iface import (
    CreateContext,
    DeleteContext,
    PlanContext,
    ReadContext,
    Resource,
    State,
    UpdateContext,
    UpgradeContext,
)
from tf.types import Unknown
from tf.utils import Diagnostics

from .. import api
from ..errors import LayerInputError, redact, user_error
from ..layer.inputs import check_spec
from ..layer.spec import SPEC_CLASSES, DeployOptions, LayerSpec, SpecField, make_spec, replacing_inputs, spec_fields
from ..layer.targets import check_resource_bucket, placement_problems, resource_artifact_store
from ..progress import forward_logs, forward_stages, secrets
from .servicer import WriteOnlyAttribute

if TYPE_CHECKING:  # pragma: no cover
    from .provider import AlabProvider

#: Computed attributes that describe one published layer version; unknown in a plan that publishes.
VERSION_ATTRIBUTES = (
    "layer_version",
    "layer_version_arn",
    "code_sha256",
    "code_size",
    "s3uri_manifest",
    "published_versions",
)

COMPUTED_ATTRIBUTES = (*VERSION_ATTRIBUTES, "layer_arn", "fingerprint", "publish_reason", "package_changes")

#: Inputs that name a different layer or layer record: changing one means another Terraform object.
REPLACING_INPUTS: tuple[str, ...] = replacing_inputs()

CREDENTIAL_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(api.Credentials))


def is_unknown(value: Any) -> bool:
    """Unknown until apply, anywhere inside ``value``.

    Terraform >= 1.6 sends "refined" unknowns (msgpack extension 12, e.g. a string whose prefix is
    known), which tf 1.2 passes on as a raw ``ExtType`` rather than its ``Unknown``; Terraform uses
    msgpack extensions for nothing else, and takes them back unchanged in the planned state.
    """
    if value is Unknown or isinstance(value, ExtType):
        return True
    if isinstance(value, list):
        return any(is_unknown(item) for item in value)
    if isinstance(value, dict):
        return any(is_unknown(item) for item in value.values())
    return False


_TF_TYPES: dict[type, types.TfType] = {
    str: types.String(),
    int: types.Number(),
    bool: types.Bool(),
    list: types.List(types.String()),
    dict: types.Map(types.String()),
}


def _input(field: SpecField) -> schema.Attribute:
    """The Terraform attribute of one spec option (``layer/spec.py``); a secret one is write-only:
    Terraform passes it to apply and never stores it in a plan or in state."""
    opt = field.option
    attribute = WriteOnlyAttribute if opt.secret else schema.Attribute
    return attribute(
        field.name,
        _TF_TYPES[opt.kind],
        description=opt.help,
        required=opt.required,
        optional=not opt.required,
        requires_replace=opt.replaces,
        sensitive=opt.secret,
    )


def _output(name: str, type_: types.TfType, description: str) -> schema.Attribute:
    return schema.Attribute(name, type_, description=description, computed=True)


#: 2 added ``region`` and ``artifact_store`` (spec ``Placement``), 3 ``role_arn``: :meth:`LayerResource.upgrade`
#: fills them in. An added attribute needs the bump: the framework hands a same-version state to Terraform
#: unchanged, and Terraform refuses an object that lacks an attribute of the schema.
SCHEMA_VERSION = 3


def layer_schema(classes: tuple[type, ...] = SPEC_CLASSES) -> schema.Schema:
    """The ``alab_layer`` schema: one input per spec option, then the resource's own inputs and outputs."""
    return schema.Schema(
        version=SCHEMA_VERSION,
        description="A Lambda layer built from a locked Python project; a new version is published only when "
        "the fingerprint of the lock file differs from the one recorded in S3.",
        attributes=[
            *(_input(f) for f in spec_fields(classes) if f.option.resource),
            _output("layer_version", types.Number(), "The layer version in use."),
            _output("layer_version_arn", types.String(), "ARN of that version, for aws_lambda_function.layers."),
            _output("layer_arn", types.String(), "ARN of the layer (without version)."),
            _output("fingerprint", types.String(), "Fingerprint of the manifest the version was built from."),
            _output("code_sha256", types.String(), "CodeSha256 of the version's zip, as Lambda reports it."),
            _output("code_size", types.Number(), "Size of the version's zip in bytes."),
            _output("s3uri_manifest", types.String(), "S3 URI of the manifest recorded for that version."),
            _output("publish_reason", types.String(), "Why the version in use was published or adopted."),
            _output("package_changes", types.List(types.String()), "Packages added, removed or changed by it."),
            _output("published_versions", types.List(types.Number()), "Versions this resource published."),
        ],
    )


LAYER_SCHEMA = layer_schema()
_schemas = functools.lru_cache(maxsize=None)(layer_schema)


def spec_values(state: State, classes: tuple[type, ...] = SPEC_CLASSES) -> dict[str, Any] | None:
    """The spec options of a configuration, plan or state, secrets aside (write-only: never in a plan or
    state); None while any is still unknown (it depends on another resource). Numbers come back from
    msgpack as they were written (``1.0`` is ``1``)."""
    values: dict[str, Any] = {}
    for field in spec_fields(classes):
        if not field.option.resource or field.option.secret:
            continue
        value = state.get(field.name)
        if is_unknown(value):
            return None
        if field.option.kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        values[field.name] = value
    return values


def _credentials(value: dict[str, str] | None) -> api.Credentials | None:
    if not value:
        return None
    return api.Credentials(**{key: value.get(key, "") for key in CREDENTIAL_KEYS})


def _scrub(message: str, credentials: api.Credentials | None) -> str:
    """Error text as Terraform may show and log it: no login in URLs, never the password itself (``errors.redact``,
    as every sink; the lines on stderr pass it in ``progress``: records and stage lines alike)."""
    return redact(message, [credentials.password] if credentials is not None else [])


_stderr_lock = threading.Lock()


def _stderr_printer(message: str) -> None:
    """Progress goes to stderr, which Terraform keeps in its log; stdout carries the plugin handshake.
    One write per line under a lock: resources applied at once would interleave their lines."""
    with _stderr_lock:
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()


def _publish_reason(plan: api.LayerPlan) -> str:
    """The plan's reason in words still true once applied (the state keeps it): a first version is
    not "nothing recorded yet" after the apply that recorded it."""
    first = f"no earlier version is recorded at {plan.s3uri_record}; "
    if plan.record is None and plan.reason.startswith(first):
        what = plan.reason[len(first) :]
        adopted = what.removeprefix("a deploy adopts ")
        if adopted != what:
            return f"adopted {adopted}, as the first version recorded at {plan.s3uri_record}"
        return f"the first version recorded at {plan.s3uri_record} (none was recorded before)"
    return plan.reason


class LayerResource(Resource):
    """``alab_layer``: one Lambda layer whose versions follow the lock file's fingerprint."""

    #: The spec the schema is generated from and the core is given (``layer/spec.py``); a test extends it.
    spec_classes: tuple[type, ...] = SPEC_CLASSES

    def __init__(self, provider: AlabProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return "layer"

    @classmethod
    def get_schema(cls) -> schema.Schema:
        return LAYER_SCHEMA if cls.spec_classes is SPEC_CLASSES else _schemas(cls.spec_classes)

    def _spec(self, values: dict[str, Any], credentials: api.Credentials | None) -> tuple[LayerSpec, DeployOptions]:
        """What the core takes: the spec of the configuration's values, with the write-only login."""
        return make_spec({**values, "credentials": credentials}, self.spec_classes)

    def validate(self, diags: Diagnostics, type_name: str, config: dict[str, Any]) -> None:
        """The core's check of the spec (``inputs.check_spec``) plus the placement and the login's form."""
        super().validate(diags, type_name, config)
        values = spec_values(config, self.spec_classes)
        if values is None or diags.has_errors():
            return
        problems = placement_problems(values) + check_spec(*self._spec(values, None))[0]
        for name, message in problems:
            diags.add_error(f"Invalid {name}", message, path=[name])
        credentials = config.get("credentials")
        if isinstance(credentials, dict):
            missing = [key for key in CREDENTIAL_KEYS if credentials.get(key) in (None, "")]
            extra = sorted(set(credentials) - set(CREDENTIAL_KEYS))
            if missing or extra:
                diags.add_error(
                    "Invalid credentials",
                    f"credentials needs exactly {', '.join(CREDENTIAL_KEYS)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(extra)}" if extra else ""),
                    path=["credentials"],
                )

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State:
        """Compare the local fingerprint with the S3 record; when they differ, say why and leave the
        version attributes unknown until apply."""
        values = spec_values(planned, self.spec_classes)
        if values is None:  # an input comes from a resource not applied yet: everything is decided at apply
            return {**planned, **dict.fromkeys(COMPUTED_ATTRIBUTES, Unknown)}
        try:
            layer_plan = api.plan(
                self._spec(values, None)[0], **self.provider.clients(values["region"], values["role_arn"])
            )
        except Exception as exc:  # noqa: BLE001  (every failure becomes a diagnostic on the plan, not a crash)
            ctx.diagnostics.add_error(f"Cannot plan layer {values['layer_name']}", _scrub(str(user_error(exc)), None))
            return planned
        if current is not None and not layer_plan.changed and current.get("fingerprint") == layer_plan.fingerprint:
            return planned  # Terraform already carried every computed value over from the refreshed state
        result = {**planned, **dict.fromkeys(VERSION_ATTRIBUTES, Unknown)}
        result["fingerprint"] = layer_plan.fingerprint
        if current is None:
            result["layer_arn"] = Unknown
        if layer_plan.changed:
            result["publish_reason"] = _publish_reason(layer_plan)
            result["package_changes"] = layer_plan.package_changes.lines()
        else:
            result["publish_reason"] = (
                f"adopted version {layer_plan.current_version}, already published with fingerprint "
                f"{layer_plan.fingerprint}"
            )
            result["package_changes"] = []
        return result

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        return self._deploy(ctx.diagnostics, planned, prior=None)

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return self._deploy(ctx.diagnostics, planned, prior=current)

    def _deploy(self, diags: Diagnostics, planned: State, *, prior: State | None) -> State | None:
        values = spec_values(planned, self.spec_classes)
        assert values is not None, "Terraform applies only known values"
        credentials = _credentials(planned.get("credentials"))
        warnings: list[str] = []  # what the user should know although the apply went on
        try:
            clients = self.provider.clients(values["region"], values["role_arn"])
            check_resource_bucket(values["region"], values["s3dir_lambda"], clients["s3_client"])
            with (
                secrets(credentials.password if credentials is not None else None),
                forward_logs(True, _stderr_printer),
                forward_stages(_stderr_printer, prefix=f"[{values['layer_name']}] ", warnings=warnings.append),
                resource_artifact_store(
                    values["artifact_store"],
                    region=values["region"] or self.provider.region,
                    endpoint_url=self.provider.endpoint_url,
                ) as store,
            ):
                deployment = api.deploy(*self._spec(values, credentials), artifact_store=store, **clients)
        except LayerInputError as exc:  # one diagnostic per wrong input, on its attribute
            for name, reason in exc.problems:
                diags.add_error(f"Invalid {name}", _scrub(reason, credentials), path=[name])
            return prior
        except Exception as exc:  # noqa: BLE001  (a failed build or publish is reported to Terraform, with secrets removed)
            diags.add_error(f"Cannot deploy layer {values['layer_name']}", _scrub(str(user_error(exc)), credentials))
            return prior
        finally:  # Terraform prints warnings after the apply; stderr reaches only its log (TF_LOG)
            for line in dict.fromkeys(warnings):
                diags.add_warning(f"Layer {values['layer_name']}", _scrub(line, credentials))
        published = list((prior or {}).get("published_versions") or [])
        if deployment.published and deployment.layer_version not in published:
            published.append(deployment.layer_version)
        return {**planned, **deployment.facts.to_dict(), "published_versions": published}

    def read(self, ctx: ReadContext, current: State) -> State | None:
        """Refresh from the S3 record and Lambda; a record or version that is gone removes the object,
        so Terraform reports it as deleted outside of Terraform and plans to publish again."""
        values = spec_values(current, self.spec_classes)
        assert values is not None, "state holds only known values"
        layer_name = values["layer_name"]
        try:
            record = api.read_layer_record(
                s3dir_lambda=values["s3dir_lambda"],
                tool=values["tool"],
                manifest=False,
                **self.provider.clients(values["region"], values["role_arn"]),
            )
        except Exception as exc:  # noqa: BLE001  (every failure becomes a diagnostic)
            ctx.diagnostics.add_error(
                f"Cannot read the record of layer {layer_name}", _scrub(str(user_error(exc)), None)
            )
            return current
        if record is None or not record.version_exists:
            return None
        if record.layer_name != layer_name:
            return current  # another layer's record: plan reports it as an error on s3dir_lambda
        return {**current, **record.facts.to_dict()}

    def delete(self, ctx: DeleteContext, current: State) -> State | None:
        """Published versions are immutable and other stacks may use them: keep them unless asked."""
        if not current.get("delete_on_destroy"):
            return None
        layer_name = current["layer_name"]
        versions = [int(v) for v in current.get("published_versions") or []]
        try:
            api.delete_layer_versions(
                layer_name=layer_name,
                versions=versions,
                lambda_client=self.provider.clients(current.get("region"), current.get("role_arn"))["lambda_client"],
            )
        except Exception as exc:  # noqa: BLE001  (every failure becomes a diagnostic)
            ctx.diagnostics.add_error(
                f"Cannot delete versions of layer {layer_name}", _scrub(str(user_error(exc)), None)
            )
            return current  # still in state, so a later destroy can retry
        return None

    def upgrade(self, ctx: UpgradeContext, version: int, old: State) -> State:
        """A state of an older schema lacks the attributes added since (Terraform refuses an object
        without them): they start unset, which is what the older provider did."""
        return {a.name: old.get(a.name) for a in self.get_schema().attributes}
