"""Pulumi dynamic provider: a Lambda layer whose preview is decided by the fingerprint recorded in S3.

A thin adapter over the core workflow (``layer/workflow.py``): ``check`` is the core's input
validation, ``diff`` is ``plan_layer`` (one S3 request, never a build), ``create``/``update`` are
``deploy_layer`` (which adopts a version already published with the same fingerprint) and
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
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.output import Unknown

from .errors import LayerError, user_error
from .progress import details_requested, forward_stages
from .typehint import T_PRINTER
from .layer.foundation import Credentials
from .constants import DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, DEFAULT_PYTHON_VERSION
from .layer.inputs import CHECKED_INPUTS, local_fingerprint, validate_layer_inputs
from .layer.spec import (
    SPEC_CLASSES,
    DeployOptions,
    core_kwargs,
    packaging_options_from,
    replacing_inputs,
    spec_fields,
    type_problems,
)
from .layer.manifest import read_local_manifest
from .layer.publish import LayerDeployment, delete_layer_versions, get_layer_version
from .layer.target import LayerTarget
from .layer.targets import check_resource_bucket, placement_problems, resource_artifact_store, resource_clients
from .layer.workflow import deploy_layer, plan_layer, read_layer_record

#: Changing one of these points the resource at another layer or record: a replacement.
REPLACE_ON: tuple[str, ...] = replacing_inputs()
#: Inputs that change what an update does without changing the layer's bytes.
SETTINGS_INPUTS: tuple[str, ...] = (*(f.name for f in spec_fields((DeployOptions,))), "delete_on_destroy")
#: Inputs that are never copied to the outputs (the state keeps them only as encrypted inputs).
SECRET_INPUTS: tuple[str, ...] = ("credentials",)
PROVIDER_KEY = "__provider"
_CREDENTIAL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Credentials))


_log_lock = threading.Lock()


def _log(msg: str) -> None:
    """Provider progress goes to stderr, which the engine shows as diagnostics (stdout carries the port);
    one write per line under a lock, as resources deployed at once would interleave their lines."""
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


@dataclasses.dataclass(frozen=True)
class LayerProps:
    """The resource's properties (inputs, or outputs that repeat them) as the core functions take them."""

    layer_name: str
    path_pyproject_toml: str
    s3dir_lambda: str
    tool: str
    build_in: str = DEFAULT_BUILD_IN
    python_version: str = DEFAULT_PYTHON_VERSION
    architecture: str = DEFAULT_ARCHITECTURE
    ignore_packages: list[str] | None = None
    keep_last: int | None = None
    permissions: list[str] | None = None
    delete_on_destroy: bool = False
    fingerprint: str | None = None
    credentials: Credentials | None = None
    #: Every spec option (``layer/spec.py``) as given, numbers as the user wrote them.
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> LayerProps:
        raw = props.get("credentials")
        options = {
            f.name: _as_int(props.get(f.name)) if f.option.kind is int else props.get(f.name)
            for f in spec_fields()
            if f.option.resource
        }
        return cls(
            layer_name=props.get("layer_name"),  # type: ignore[arg-type]
            path_pyproject_toml=props.get("path_pyproject_toml"),  # type: ignore[arg-type]
            s3dir_lambda=props.get("s3dir_lambda"),  # type: ignore[arg-type]
            tool=props.get("tool"),  # type: ignore[arg-type]
            build_in=props.get("build_in", DEFAULT_BUILD_IN),
            python_version=props.get("python_version", DEFAULT_PYTHON_VERSION),
            architecture=props.get("architecture", DEFAULT_ARCHITECTURE),
            ignore_packages=props.get("ignore_packages"),
            keep_last=_as_int(props.get("keep_last")),
            permissions=props.get("permissions"),
            delete_on_destroy=bool(props.get("delete_on_destroy", False)),
            fingerprint=props.get("fingerprint"),
            credentials=Credentials(**{k: raw[k] for k in _CREDENTIAL_FIELDS}) if isinstance(raw, dict) else None,
            options=options,
        )

    @property
    def region(self) -> str | None:
        """The resource's own region (spec ``Placement``); ``None``: the stack's."""
        return self.options.get("region") or None

    @property
    def role_arn(self) -> str | None:
        """The role of the account the resource publishes in (spec ``Placement``); ``None``: the stack's own."""
        return self.options.get("role_arn") or None

    @property
    def artifact_store(self) -> str | None:
        return self.options.get("artifact_store") or None

    def target_kwargs(self) -> dict[str, Any]:
        """The arguments of ``plan_layer``."""
        return core_kwargs(self.options, deploy=False)

    def deploy_kwargs(self) -> dict[str, Any]:
        """The layer's arguments of ``deploy_layer``."""
        return core_kwargs(self.options, deploy=True)


