"""Pulumi dynamic provider: a Lambda layer whose preview is decided by the fingerprint recorded in S3.

A thin adapter over the core workflow (``layer/workflow.py``): the resource's arguments are generated
from the spec (``layer/spec.py``), each method builds a ``LayerSpec``/``DeployOptions`` from the
properties; ``check`` is the core's ``check_spec``, ``diff`` is the core's ``plan`` (one S3 request,
never a build), ``create``/``update`` are its ``deploy`` (which adopts a version already published
with the same fingerprint) and
``read``/``delete`` use the S3 record. The S3 record, not the Pulumi state, is the source of truth,
so stacks and machines that share a bucket agree on what is published. The program reads the lock
when the resource is declared: ``fingerprint`` and ``packages`` (the runtime pins) are inputs, so the
engine's own diff (`pulumi preview --diff`) shows which packages a change moves.

The provider object is dill-pickled into every resource's state: it holds no client, session or
secret. Clients are made inside each method from the environment (``AWS_REGION``,
``AWS_ENDPOINT_URL``, profiles) or from stack configuration read in :meth:`configure`
(``alab:region`` or ``aws:region``, ``alab:endpointUrl``); a resource's own ``region`` input
overrides the region, its ``role_arn`` publishes in another account (STS ``AssumeRole`` inside each
method; the assumed credentials are never stored), and its ``artifact_store`` (read and written with
the stack's own credentials) lets resources in several regions and accounts share one build.
Index credentials travel only as a Pulumi secret input and are never returned as an output.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.output import Unknown

from .errors import LayerError, user_error
from .layer.foundation import Credentials
from .layer.inputs import check_spec, local_fingerprint
from .layer.manifest import read_local_manifest
from .layer.publish import LayerDeployment, delete_layer_versions, get_layer_version
from .layer.spec import (
    SPEC_CLASSES,
    DeployOptions,
    LayerSpec,
    SpecField,
    make_spec,
    packaging_options_from,
    replacing_inputs,
    spec_fields,
)
from .layer.target import LayerTarget
from .layer.targets import check_resource_bucket, placement_problems, resource_artifact_store, resource_clients
from .layer.workflow import deploy, plan, read_layer_record
from .progress import details_requested, forward_logs, forward_stages, redact_line, secrets
from .typehint import T_PRINTER

#: Changing one of these points the resource at another layer or record: a replacement (the provider
#: reads them from its ``spec_classes``; these are the real spec's).
REPLACE_ON: tuple[str, ...] = replacing_inputs()


def settings_inputs(classes: tuple[type, ...] = SPEC_CLASSES) -> tuple[str, ...]:
    """Inputs that change what an update does without changing the layer's bytes: the deploy options
    (secrets aside: the outputs Diff compares with never hold them)."""
    options = tuple(c for c in classes if issubclass(c, DeployOptions))
    return tuple(f.name for f in spec_fields(options) if f.option.resource and not f.option.secret)


def secret_inputs(classes: tuple[type, ...] = SPEC_CLASSES) -> tuple[str, ...]:
    """Inputs that are never copied to the outputs (the state keeps them only as encrypted inputs)."""
    return tuple(f.name for f in spec_fields(classes) if f.option.secret)


SETTINGS_INPUTS: tuple[str, ...] = settings_inputs()
SECRET_INPUTS: tuple[str, ...] = secret_inputs()
PROVIDER_KEY = "__provider"
_CREDENTIAL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Credentials))


_log_lock = threading.Lock()


def _log(msg: str) -> None:
    """Provider progress goes to stderr, which the engine shows as diagnostics (stdout carries the port);
    one write per line under a lock, as resources deployed at once would interleave their lines. Each
    line passes ``errors.redact`` with the running deploy's secrets (``progress.redact_line``)."""
    msg = redact_line(msg)
    with _log_lock:
        sys.stderr.write(f"{msg}\n")
        sys.stderr.flush()


def _prefixed(layer_name: str) -> T_PRINTER:
    """``_log`` with the layer's name in front, as its stage lines have it."""
    return lambda msg: _log(f"[{layer_name}] {msg}")


def _is_unknown(value: Any) -> bool:
    """A value not known before the update (the server deserialises it to ``Unknown``)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_unknown(v) for v in value)
    return False


def _as_int(value: Any) -> int | None:
    """Numbers cross the gRPC boundary as floats; give back the integer the user wrote."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[no-any-return]  # left as is so validation names the bad value


def _credentials_dict(value: Any) -> dict[str, str] | None:
    """The credentials as a plain dict for the secret input, from a :class:`Credentials` or a dict."""
    if value is None:
        return None
    if isinstance(value, Credentials):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: value[k] for k in value}
    raise LayerError(f"credentials must be a Credentials object or a dict, not {type(value).__name__}")


