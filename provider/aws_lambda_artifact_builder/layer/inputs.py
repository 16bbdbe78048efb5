"""The inputs of a layer deploy, checked all at once before anything talks to AWS.

``check_spec(spec, options)`` checks a ``LayerSpec`` and ``DeployOptions`` (``layer/spec.py``) field by
field: an option with a rule of its own in ``_CHECKS`` by that rule, every other one (a field added to
the spec included) by its type and choices. It gives one ``(property, message)`` pair per wrong input,
each message naming the input, so a user fixes them all in one round, and the resolved inputs (with
the local fingerprint) when there is none; ``resolve_spec`` raises one ``LayerInputError`` instead.
Every front end (CLI, Pulumi ``check``, Terraform validate, the core's ``plan``/``deploy``) uses it;
``check_layer_inputs``/``validate_layer_inputs``/``resolve_layer_inputs`` are the seed's keyword shims.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from s3pathlib.api import S3Path

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, DEFAULT_PYTHON_VERSION, BuildInEnum, LayerBuildToolEnum
from ..errors import LayerError, ManifestError, ManifestProblem, input_error
from .foundation import Credentials, LayerManifestManager, LayerPathLayout, LayerS3Layout, coerce_s3dir, coerce_tool
from .manifest import LocalManifest, compute_fingerprint, normalize_manifest_text, read_local_manifest
from .package import PackagingOptions
from .spec import DeployOptions, LayerSpec, make_spec, option_values, type_problems
from .target import LayerTarget

#: Where a layer can be built.
BUILD_IN: tuple[str, ...] = tuple(b.value for b in BuildInEnum)

_DIST_NAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_LAYER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_layer_name(layer_name: object) -> str:
    if not isinstance(layer_name, str) or not _LAYER_NAME_RE.fullmatch(layer_name):
        raise LayerError(f"layer_name {layer_name!r} is not a Lambda layer name: 1 to 64 letters, digits, '-' or '_'")
    return layer_name


@dataclasses.dataclass(frozen=True)
class LayerPermission:
    """One grant of ``lambda:GetLayerVersion``: an account, an organization, or everyone."""

    statement_id: str
    principal: str
    organization_id: str | None = None


#: Statement ids this tool manages start with this, so grants made by hand are left alone.
STATEMENT_PREFIX = "alab-"


def parse_permission(value: object) -> LayerPermission:
    """``"123456789012"`` (account), ``"o-abc123def4"`` (organization) or ``"public"``/``"*"``."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text in ("public", "*"):
        return LayerPermission(statement_id=f"{STATEMENT_PREFIX}public", principal="*")
    if text and re.fullmatch(r"\d{12}", text):
        return LayerPermission(statement_id=f"{STATEMENT_PREFIX}account-{text}", principal=text)
    if text and re.fullmatch(r"o-[a-z0-9]{10,32}", text):
        return LayerPermission(statement_id=f"{STATEMENT_PREFIX}org-{text}", principal="*", organization_id=text)
    raise LayerError(
        f"permissions entry {value!r} is not a 12-digit account id, an organization id (o-...) or 'public'"
    )


def parse_permissions(values: Iterable[object] | None) -> list[LayerPermission] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise LayerError(f"permissions must be a list of account ids, organization ids or 'public', not {values!r}")
    return [parse_permission(v) for v in values]


