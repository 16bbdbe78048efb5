"""The options of a layer, declared once: every front end is generated from these two dataclasses.

``LayerSpec`` is what the layer *is* (name, project, record folder, tool, target, build place,
exclusions, packaging options); ``DeployOptions`` is how a deploy treats it (retention, grants, …).
Each field carries an :class:`Option` in its metadata: help text, type, whether it is required,
whether a change means another layer (a replacement), whether it is secret, and its CLI flags.
From that metadata come the CLI flags and the ``[tool.aws_lambda_artifact_builder]`` keys
(``cli.py``), the Terraform schema (``terraform_provider/resource.py``) and the Pulumi resource's
arguments and ``Check`` (``pulumi_provider.py``): adding an option is adding one field here, plus
its behaviour in the core. Each front end turns its values into the two objects with :func:`make_spec`
and hands them to the core (``workflow.plan(spec)``, ``workflow.deploy(spec, options)``), which checks
every field (``inputs.check_spec``).

This module imports nothing above ``layer/package.py``: the front ends import it, never the reverse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ..constants import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_BUILD_IN,
    DEFAULT_PYTHON_VERSION,
    LAYER_UNZIPPED_SIZE_LIMIT,
    ArchitectureEnum,
    BuildInEnum,
    LayerBuildToolEnum,
)
from .build_container_plan import CONTAINER_RUNTIMES
from .foundation import Credentials
from .package import PackagingOptions

_T = TypeVar("_T")

#: The metadata key under which each field's :class:`Option` is stored.
OPTION = "alab_option"

#: The CLI commands an option can belong to.
PLAN_AND_DEPLOY: tuple[str, ...] = ("plan", "deploy")
DEPLOY_ONLY: tuple[str, ...] = ("deploy",)


@dataclasses.dataclass(frozen=True)
class Option:
    """What every front end needs to know about one option."""

    help: str
    #: ``str``, ``int``, ``bool``, ``list`` (of strings) or ``dict`` (of strings: the index login): the value's
    #: type in every front end.
    kind: type = str
    required: bool = False
    #: A change points at another layer or record: Terraform and Pulumi replace the resource.
    replaces: bool = False
    #: Never shown in plans, outputs, state or logs: a Terraform write-only input, a Pulumi secret.
    secret: bool = False
    choices: tuple[str, ...] | None = None
    #: CLI flags (the first is shown in messages); empty: ``--`` plus the name with dashes.
    flags: tuple[str, ...] = ()
    #: The attribute of the parsed CLI arguments; empty: the field's name.
    dest: str = ""
    metavar: str | None = None
    #: The CLI commands that take it; empty: no CLI flag.
    commands: tuple[str, ...] = PLAN_AND_DEPLOY
    #: Accepted as a key of ``[tool.aws_lambda_artifact_builder]``.
    config: bool = True
    #: An input of the Terraform resource and of the Pulumi resource.
    resource: bool = True
    #: The value is a field of :class:`PackagingOptions`.
    packaging: bool = False
    #: Read by the core (``workflow.plan``/``deploy``); ``False``: the front end turns it into what it
    #: passes instead (the clients of a region, an artifact store) or acts on it itself (destroy).
    core: bool = True

    def cli_flags(self, name: str) -> tuple[str, ...]:
        return self.flags or ("--" + name.replace("_", "-"),)


def option(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A spec field: its default and its :class:`Option` (a secret one is left out of the ``repr``)."""
    opt = Option(**meta)
    metadata = {OPTION: opt}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata, repr=not opt.secret)
    return dataclasses.field(default=default, metadata=metadata, repr=not opt.secret)