def _credentials_value(raw: Any) -> Credentials | None:
    """The ``credentials`` input (a dict crossing gRPC) as the core takes it; ``None`` when it is not a
    complete login (Check names what is missing)."""
    if isinstance(raw, Credentials):
        return raw
    if isinstance(raw, dict) and all(isinstance(raw.get(k), str) for k in _CREDENTIAL_FIELDS):
        return Credentials(**{k: raw[k] for k in _CREDENTIAL_FIELDS})
    return None


@dataclasses.dataclass(frozen=True)
class LayerProps:
    """The resource's properties (inputs, or outputs that repeat them): every resource option of the spec
    (``layer/spec.py``) as given, and the fingerprint the program read; :meth:`spec` is what the core takes."""

    values: dict[str, Any]
    fingerprint: str | None = None
    classes: tuple[type, ...] = SPEC_CLASSES

    @classmethod
    def from_props(cls, props: Mapping[str, Any], classes: tuple[type, ...] = SPEC_CLASSES) -> LayerProps:
        values = {f.name: props.get(f.name) for f in spec_fields(classes) if f.option.resource}
        values["credentials"] = _credentials_value(props.get("credentials"))
        return cls(values=values, fingerprint=props.get("fingerprint"), classes=classes)

    def spec(self) -> tuple[LayerSpec, DeployOptions]:
        """The :class:`LayerSpec` and :class:`DeployOptions` of these properties."""
        return make_spec(self.values, self.classes)

    @property
    def layer_name(self) -> str:
        return str(self.values.get("layer_name"))

    @property
    def s3dir_lambda(self) -> str:
        return str(self.values.get("s3dir_lambda"))

    @property
    def tool(self) -> str:
        return str(self.values.get("tool"))

    @property
    def delete_on_destroy(self) -> bool:
        return bool(self.values.get("delete_on_destroy"))

    @property
    def region(self) -> str | None:
        """The resource's own region (spec ``Placement``); ``None``: the stack's."""
        return self.values.get("region") or None

    @property
    def role_arn(self) -> str | None:
        """The role of the account the resource publishes in (spec ``Placement``); ``None``: the stack's own."""
        return self.values.get("role_arn") or None

    @property
    def artifact_store(self) -> str | None:
        return self.values.get("artifact_store") or None


def _check_adapter_inputs(props: dict[str, Any]) -> list[tuple[str, str]]:
    """What only the Pulumi resource has: the credentials as a dict (the core checks the rest)."""
    failures = []
    raw = props.get("credentials")
    if raw is not None:
        missing = [k for k in _CREDENTIAL_FIELDS if not isinstance(raw, dict) or not isinstance(raw.get(k), str)]
        if missing:  # the reason names fields only: the values may be secret
            failures.append(("credentials", f"credentials need the string fields: {', '.join(missing)}"))
    return failures