@dataclasses.dataclass(frozen=True)
class LayerInputs:
    """Validated inputs of one layer, with the local manifest read and fingerprinted."""

    layer_name: str
    tool: LayerBuildToolEnum
    target: LayerTarget
    path_layout: LayerPathLayout
    s3_layout: LayerS3Layout
    manifest: LocalManifest
    ignore_packages: list[str] | None
    packaging_options: PackagingOptions
    fingerprint: str

    @functools.cached_property
    def manifest_manager(self) -> LayerManifestManager:
        """The seed's manager of this manifest and its S3 record: every name and key below comes from it."""
        return LayerManifestManager(
            path_pyproject_toml=self.path_layout.path_pyproject_toml,
            s3dir_lambda=self.s3_layout.s3dir_lambda,
            layer_build_tool=self.tool,
        )

    @property
    def manifest_name(self) -> str:
        return self.manifest_manager.manifest_name

    @property
    def manifest_text(self) -> str:
        """The manifest as recorded in S3: normalised, with any login inside URLs removed."""
        return normalize_manifest_text(self.manifest.content)

    @property
    def s3path_last_manifest(self) -> S3Path:
        return self.manifest_manager.s3path_last_manifest

    def s3uri_manifest_for(self, version: int) -> str:
        return str(self.manifest_manager.get_versioned_manifest(version).uri)


def _check_ignore_packages(ignore_packages: Any) -> list[str] | None:
    if ignore_packages is None:
        return None
    if isinstance(ignore_packages, (str, bytes)) or not isinstance(ignore_packages, Iterable):
        raise LayerError(f"ignore_packages must be a list of distribution names, not {ignore_packages!r}")
    names = list(ignore_packages)
    bad = [n for n in names if not isinstance(n, str) or not _DIST_NAME_RE.fullmatch(n)]
    if bad:
        raise LayerError(f"ignore_packages has entries that are not distribution names: {bad!r}")
    return names


def _check_keep_last(keep_last: Any) -> None:
    if keep_last is None:
        return
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise LayerError(
            f"keep_last {keep_last!r} must be a whole number of at least 1 (leave it unset to keep every version)"
        )


def _check_credentials(credentials: Any) -> None:
    if credentials is not None and not isinstance(credentials, Credentials):
        raise LayerError(f"credentials must be a Credentials object or None, not {type(credentials).__name__}")


def _check_build_in(build_in: Any) -> None:
    if build_in not in BUILD_IN:
        raise LayerError(f"build_in {build_in!r} must be one of: {', '.join(BUILD_IN)}")


def _check_packaging_options(options: Any) -> None:
    if options is not None and not isinstance(options, PackagingOptions):
        raise LayerError(f"packaging_options must be a PackagingOptions object or None, not {type(options).__name__}")


def _check_size_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise LayerError(f"unzipped_size_limit {limit!r} must be a size of at least 1 byte (e.g. 250MB)")


def _check_compile_bytecode(value: Any) -> None:
    if not isinstance(value, bool):
        raise LayerError(f"compile_bytecode {value!r} must be true or false")


#: Checks more precise than the spec's type check, by option: each gives the value the core uses, or raises
#: ``LayerError`` naming its input. Every other option of the spec gets its type and choices checked
#: (``spec.type_problems``); ``path_pyproject_toml`` is read last, once the tool and target are known.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "layer_name": validate_layer_name,
    "s3dir_lambda": coerce_s3dir,
    "tool": coerce_tool,
    "python_version": lambda v: LayerTarget(python_version=v).python_version,
    "architecture": lambda a: LayerTarget(architecture=a).architecture,
    "ignore_packages": _check_ignore_packages,
    "build_in": _check_build_in,
    "compile_bytecode": _check_compile_bytecode,
    "unzipped_size_limit": _check_size_limit,
    "keep_last": _check_keep_last,
    "permissions": parse_permissions,
    "credentials": _check_credentials,
}

#: The inputs checked with a message more precise than the spec's type check.
CHECKED_INPUTS: frozenset[str] = frozenset({*_CHECKS, "path_pyproject_toml"})