def _values(enum: Iterable[Any]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What a layer is: changing one of these changes the layer's bytes, its name or its record."""

    layer_name: str = option(help="Lambda layer name.", required=True, replaces=True)
    path_pyproject_toml: str = option(
        help="Path to the project's pyproject.toml (its lock file sits next to it), or its folder on the CLI "
        "(default there: the nearest pyproject.toml upward from the current folder); relative paths are resolved from the folder the tool runs in (in Terraform prefer `${path.module}/...`).",
        required=True,
        flags=("--project",),
        dest="project",
        config=False,
    )
    s3dir_lambda: str = option(
        help="S3 folder (s3://bucket/prefix/) of the layer record.",
        required=True,
        replaces=True,
        flags=("--s3dir", "--s3dir-lambda"),
    )
    tool: str = option(
        help="pip, poetry or uv (CLI default: the one lock file found).",
        required=True,
        choices=_values(LayerBuildToolEnum),
    )
    python_version: str = option(
        DEFAULT_PYTHON_VERSION, help=f"Lambda Python version (default {DEFAULT_PYTHON_VERSION}).", replaces=True
    )
    architecture: str = option(
        DEFAULT_ARCHITECTURE,
        help=f"x86_64 or arm64 (default {DEFAULT_ARCHITECTURE}).",
        replaces=True,
        choices=_values(ArchitectureEnum),
    )
    ignore_packages: list[str] | None = option(
        None,
        help="Distributions left out of the layer (replaces the default list; repeatable flag).",
        kind=list,
        flags=("--ignore-package",),
        metavar="NAME",
    )
    build_in: str = option(
        DEFAULT_BUILD_IN,
        help=f"Where the layer is built: local or container (default {DEFAULT_BUILD_IN}).",
        choices=_values(BuildInEnum),
        commands=DEPLOY_ONLY,
    )
    image: str | None = option(None, help="Container image for build_in = container.", commands=DEPLOY_ONLY)
    container_runtime: str | None = option(
        None,
        help=f"Container engine for build_in = container: {' or '.join(CONTAINER_RUNTIMES)}.",
        choices=CONTAINER_RUNTIMES,
        commands=DEPLOY_ONLY,
    )
    compile_bytecode: bool = option(
        False,
        help="Precompile .pyc files into the layer (only when the build Python equals the target).",
        kind=bool,
        packaging=True,
    )
    strip_debug_symbols: bool = option(
        False,
        help="Slim: ship shared objects as `strip --strip-debug` makes them (needs binutils' strip, or "
        "llvm-strip, for the target's architecture; packaging fails without one).",
        kind=bool,
        packaging=True,
    )
    drop_tests: bool = option(
        False, help="Slim: leave out the tests/ folders inside the distributions.", kind=bool, packaging=True
    )
    drop_type_stubs: bool = option(False, help="Slim: leave out *.pyi type stubs.", kind=bool, packaging=True)
    drop_docs: bool = option(
        False,
        help="Slim: leave out doc/ and docs/ folders that hold no Python code, and *.md/*.rst files "
        "(licences and *.dist-info are always kept).",
        kind=bool,
        packaging=True,
    )
    unzipped_size_limit: int = option(
        LAYER_UNZIPPED_SIZE_LIMIT,
        help="Refuse to package a layer larger than this unzipped: bytes, or a number and unit (250MB, 250MiB: "
        "MB as AWS counts them, 2**20 bytes; default 250 MiB, Lambda's limit).",
        kind=int,
        packaging=True,
        commands=DEPLOY_ONLY,
    )

    @property
    def packaging_options(self) -> PackagingOptions:
        return packaging_options_from(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class DeployOptions:
    """How a deploy treats the layer's versions: these never change the layer's bytes."""

    keep_last: int | None = option(
        None,
        help="Keep only this many of the newest versions this tool published (default: keep every version).",
        kind=int,
        metavar="N",
        commands=DEPLOY_ONLY,
    )
    permissions: list[str] | None = option(
        None,
        help="Grant GetLayerVersion to an account id, an organization id (o-...) or 'public' (repeatable flag).",
        kind=list,
        flags=("--permission",),
        metavar="WHO",
        commands=DEPLOY_ONLY,
    )
    #: The CLI builds it from its ``index_*`` settings and ``--credentials-file`` (the password never a flag).
    credentials: Credentials | None = option(
        None,
        help="Private index login: index_name, index_url, username, password. Secret: never stored in a plan, "
        "in state or in an output (Terraform: write-only; Pulumi: a secret).",
        kind=dict,
        secret=True,
        commands=(),
        config=False,
    )
    delete_on_destroy: bool = option(
        False,
        help="Delete the versions this resource published on destroy.",
        kind=bool,
        commands=(),
        config=False,
        core=False,
    )


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a Terraform or Pulumi resource publishes and where it shares builds from.

    ``region`` and ``role_arn`` have no CLI flag or ``[tool.aws_lambda_artifact_builder]`` key: the CLI has
    its own repeatable ``--region`` and ``targets`` list (``layer/targets.py``), so a generated ``--region``
    would clash with it; ``artifact_store`` is the CLI's ``--artifact-store`` (default there: its first
    target's s3dir). ``region`` and ``role_arn`` (another
    account, as ``DeployTarget``'s) name another Lambda (a replacement); ``artifact_store`` is how the zip
    is obtained, never what is published.
    """

    region: str | None = option(
        None,
        help="AWS region of this layer's Lambda and S3 calls (default: the provider's or stack's region); "
        "s3dir_lambda's bucket must be in it.",
        replaces=True,
        commands=(),
        config=False,
        core=False,
    )
    role_arn: str | None = option(
        None,
        help="IAM role (arn:aws:iam::ACCOUNT:role/NAME) whose account this layer is published in, assumed "
        "with STS AssumeRole for its Lambda and S3 calls (credentials kept in memory only, never in state); "
        "s3dir_lambda's bucket is that account's. The artifact_store is read and written with the "
        "provider's own credentials (default: no role, the provider's own account).",
        replaces=True,
        commands=(),
        config=False,
        core=False,
    )
    artifact_store: str | None = option(
        None,
        help="S3 folder (s3://bucket/prefix/) of an artifact store shared by several layer resources, e.g. one "
        "per region: a fingerprint already stored there is copied, not built again (default: no store, "
        "build here; the CLI's default: its first target's s3dir). Changing it never republishes.",
        metavar="S3DIR",
        commands=DEPLOY_ONLY,  # the CLI's --artifact-store and artifact_store key (cli_targets.py)
        core=False,
    )


#: The classes every front end is generated from; a test passes an extended tuple.
SPEC_CLASSES: tuple[type, ...] = (LayerSpec, DeployOptions, Placement)


@dataclasses.dataclass(frozen=True)
class SpecField:
    """One option as the front ends see it."""

    name: str
    default: Any
    option: Option

    @property
    def has_default(self) -> bool:
        return self.default is not dataclasses.MISSING


def spec_fields(classes: Iterable[type] = SPEC_CLASSES) -> list[SpecField]:
    """Every option of ``classes``, in declaration order."""
    found = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(OPTION)
            if meta is None:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            found.append(SpecField(name=f.name, default=default, option=meta))
    return found


def replacing_inputs(classes: Iterable[type] = SPEC_CLASSES) -> tuple[str, ...]:
    """The inputs whose change means another layer or record: a replacement in Terraform and Pulumi."""
    return tuple(f.name for f in spec_fields(classes) if f.option.replaces)


def packaging_options_from(values: Mapping[str, Any]) -> PackagingOptions:
    """The :class:`PackagingOptions` the packaging fields of ``values`` give (defaults for absent ones)."""
    names = {f.name for f in dataclasses.fields(PackagingOptions)}
    given = {
        f.name: values[f.name]
        for f in spec_fields()
        if f.option.packaging and f.name in names and values.get(f.name) is not None
    }
    return PackagingOptions(**given)


def make_spec(values: Mapping[str, Any], classes: Iterable[type] = SPEC_CLASSES) -> tuple[LayerSpec, DeployOptions]:
    """The :class:`LayerSpec` and :class:`DeployOptions` of option values (of the subclasses of them that
    ``classes`` holds, e.g. a test's spec with one more field), as every front end hands them to the core.

    An absent or ``None`` value takes the field's default (a required one stays ``None``: the core's
    check names it); a whole float is the integer it was written as (numbers cross gRPC and msgpack as
    floats). The values are not checked here: ``inputs.check_spec`` does, naming each input.
    """
    given = tuple(classes)
    spec_cls = next((c for c in given if issubclass(c, LayerSpec)), LayerSpec)
    options_cls = next((c for c in given if issubclass(c, DeployOptions)), DeployOptions)
    return _instance(spec_cls, values), _instance(options_cls, values)


def _instance(cls: type[_T], values: Mapping[str, Any]) -> _T:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = values.get(f.name)
        meta = f.metadata.get(OPTION)
        if meta is not None and meta.kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is not None:
            kwargs[f.name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None
    return cls(**kwargs)


def option_values(*objects: Any) -> dict[str, Any]:
    """``{name: value}`` of every option of spec objects (``LayerSpec``, ``DeployOptions``, ...)."""
    return {f.name: getattr(obj, f.name) for obj in objects for f in dataclasses.fields(obj) if OPTION in f.metadata}


def type_problems(
    values: Mapping[str, Any], classes: Iterable[type] = SPEC_CLASSES, *, skip: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """``(input, reason)`` for every value whose type or choice the spec rejects (``None`` is "not set").

    ``skip`` names the inputs a caller checks with more precise messages (``check_layer_inputs``).
    """
    problems = []
    skipped = set(skip)
    for f in spec_fields(classes):
        value: Any = values.get(f.name)
        if value is None or f.name in skipped:
            continue
        kind = f.option.kind
        if isinstance(value, float) and kind is int and value.is_integer():
            value = int(value)  # numbers cross gRPC and msgpack as floats
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if ok and kind is list:
            ok = all(isinstance(item, str) for item in value)
        if not ok:
            problems.append((f.name, f"{f.name} must be {_kind_name(kind)}, not {value!r}"))
        elif f.option.choices is not None and value not in f.option.choices:
            problems.append((f.name, f"{f.name} {value!r} must be one of: {', '.join(f.option.choices)}"))
    return problems


def _kind_name(kind: type) -> str:
    words = {str: "a string", int: "an integer", bool: "true or false", list: "a list of strings", dict: "a map"}
    return words.get(kind, kind.__name__)