class LambdaLayerProvider(dynamic.ResourceProvider):
    """CRUD of a :class:`LambdaLayer`, delegating every decision to the core workflow."""

    #: The spec the inputs are checked against (``layer/spec.py``).
    spec_classes: tuple[type, ...] = SPEC_CLASSES

    def __init__(self) -> None:
        super().__init__()
        self.region: str | None = None
        self.endpoint_url: str | None = None

    def configure(self, req: dynamic.ConfigureRequest) -> None:
        """Region and endpoint from stack configuration; the environment decides when they are unset."""
        self.region = req.config.get("alab:region") or req.config.get("aws:region")
        self.endpoint_url = req.config.get("alab:endpointUrl")

    def _clients(self, layer: LayerProps) -> dict[str, Any]:
        """Clients in the resource's own ``region`` input (else the stack's), as its ``role_arn`` when it
        names one (assumed here, in memory: never pickled into the state)."""
        s3_client, lambda_client = resource_clients(
            layer.region or self.region, layer.role_arn, endpoint_url=self.endpoint_url
        )
        return {"s3_client": s3_client, "lambda_client": lambda_client}

    # -------------------------------------------------------------- check
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """The core's check of the spec (``inputs.check_spec``) plus the placement and the login's form."""
        failures = _check_adapter_inputs(news)
        validated = [f.name for f in spec_fields(self.spec_classes) if f.option.resource and not f.option.secret]
        known = not any(_is_unknown(news.get(k)) for k in validated)  # unknowns are checked at create/update
        inputs = dict(news)
        if known:
            failures += placement_problems(news)
            problems, resolved = check_spec(*LayerProps.from_props(news, self.spec_classes).spec())
            failures += problems
            if resolved is not None and not failures and inputs.get("fingerprint") is None:
                inputs["fingerprint"] = resolved.fingerprint  # the program could not compute it at declaration
        return dynamic.CheckResult(inputs, [dynamic.CheckFailure(p, r) for p, r in failures])

    # -------------------------------------------------------------- diff
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        replaces = [k for k in replacing_inputs(self.spec_classes) if olds.get(k) != news.get(k)]
        if any(_is_unknown(v) for v in news.values()):
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        if replaces:
            _log(f"replacing layer {olds.get('layer_name')!r}: {', '.join(replaces)} changed")
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        layer = LayerProps.from_props(news, self.spec_classes)
        layer_plan = plan(layer.spec()[0], **self._clients(layer))
        reasons = []
        if layer_plan.changed:
            reasons.append(layer_plan.reason)
        elif layer_plan.current_layer_version_arn != olds.get("layer_version_arn"):
            reasons.append(f"adopt {layer_plan.current_layer_version_arn}, already published with this fingerprint")
        if layer.fingerprint is not None and layer.fingerprint != layer_plan.fingerprint:
            reasons.append("the manifest changed after the program read it")
        settings = settings_inputs(self.spec_classes)
        reasons += [f"{k} changed" for k in settings if _normal(olds.get(k)) != _normal(news.get(k))]
        if reasons:
            _log(f"layer {layer.layer_name!r}: " + "; ".join(reasons))
            for line in layer_plan.package_changes.lines():
                _log(f"  {line}")
        return dynamic.DiffResult(changes=bool(reasons), replaces=[], delete_before_replace=False)

    # -------------------------------------------------------------- create / update
    def _deploy(self, layer: LayerProps) -> LayerDeployment:
        """The core's deploy, every line of it (and of its error) on stderr with the index password masked."""
        with secrets(getattr(layer.values.get("credentials"), "password", None)):
            return self._deploy_forwarded(layer)

    def _deploy_forwarded(self, layer: LayerProps) -> LayerDeployment:
        # deploy serialises builds that share the project's build folder itself.
        # The engine lists every stderr line under the stack: one line per stage and the warnings, as
        # `alab layer deploy` prints; ALAB_VERBOSE=1 adds the installer's commands and output, as `alab -v`.
        verbose = details_requested()
        try:
            clients = self._clients(layer)
            check_resource_bucket(layer.region, layer.s3dir_lambda, clients["s3_client"])
            with (
                forward_logs(verbose, _log),
                forward_stages(
                    _log, prefix=f"[{layer.layer_name}] ", warnings=None if verbose else _prefixed(layer.layer_name)
                ),
                resource_artifact_store(
                    layer.artifact_store,
                    region=layer.region or self.region,
                    endpoint_url=self.endpoint_url,
                ) as store,
            ):
                return deploy(*layer.spec(), artifact_store=store, **clients)
        except Exception as e:
            mapped = user_error(e)  # a botocore failure the core did not map: one AwsError line too
            if not isinstance(mapped, LayerError):
                raise
            # The engine shows the exception under the resource as the SDK's Python traceback: name the layer
            # and the cause first, as one plain diagnostic line.
            _log(f"error: layer {layer.layer_name!r} was not deployed: {str(mapped).splitlines()[0]}")
            if mapped is e:
                raise
            raise mapped from None

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        layer = LayerProps.from_props(props, self.spec_classes)
        deployment = self._deploy(layer)
        published = [deployment.layer_version] if deployment.published else []
        return dynamic.CreateResult(deployment.layer_arn, _outputs(props, deployment, published))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        layer = LayerProps.from_props(news, self.spec_classes)
        deployment = self._deploy(layer)
        published = [int(v) for v in olds.get("published_versions") or [] if v not in deployment.deleted_versions]
        if deployment.published and deployment.layer_version not in published:
            published.append(deployment.layer_version)
        # Every output, not only the changed ones: the SDK keeps nothing that UpdateResult omits.
        return dynamic.UpdateResult(_outputs(news, deployment, published))

    # -------------------------------------------------------------- read / delete
    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        layer = LayerProps.from_props(props, self.spec_classes)
        clients = self._clients(layer)
        record = read_layer_record(s3dir_lambda=layer.s3dir_lambda, tool=layer.tool, manifest=False, **clients)
        version = _as_int(props.get("layer_version"))
        current = record is not None and record.layer_version == version
        if current and record is not None and record.version_exists is not None:
            exists = record.version_exists
        else:  # the record moved on (another stack published) or is gone: ours may still be in Lambda
            exists = (
                version is not None
                and get_layer_version(
                    lambda_client=clients["lambda_client"], layer_name=layer.layer_name, version=version
                )
                is not None
            )
        if not exists:
            # An empty id tells the engine the resource is gone: it leaves the state.
            return dynamic.ReadResult("", {})
        outs = dict(props)
        if current and record is not None:
            outs.update(record.facts.to_dict())
        return dynamic.ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        layer = LayerProps.from_props(props, self.spec_classes)
        published = [int(v) for v in props.get("published_versions") or []]
        if not layer.delete_on_destroy or not published:
            _log(f"retaining the versions of layer {layer.layer_name!r}: they are immutable and may be in use")
            return
        deleted = delete_layer_versions(
            layer_name=layer.layer_name, versions=published, lambda_client=self._clients(layer)["lambda_client"]
        )
        _log(f"deleted versions {deleted} of layer {layer.layer_name!r}")