def check_spec(
    spec: LayerSpec, options: DeployOptions | None = None
) -> tuple[list[tuple[str, str]], LayerInputs | None]:
    """Every problem of a spec (and deploy options) as ``(input, message)``, in the spec's order, and the
    resolved inputs when there is none. Each option of the spec's class is checked, a field a subclass
    adds included: by its check in ``_CHECKS``, else by its type and choices. Reads local files only."""
    errors: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for obj in (spec,) if options is None else (spec, options):
        for name, value in option_values(obj).items():
            check = _CHECKS.get(name)
            if check is not None:
                _check_one(name, check, value, values, errors)
            elif name != "path_pyproject_toml":
                errors += type_problems({name: value}, (type(obj),))
    path = spec.path_pyproject_toml
    problem = _path_problem(path)
    if problem:
        errors.append(("path_pyproject_toml", problem))
    elif "tool" in values and "python_version" in values and "architecture" in values:
        target = LayerTarget(python_version=values["python_version"], architecture=values["architecture"])
        _check_one(
            "path_pyproject_toml", lambda p: read_local_manifest(Path(p), values["tool"], target), path, values, errors
        )
    if errors:
        return errors, None
    return [], _resolved(values, Path(path), spec.packaging_options)


def _check_one(
    prop: str, check: Callable[[Any], Any], value: Any, values: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    """``values[prop]`` from the check, or its problem appended to ``errors``."""
    try:
        values[prop] = check(value)
    except ManifestError as e:  # the lock is missing, stale, unpinned: the CLI's exit code says so
        errors.append(ManifestProblem((prop, str(e))))
    except LayerError as e:
        errors.append((prop, str(e)))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OSError) as e:
        # A reader's own exception on a hostile file is still a problem of this input, never a crash
        # (Pulumi Check and Terraform validate report it on the property).
        detail = " ".join(str(e).split()) or type(e).__name__
        errors.append((prop, f"{prop} {str(value)!r} cannot be read: {detail}"))


def resolve_spec(spec: LayerSpec, options: DeployOptions | None = None) -> LayerInputs:
    """:func:`check_spec` for the core: one ``LayerInputError`` holding every problem."""
    errors, inputs = check_spec(spec, options)
    if inputs is None:
        raise input_error(errors)
    return inputs


def spec_from_kwargs(
    packaging_options: Any = None, **values: Any
) -> tuple[LayerSpec, DeployOptions, list[tuple[str, str]]]:
    """The spec the seed's keyword arguments describe (``plan_layer``, ``deploy_layer``, ...), with the
    problem of a ``packaging_options`` that is not a :class:`PackagingOptions` (its defaults are used)."""
    problems = []
    if packaging_options is not None and not isinstance(packaging_options, PackagingOptions):
        problems.append(
            ("packaging_options", f"packaging_options must be a PackagingOptions object or None, "
             f"not {type(packaging_options).__name__}")
        )  # fmt: skip
    elif packaging_options is not None:  # a packaging option given by its own name wins
        values = {**dataclasses.asdict(packaging_options), **values}
    known = set(option_values(*make_spec({})))
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(unknown)}")
    spec, options = make_spec(values)
    return spec, options, problems


def check_layer_inputs(
    *,
    layer_name: Any,
    path_pyproject_toml: Any,
    s3dir_lambda: Any,
    tool: Any,
    python_version: Any = DEFAULT_PYTHON_VERSION,
    architecture: Any = DEFAULT_ARCHITECTURE,
    ignore_packages: Any = None,
    keep_last: Any = None,
    permissions: Any = None,
    build_in: Any = DEFAULT_BUILD_IN,
    credentials: Any = None,
    packaging_options: PackagingOptions | None = None,
) -> tuple[list[tuple[str, str]], LayerInputs | None]:
    """Every problem as ``(property, message)``, and the resolved inputs when there is none
    (the seed's keywords over :func:`check_spec`)."""
    spec, options, problems = spec_from_kwargs(
        packaging_options, layer_name=layer_name, path_pyproject_toml=path_pyproject_toml,
        s3dir_lambda=s3dir_lambda, tool=tool, python_version=python_version, architecture=architecture,
        ignore_packages=ignore_packages, keep_last=keep_last, permissions=permissions, build_in=build_in,
        credentials=credentials,
    )  # fmt: skip
    errors, inputs = check_spec(spec, options)
    if problems:
        return errors + problems, None
    return errors, inputs