def _check_adapter_inputs(props: dict[str, Any]) -> list[tuple[str, str]]:
    """What only the Pulumi resource has: ``delete_on_destroy`` and the credentials as a dict."""
    failures = []
    if not isinstance(props.get("delete_on_destroy", False), bool):
        failures.append(("delete_on_destroy", "delete_on_destroy must be true or false"))
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
        failures = _check_adapter_inputs(news)
        validated = [f.name for f in spec_fields(self.spec_classes) if f.option.resource]
        known = not any(_is_unknown(news.get(k)) for k in validated)  # unknowns are checked at create/update
        if known:
            failures += type_problems(news, self.spec_classes, skip=CHECKED_INPUTS)
            failures += placement_problems(news)
        if known and not failures:
            kwargs = LayerProps.from_props(news).deploy_kwargs()
            failures += validate_layer_inputs(
                **{k: v for k, v in kwargs.items() if k not in ("image", "container_runtime")}
            )
        inputs = dict(news)
        if known and not failures and inputs.get("fingerprint") is None:
            # The program could not compute it at declaration; the inputs are valid now.
            try:
                inputs["fingerprint"] = local_fingerprint(**_fingerprint_kwargs(LayerProps.from_props(news)))
            except LayerError as e:
                failures.append(("path_pyproject_toml", str(e)))
        return dynamic.CheckResult(inputs, [dynamic.CheckFailure(p, r) for p, r in failures])

    # -------------------------------------------------------------- diff
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        replaces = [k for k in REPLACE_ON if olds.get(k) != news.get(k)]
        if any(_is_unknown(v) for v in news.values()):
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        if replaces:
            _log(f"replacing layer {olds.get('layer_name')!r}: {', '.join(replaces)} changed")
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        layer = LayerProps.from_props(news)
        plan = plan_layer(**layer.target_kwargs(), **self._clients(layer))
        reasons = []
        if plan.changed:
            reasons.append(plan.reason)
        elif plan.current_layer_version_arn != olds.get("layer_version_arn"):
            reasons.append(f"adopt {plan.current_layer_version_arn}, already published with this fingerprint")
        if layer.fingerprint is not None and layer.fingerprint != plan.fingerprint:
            reasons.append("the manifest changed after the program read it")
        reasons += [f"{k} changed" for k in SETTINGS_INPUTS if _normal(olds.get(k)) != _normal(news.get(k))]
        if reasons:
            _log(f"layer {layer.layer_name!r}: " + "; ".join(reasons))
            for line in plan.package_changes.lines():
                _log(f"  {line}")
        return dynamic.DiffResult(changes=bool(reasons), replaces=[], delete_before_replace=False)

    # -------------------------------------------------------------- create / update
    def _deploy(self, layer: LayerProps) -> LayerDeployment:
        # deploy_layer serialises builds that share the project's build folder itself.
        # The engine lists every stderr line under the stack: one line per stage and the warnings, as
        # `alab layer deploy` prints; ALAB_VERBOSE=1 adds the installer's commands and output, as `alab -v`.
        verbose = details_requested()
        try:
            clients = self._clients(layer)
            check_resource_bucket(layer.region, layer.s3dir_lambda, clients["s3_client"])
            with (
                forward_stages(
                    _log, prefix=f"[{layer.layer_name}] ", warnings=None if verbose else _prefixed(layer.layer_name)
                ),
                resource_artifact_store(
                    layer.artifact_store,
                    region=layer.region or self.region,
                    endpoint_url=self.endpoint_url,
                    printer=_log,
                    verbose=verbose,
                ) as store,
            ):
                return deploy_layer(
                    **layer.deploy_kwargs(),
                    credentials=layer.credentials,
                    verbose=verbose,
                    printer=_log,
                    artifact_store=store,
                    **clients,
                )
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
        layer = LayerProps.from_props(props)
        deployment = self._deploy(layer)
        published = [deployment.layer_version] if deployment.published else []
        return dynamic.CreateResult(deployment.layer_arn, _outputs(props, deployment, published))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        layer = LayerProps.from_props(news)
        deployment = self._deploy(layer)
        published = [int(v) for v in olds.get("published_versions") or [] if v not in deployment.deleted_versions]
        if deployment.published and deployment.layer_version not in published:
            published.append(deployment.layer_version)
        # Every output, not only the changed ones: the SDK keeps nothing that UpdateResult omits.
        return dynamic.UpdateResult(_outputs(news, deployment, published))

    # -------------------------------------------------------------- read / delete
    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        layer = LayerProps.from_props(props)
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
        layer = LayerProps.from_props(props)
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