def _normal(value: Any) -> Any:
    """Compare numbers that crossed gRPC (floats) with the ints the user wrote."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _outputs(props: dict[str, Any], deployment: LayerDeployment, published: list[int]) -> dict[str, Any]:
    """The inputs minus the secrets (Diff and Delete read the old outputs), plus what was deployed."""
    outs = {k: v for k, v in props.items() if k not in SECRET_INPUTS and k != PROVIDER_KEY}
    outs.update(deployment.facts.to_dict(), published_versions=published, published=deployment.published)
    return outs


def _declared_fingerprint(
    path_pyproject_toml: str,
    tool: str,
    python_version: str,
    architecture: str,
    ignore_packages: list[str] | None,
    packaging: dict[str, Any] | None = None,
) -> str | None:
    """The local fingerprint at declaration; ``None`` when the inputs are invalid, so Check names the input.

    Any failure counts (a hostile lock makes a reader raise whatever it raises): the program must not
    stop on a bad file, Check reports it on ``path_pyproject_toml`` with the file named.
    """
    try:
        return local_fingerprint(
            path_pyproject_toml=Path(path_pyproject_toml),
            tool=tool,
            python_version=python_version,
            architecture=architecture,
            ignore_packages=ignore_packages,
            packaging_options=packaging_options_from(packaging or {}),
        )
    except Exception:  # noqa: BLE001 - reported by Check, see above
        return None


def _declared_packages(
    path_pyproject_toml: str, tool: str, python_version: str, architecture: str
) -> dict[str, str] | None:
    """The target's locked runtime pins, ``{name: version}``: an input, so that the engine's own diff
    (`pulumi preview --diff`) shows which packages a changed lock moves. ``None`` when unreadable (for
    any reason, as in :func:`_declared_fingerprint`: Check names the input)."""
    try:
        target = LayerTarget(python_version=python_version, architecture=architecture)
        return dict(sorted(read_local_manifest(path_pyproject_toml, tool, target).dependencies.items()))
    except Exception:  # noqa: BLE001 - reported by Check
        return None


def _absolute(path: str) -> str:
    """The provider process may run elsewhere: pass the manifest's absolute path."""
    return str(Path(path).expanduser().absolute())


def _declared_lock(
    options: Mapping[str, pulumi.Input[Any]],
) -> tuple[pulumi.Output[str], pulumi.Output[str | None], pulumi.Output[dict[str, str] | None]]:
    """What the program reads from the lock at declaration: the absolute path, the fingerprint, the pins."""
    path = pulumi.Output.from_input(options["path_pyproject_toml"]).apply(lambda p: _absolute(str(p)))
    tool, python_version, architecture = (options[n] for n in ("tool", "python_version", "architecture"))
    packaging_names = [f.name for f in spec_fields() if f.option.packaging and f.name in options]
    packaging = pulumi.Output.all(*(options[n] for n in packaging_names)).apply(
        lambda values: dict(zip(packaging_names, values, strict=True))
    )
    fingerprint = pulumi.Output.all(
        path, tool, python_version, architecture, options.get("ignore_packages"), packaging
    ).apply(lambda args: _declared_fingerprint(*args))
    packages = pulumi.Output.all(path, tool, python_version, architecture).apply(lambda args: _declared_packages(*args))
    return path, fingerprint, packages


def _resource_fields(classes: tuple[type, ...] = SPEC_CLASSES) -> list[SpecField]:
    """The options of the resource: its keyword arguments and inputs."""
    return [f for f in spec_fields(classes) if f.option.resource]


