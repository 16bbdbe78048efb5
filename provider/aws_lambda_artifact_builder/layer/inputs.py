"""The inputs of a layer deploy, checked all at once before anything talks to AWS.

Every front end (API, CLI, Pulumi ``check``, Terraform plan) reports bad inputs through
``validate_layer_inputs``: one ``(property, message)`` pair per wrong input, each message
naming the input, so a user fixes them all in one round. ``resolve_layer_inputs`` is the
same check for the API: it raises one ``LayerError`` listing them, or returns the resolved
values, including the local fingerprint.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from s3pathlib.api import S3Path

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, DEFAULT_PYTHON_VERSION, BuildInEnum, LayerBuildToolEnum
from ..errors import LayerError, LayerInputError
from .foundation import Credentials, LayerManifestManager, LayerPathLayout, LayerS3Layout, coerce_s3dir, coerce_tool
from .manifest import LocalManifest, compute_fingerprint, normalize_manifest_text, read_local_manifest
from .package import PackagingOptions
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


#: The inputs ``check_layer_inputs`` checks itself, with messages more precise than a type check.
CHECKED_INPUTS: frozenset[str] = frozenset(
    {
        "layer_name",
        "path_pyproject_toml",
        "s3dir_lambda",
        "tool",
        "python_version",
        "architecture",
        "ignore_packages",
        "keep_last",
        "permissions",
        "build_in",
        "credentials",
    }
)


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
    """Every problem as ``(property, message)``, and the resolved inputs when there is none."""
    errors: list[tuple[str, str]] = []
    values: dict[str, Any] = {}

    def check(prop: str, fn: Any, *args: Any) -> Any:
        try:
            values[prop] = fn(*args)
        except LayerError as e:
            errors.append((prop, str(e)))
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OSError) as e:
            # A reader's own exception on a hostile file is still a problem of this input, never a crash
            # (Pulumi Check and Terraform validate report it on the property).
            detail = " ".join(str(e).split()) or type(e).__name__
            errors.append((prop, f"{prop} {str(args[0]) if args else ''!r} cannot be read: {detail}"))

    check("layer_name", validate_layer_name, layer_name)
    check("s3dir_lambda", coerce_s3dir, s3dir_lambda)
    check("tool", coerce_tool, tool)
    check("python_version", lambda v: LayerTarget(python_version=v).python_version, python_version)
    check("architecture", lambda a: LayerTarget(architecture=a).architecture, architecture)
    check("ignore_packages", _check_ignore_packages, ignore_packages)
    check("keep_last", _check_keep_last, keep_last)
    check("permissions", parse_permissions, permissions)
    check("build_in", _check_build_in, build_in)
    check("credentials", _check_credentials, credentials)
    check("packaging_options", _check_packaging_options, packaging_options)
    if isinstance(packaging_options, PackagingOptions):  # each option on the input the front ends show
        check("unzipped_size_limit", _check_size_limit, packaging_options.unzipped_size_limit)
        check("compile_bytecode", _check_compile_bytecode, packaging_options.compile_bytecode)
    problem = _path_problem(path_pyproject_toml)
    if problem:
        errors.append(("path_pyproject_toml", problem))
    elif "tool" in values and "python_version" in values and "architecture" in values:
        target = LayerTarget(python_version=values["python_version"], architecture=values["architecture"])
        check("path_pyproject_toml", read_local_manifest, Path(path_pyproject_toml), values["tool"], target)
    if errors:
        return errors, None
    return [], _resolved(values, Path(path_pyproject_toml), packaging_options or PackagingOptions())


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
    """``check_layer_inputs`` for the API: one ``LayerInputError`` holding every problem."""
    errors, inputs = check_layer_inputs(**kwargs)
    if inputs is None:
        raise LayerInputError(errors)
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