def _fingerprint_kwargs(layer: LayerProps) -> dict[str, Any]:
    return {
        "path_pyproject_toml": Path(layer.path_pyproject_toml),
        "tool": layer.tool,
        "python_version": layer.python_version,
        "architecture": layer.architecture,
        "ignore_packages": layer.ignore_packages,
        "packaging_options": packaging_options_from(layer.options),
    }


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
    path_pyproject_toml: pulumi.Input[str],
    tool: pulumi.Input[str],
    python_version: pulumi.Input[str],
    architecture: pulumi.Input[str],
    ignore_packages: pulumi.Input[list[str]] | None,
    options: dict[str, pulumi.Input[Any]],
) -> tuple[pulumi.Output[str], pulumi.Output[str | None], pulumi.Output[dict[str, str] | None]]:
    """What the program reads from the lock at declaration: the absolute path, the fingerprint, the pins."""
    path = pulumi.Output.from_input(path_pyproject_toml).apply(lambda p: _absolute(str(p)))
    packaging_names = [f.name for f in spec_fields() if f.option.packaging and f.name in options]
    packaging = pulumi.Output.all(*(options[n] for n in packaging_names)).apply(
        lambda values: dict(zip(packaging_names, values))
    )
    fingerprint = pulumi.Output.all(path, tool, python_version, architecture, ignore_packages, packaging).apply(
        lambda args: _declared_fingerprint(*args)
    )
    packages = pulumi.Output.all(path, tool, python_version, architecture).apply(lambda args: _declared_packages(*args))
    return path, fingerprint, packages


def _check_resource_options(options: Mapping[str, Any]) -> None:
    """The extra keywords of ``LambdaLayer`` must be options of the spec: a typo fails in the program."""
    known = {f.name for f in spec_fields() if f.option.resource}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"LambdaLayer got unexpected arguments {', '.join(unknown)}; options: {', '.join(sorted(known))}"
        )


def _secret_credentials(credentials: pulumi.Input[Credentials | dict[str, str]] | None) -> pulumi.Output[Any] | None:
    """The index login as a Pulumi secret, so that the state and the console show it encrypted."""
    if credentials is None:
        return None
    return pulumi.Output.secret(pulumi.Output.from_input(credentials).apply(_credentials_dict))


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

    def __init__(
        self,
        resource_name: str,
        *,
        layer_name: pulumi.Input[str],
        path_pyproject_toml: pulumi.Input[str],
        s3dir_lambda: pulumi.Input[str],
        tool: pulumi.Input[str],
        build_in: pulumi.Input[str] = DEFAULT_BUILD_IN,
        python_version: pulumi.Input[str] = DEFAULT_PYTHON_VERSION,
        architecture: pulumi.Input[str] = DEFAULT_ARCHITECTURE,
        credentials: pulumi.Input[Credentials | dict[str, str]] | None = None,
        ignore_packages: pulumi.Input[list[str]] | None = None,
        keep_last: pulumi.Input[int] | None = None,
        permissions: pulumi.Input[list[str]] | None = None,
        delete_on_destroy: pulumi.Input[bool] = False,
        opts: pulumi.ResourceOptions | None = None,
        **options: pulumi.Input[Any],
    ) -> None:
        """The arguments named here are the common ones; every other option of the spec
        (``layer/spec.py``: ``image``, ``container_runtime``, ``compile_bytecode``, ...) is a keyword too."""
        _check_resource_options(options)
        path, fingerprint, packages = _declared_lock(
            path_pyproject_toml, tool, python_version, architecture, ignore_packages, options
        )
        props: dict[str, Any] = {
            "layer_name": layer_name,
            "path_pyproject_toml": path,
            "s3dir_lambda": s3dir_lambda,
            "tool": tool,
            "build_in": build_in,
            "python_version": python_version,
            "architecture": architecture,
            "credentials": _secret_credentials(credentials),
            "ignore_packages": ignore_packages,
            "keep_last": keep_last,
            "permissions": permissions,
            "delete_on_destroy": delete_on_destroy,
            **options,
            "fingerprint": fingerprint,
            "packages": packages,
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
        super().__init__(LambdaLayerProvider(), resource_name, props, opts)