def _check_resource_options(options: Mapping[str, Any], classes: tuple[type, ...] = SPEC_CLASSES) -> None:
    """The keywords of ``LambdaLayer`` must be options of the spec and name every required one: a typo
    fails in the program, as a Python call would."""
    fields = _resource_fields(classes)
    known = {f.name for f in fields}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"LambdaLayer got unexpected arguments {', '.join(unknown)}; options: {', '.join(sorted(known))}"
        )
    missing = [f.name for f in fields if not f.has_default and f.name not in options]
    if missing:
        raise TypeError(f"LambdaLayer missing required keyword arguments: {', '.join(missing)}")


def _secret(field: SpecField, value: pulumi.Input[Any]) -> pulumi.Output[Any] | None:
    """A secret option (the index login) as a Pulumi secret, so that the state and the console show it encrypted."""
    if value is None:
        return None
    output = pulumi.Output.from_input(value)
    return pulumi.Output.secret(output.apply(_credentials_dict) if field.option.kind is dict else output)


def resource_props(options: Mapping[str, Any], classes: tuple[type, ...] = SPEC_CLASSES) -> dict[str, Any]:
    """The inputs of a ``LambdaLayer``: every resource option of the spec (given, else its default), the
    secrets made secret, the project's absolute path and what the program read from its lock."""
    _check_resource_options(options, classes)
    props: dict[str, Any] = {}
    for f in _resource_fields(classes):
        value = options.get(f.name, f.default)
        props[f.name] = _secret(f, value) if f.option.secret else value
    props["path_pyproject_toml"], props["fingerprint"], props["packages"] = _declared_lock(props)
    return props


def _resource_signature(classes: tuple[type, ...] = SPEC_CLASSES) -> inspect.Signature:
    """``LambdaLayer.__init__``'s signature as ``help()`` and editors show it: one keyword per option."""
    param = inspect.Parameter
    params = [param("self", param.POSITIONAL_OR_KEYWORD), param("resource_name", param.POSITIONAL_OR_KEYWORD)]
    for f in _resource_fields(classes):
        default = f.default if f.has_default else param.empty
        params.append(
            param(f.name, param.KEYWORD_ONLY, default=default, annotation=f"pulumi.Input[{f.option.kind.__name__}]")
        )
    params.append(param("opts", param.KEYWORD_ONLY, default=None, annotation="pulumi.ResourceOptions | None"))
    return inspect.Signature(params, return_annotation=None)


def _resource_doc(classes: tuple[type, ...] = SPEC_CLASSES) -> str:
    lines = ["Declare the layer; every keyword is an option of the spec (``layer/spec.py``):", ""]
    for f in _resource_fields(classes):
        what = "required" if not f.has_default else f"default {f.default!r}"
        lines.append(f"- ``{f.name}`` ({what}{', secret' if f.option.secret else ''}): {f.option.help}")
    return "\n".join(lines)


class LambdaLayer(dynamic.Resource, module="aws_lambda_artifact_builder", name="LambdaLayer"):
    """A Lambda layer built from a project's lock file, published only when its S3 fingerprint changes."""

    layer_name: pulumi.Output[str]
    layer_version: pulumi.Output[int]
    layer_version_arn: pulumi.Output[str]
    layer_arn: pulumi.Output[str]
    fingerprint: pulumi.Output[str]
    #: The target's locked runtime pins, ``{name: version}``, read by the program from the lock.
    packages: pulumi.Output[dict[str, str]]
    code_sha256: pulumi.Output[str]
    code_size: pulumi.Output[int]
    s3uri_manifest: pulumi.Output[str]
    #: The versions this resource published (not adopted ones): what ``delete_on_destroy`` removes.
    published_versions: pulumi.Output[list[int]]
    #: Whether the last create or update published a new version (``False``: adopted or unchanged).
    published: pulumi.Output[bool]

    #: The provider of its CRUD; its ``spec_classes`` are the resource's arguments (a test extends them).
    provider_class: type[LambdaLayerProvider] = LambdaLayerProvider

    def __init__(
        self, resource_name: str, *, opts: pulumi.ResourceOptions | None = None, **options: pulumi.Input[Any]
    ) -> None:
        provider = self.provider_class()
        props: dict[str, Any] = {
            **resource_props(options, provider.spec_classes),
            # Outputs only: declared so that they become typed attributes of the resource.
            "layer_version": None,
            "layer_version_arn": None,
            "layer_arn": None,
            "code_sha256": None,
            "code_size": None,
            "s3uri_manifest": None,
            "published_versions": None,
            "published": None,
        }
        super().__init__(provider, resource_name, props, opts)

    __init__.__signature__ = _resource_signature()  # type: ignore[attr-defined]
    __init__.__doc__ = _resource_doc()