def _path_problem(path_pyproject_toml: Any) -> str:
    if not isinstance(path_pyproject_toml, (str, Path)) or not str(path_pyproject_toml):
        return f"path_pyproject_toml must be a path, not {path_pyproject_toml!r}"
    if not Path(path_pyproject_toml).is_file():
        return f"path_pyproject_toml {str(path_pyproject_toml)!r} is not a file"
    return ""


def _resolved(values: dict[str, Any], path_pyproject_toml: Path, options: PackagingOptions) -> LayerInputs:
    """The inputs from the checked values (``values["path_pyproject_toml"]`` is the read manifest)."""
    target = LayerTarget(python_version=values["python_version"], architecture=values["architecture"])
    manifest: LocalManifest = values["path_pyproject_toml"]
    return LayerInputs(
        layer_name=values["layer_name"],
        tool=values["tool"],
        target=target,
        path_layout=LayerPathLayout(path_pyproject_toml=path_pyproject_toml),
        s3_layout=LayerS3Layout(s3dir_lambda=values["s3dir_lambda"]),
        manifest=manifest,
        ignore_packages=values["ignore_packages"],
        packaging_options=options,
        fingerprint=_fingerprint(values["tool"], manifest, target, values["ignore_packages"], options),
    )


def validate_layer_inputs(
    *,
    layer_name: Any,
    path_pyproject_toml: Any,
    s3dir_lambda: Any,
    tool: Any,
    python_version: Any = DEFAULT_PYTHON_VERSION,
    architecture: Any = DEFAULT_ARCHITECTURE,
    ignore_packages: Any = None,
    keep_last: Any = None,
    permissions: Any = None,
    build_in: Any = DEFAULT_BUILD_IN,
    credentials: Any = None,
    packaging_options: Any = None,
) -> list[tuple[str, str]]:
    """``(property, message)`` for every invalid input; empty when all are fine. Reads local files only."""
    errors, _ = check_layer_inputs(
        layer_name=layer_name,
        path_pyproject_toml=path_pyproject_toml,
        s3dir_lambda=s3dir_lambda,
        tool=tool,
        python_version=python_version,
        architecture=architecture,
        ignore_packages=ignore_packages,
        keep_last=keep_last,
        permissions=permissions,
        build_in=build_in,
        credentials=credentials,
        packaging_options=packaging_options,
    )
    return errors


def resolve_layer_inputs(**kwargs: Any) -> LayerInputs:
    """The API's check: any option of the spec by name (``image`` too), ``packaging_options`` as an
    object; one ``LayerInputError`` holding every problem."""
    spec, options, problems = spec_from_kwargs(**kwargs)
    errors, inputs = check_spec(spec, options)
    if inputs is None or problems:
        raise input_error(errors + problems)
    return inputs


def _fingerprint(
    tool: LayerBuildToolEnum,
    manifest: LocalManifest,
    target: LayerTarget,
    ignore_packages: list[str] | None,
    options: PackagingOptions,
) -> str:
    return compute_fingerprint(
        tool=tool,
        runtime_set_digest=manifest.runtime_set_digest,
        python_version=target.python_version,
        architecture=target.architecture,
        ignore_packages=ignore_packages,
        packaging_options=options.fingerprint_fields(),
    )


def local_fingerprint(
    *,
    path_pyproject_toml: Path | str,
    tool: str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    ignore_packages: Iterable[str] | None = None,
    packaging_options: PackagingOptions | None = None,
) -> str:
    """The fingerprint the local manifest gives (what a deploy would record); reads local files only."""
    tool_enum = coerce_tool(tool)
    target = LayerTarget(python_version=python_version, architecture=architecture)
    names = _check_ignore_packages(ignore_packages)
    manifest = read_local_manifest(Path(path_pyproject_toml), tool_enum, target)
    return _fingerprint(tool_enum, manifest, target, names, packaging_options or PackagingOptions())
