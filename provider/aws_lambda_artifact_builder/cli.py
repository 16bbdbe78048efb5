"""``alab``: the command line over the core workflow (``alab layer plan`` and ``alab layer deploy``).

Flags mirror ``plan_layer``/``deploy_layer``; defaults come from ``[tool.aws_lambda_artifact_builder]``
in the project's ``pyproject.toml``, so a CI job runs ``alab layer deploy`` with no flags at all.
Progress goes to stderr and the result to stdout (``--json`` for machines). Errors are one
line on stderr and an exit code per error class (``errors.EXIT_CODES``), never a traceback (``--debug`` shows it). The index password
is never a flag, so it never shows up in a process list: it is read from an environment
variable (``ALAB_INDEX_PASSWORD`` unless ``index_password_env`` names another ``ALAB_*`` or
``*_INDEX_PASSWORD`` variable; never an AWS credential) or from a ``Credentials`` JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from .cli_targets import (  # [store]
    ReadPlace,
    add_push_command,
    add_target_arguments,
    cmd_layer_push,
    deploy_to_targets,
    plan_targets,
    read_place,
)
from .console import ConsoleOutput
from .constants import DEFAULT_ARCHITECTURE, DEFAULT_BUILD_IN, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from .errors import EXIT_CODES_HELP, BuildError, LayerError, exit_code, mask_url_credentials, redact, user_error
from .layer.clients import make_clients
from .layer.foundation import Credentials
from .layer.spec import SPEC_CLASSES, LayerSpec, SpecField, make_spec, spec_fields
from .progress import human_size, limit_size, parse_size
from .terraform_provider.install import add_terraform_commands

CONFIG_TABLE = "aws_lambda_artifact_builder"
DEFAULT_PASSWORD_ENV = "ALAB_INDEX_PASSWORD"

#: Keys only the command line has (where AWS is, the index login), besides the layer's options.
CLI_ONLY_KEYS: dict[str, type] = {
    "region": str,
    "index_name": str,
    "index_url": str,
    "index_username": str,
    "index_password_env": str,
    "credentials_file": str,
    "targets": list,  # [store] [[tool.aws_lambda_artifact_builder.targets]] region, role_arn, s3dir
}

_TYPE_WORDS = {int: "a whole number", str: "a string", list: "a list", bool: "true or false"}


def config_keys(classes: Iterable[type] = SPEC_CLASSES) -> dict[str, type]:
    """Keys accepted in ``[tool.aws_lambda_artifact_builder]``, with the type each must have."""
    keys = {f.name: f.option.kind for f in spec_fields(classes) if f.option.config}
    return {**keys, **CLI_ONLY_KEYS}


CONFIG_KEYS: dict[str, type] = config_keys()

_LOCK_FILES = {tool.manifest_name: tool.value for tool in LayerBuildToolEnum}

#: The flag of each spec option whose flag is not ``--`` plus its name with dashes.
_FLAG_NAMES = {f.name: f.option.cli_flags(f.name)[0] for f in spec_fields(SPEC_CLASSES)}


class CliError(LayerError):
    """A mistake in the command line or the configuration table."""


def find_pyproject(start: Path) -> Path:
    """The nearest ``pyproject.toml`` from ``start`` upward, as git and ruff find their configuration."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    raise CliError(f"no pyproject.toml in {start} or any folder above it: run alab in your project or pass --project")


def _project_file(value: str | None) -> Path:
    if value is None:
        return find_pyproject(Path.cwd())
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "pyproject.toml"
    if not path.is_file():
        raise CliError(f"--project {value!r}: no pyproject.toml at {path}")
    return path.resolve()


def read_config(path_pyproject_toml: Path, keys: dict[str, type] = CONFIG_KEYS) -> dict[str, Any]:
    """``[tool.aws_lambda_artifact_builder]`` of a project, checked against ``keys`` (``config_keys()``)."""
    try:
        data = tomllib.loads(path_pyproject_toml.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:  # Recursion: nested thousands deep
        raise CliError(f"{path_pyproject_toml} is not valid UTF-8 TOML: {e}") from None
    tool = data.get("tool", {})
    config = tool.get(CONFIG_TABLE, {}) if isinstance(tool, dict) else None
    where = f"[tool.{CONFIG_TABLE}] in {path_pyproject_toml}"
    if not isinstance(config, dict):
        raise CliError(f"{where} must be a table")
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise CliError(f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(keys)}")
    for key, value in config.items():
        if key in SIZE_KEYS and isinstance(value, str):
            config[key] = value = _config_size(where, key, value)
        expected = keys[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise CliError(f"{where}: {key} must be {_TYPE_WORDS[expected]}, not {value!r}")
    return dict(config)


#: Options that are sizes in bytes: flags and keys also take ``250MB`` / ``250MiB`` (``progress.parse_size``).
SIZE_KEYS = frozenset({"unzipped_size_limit"})


def _config_size(where: str, key: str, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise CliError(f"{where}: {key} {e}") from None


def _size_argument(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _guess_tool(path_pyproject_toml: Path) -> str:
    """The tool whose lock file the project has; when there is none or several, which ones and what to do."""
    folder = path_pyproject_toml.parent
    found = [name for name in _LOCK_FILES if (folder / name).is_file()]
    if len(found) == 1:
        return _LOCK_FILES[found[0]]
    set_it = f"pass --tool or set tool in [tool.{CONFIG_TABLE}] of {path_pyproject_toml}"
    if not found:
        raise CliError(f"no lock file in {folder} (looked for {', '.join(_LOCK_FILES)}): lock the project or {set_it}")
    choices = " or ".join(_LOCK_FILES[name] for name in found)
    raise CliError(f"found {' and '.join(found)} in {folder}, cannot choose: {set_it} ({choices})")


#: Environment variables that must never be sent to an index as its password, whatever their name.
_NEVER_PASSWORD_ENV = re.compile(r"AWS_.*|.*(SECRET_ACCESS_KEY|SESSION_TOKEN|ACCESS_KEY_ID)")


def check_password_env_name(name: object) -> str:
    """The variable ``index_password_env`` names, if it is one named for the purpose.

    The password is sent as basic auth to ``index_url``: a configuration change alone must not be
    able to send ``AWS_SECRET_ACCESS_KEY`` (or any other secret of the environment) to some host.
    Only ``ALAB_*`` and ``*_INDEX_PASSWORD`` names are accepted, never an AWS credential variable.
    """
    if (
        not isinstance(name, str)
        or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
        or _NEVER_PASSWORD_ENV.fullmatch(name)
        or not (name.startswith("ALAB_") or name.endswith("_INDEX_PASSWORD"))
    ):
        raise CliError(
            f"index_password_env {name!r} is not a variable named for an index password: use ALAB_<NAME> or "
            f"<NAME>_INDEX_PASSWORD (default {DEFAULT_PASSWORD_ENV}); AWS credential variables are never sent"
        )
    return name


def _credentials(settings: dict[str, Any]) -> Credentials | None:
    env_name = check_password_env_name(settings.get("index_password_env") or DEFAULT_PASSWORD_ENV)
    if settings.get("credentials_file"):
        path = Path(settings["credentials_file"]).expanduser()
        try:
            return Credentials.load(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CliError(f"credentials_file {str(path)!r} is not a readable credentials JSON file: {e}") from None
    if not settings.get("index_url"):
        return None
    password = os.environ.get(env_name)
    username = settings.get("index_username")
    if not username or password is None:
        raise CliError(
            f"index_url {mask_url_credentials(settings['index_url'])!r} needs index_username and the password in "
            f"the environment variable {env_name}"
        )
    return Credentials(
        index_name=settings.get("index_name") or "private",
        index_url=settings["index_url"],
        username=username,
        password=password,
    )


#: What ``plan`` and ``deploy`` need besides the project; ``build`` needs neither, ``list`` only the folder.
LAYER_REQUIRED: tuple[str, ...] = ("layer_name", "s3dir_lambda")


def resolve_settings(args: argparse.Namespace, required: Iterable[str] = LAYER_REQUIRED) -> dict[str, Any]:
    """Flags over the project's configuration table over built-in defaults; ``required`` ones checked."""
    path = _project_file(args.project)
    keys = config_keys(spec_classes(args))
    config = read_config(path, keys)
    settings: dict[str, Any] = dict(config)
    args._flags = getattr(args, "_flags", {})  # which settings came from flags, to name them so in errors
    for key in keys:
        value = getattr(args, key, None)
        if value is not None and value != []:
            settings[key] = value
            args._flags[key] = _FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
    settings["path_pyproject_toml"] = path
    settings.setdefault("python_version", DEFAULT_PYTHON_VERSION)
    settings.setdefault("architecture", DEFAULT_ARCHITECTURE)
    settings.setdefault("build_in", DEFAULT_BUILD_IN)
    flags = {"layer_name": "--layer-name", "s3dir_lambda": "--s3dir"}
    for key, flag in flags.items():
        if key in required and not settings.get(key):
            raise CliError(f"{key} is required: pass {flag} or set {key} in [tool.{CONFIG_TABLE}] of {path}")
    if not settings.get("tool"):
        settings["tool"] = _guess_tool(path)
    return settings


# ---------------------------------------------------------------------------- commands
def _one_region(settings: dict[str, Any], args: argparse.Namespace) -> str | None:
    """The region of a command that works in one place (deploy, push and plan take several targets)."""
    region = settings.get("region")
    if getattr(args, "role_arn", None):
        raise CliError("--role-arn works with `alab layer deploy`, `alab layer push` and `alab layer plan` only")
    if getattr(args, "from_store", False):
        raise CliError("--from-store works with `alab layer deploy` only")
    if isinstance(region, list):
        if len(region) > 1:
            raise CliError(
                "--region more than once works with `alab layer deploy`, `alab layer push` and `alab layer plan` only"
            )
        region = region[0] if region else None
    return region


def _clients(settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    s3_client, lambda_client = make_clients(region=_one_region(settings, args), endpoint_url=args.endpoint_url)
    return {"s3_client": s3_client, "lambda_client": lambda_client}


def spec_classes(args: argparse.Namespace) -> tuple[type, ...]:
    """The spec the command line was generated from (``build_parser(classes)``)."""
    classes: tuple[type, ...] = getattr(args, "_spec_classes", SPEC_CLASSES)
    return classes


def layer_spec(settings: dict[str, Any], args: argparse.Namespace) -> LayerSpec:
    """The :class:`LayerSpec` the settings (flags over the configuration table) describe."""
    return make_spec(settings, spec_classes(args))[0]


def _check_deploy_options(settings: dict[str, Any], args: argparse.Namespace) -> None:
    """The options only a deploy uses (``keep_last``, ``permissions``, ``build_in``, the size limit), checked
    as a deploy checks them: a plan saying "no change" for a deploy that fails would mislead. The lock is
    left to the plan (read once): the spec is checked here without its path. So is the s3dir, which may hold
    ``{region}``/``{account}`` until each target's plan fills them in."""
    from .errors import LayerInputError
    from .layer.inputs import check_spec

    spec, options = make_spec(settings, spec_classes(args))
    problems, _ = check_spec(dataclasses.replace(spec, path_pyproject_toml=""), options)
    deploy_only = [(name, reason) for name, reason in problems if name not in ("path_pyproject_toml", "s3dir_lambda")]
    if deploy_only:
        raise LayerInputError(deploy_only)


def cmd_layer_plan(args: argparse.Namespace, out: Any, err: Any) -> int:
    from .layer.workflow import plan as core_plan

    settings = resolve_settings(args)
    _check_deploy_options(settings, args)
    targets = plan_targets(args, settings)  # [store] several regions or accounts: one plan each
    if targets is not None:
        if args.json:
            print(json.dumps([{"target": label, **plan.to_dict()} for label, plan in targets], indent=2), file=out)
        else:
            for label, plan in targets:
                _print_plan(plan, out, where=f" in {label}")
        return 2 if args.detailed_exitcode and any(plan.changed for _, plan in targets) else 0
    layer_plan = core_plan(layer_spec(settings, args), **_clients(settings, args))
    if args.json:
        print(json.dumps(layer_plan.to_dict(), indent=2), file=out)
    else:
        _print_plan(layer_plan, out)
    if args.detailed_exitcode and layer_plan.changed:
        return 2
    return 0


def _print_plan(plan: Any, out: Any, where: str = "") -> None:
    state = "CHANGE" if plan.changed else "no change"
    print(f"Layer {plan.layer_name}{where}: {state}: {plan.reason}", file=out)
    print(f"  fingerprint  {plan.fingerprint}", file=out)
    if plan.recorded_fingerprint and plan.recorded_fingerprint != plan.fingerprint:
        print(f"  recorded     {plan.recorded_fingerprint}", file=out)
    if plan.current_layer_version_arn:
        print(f"  current      {plan.current_layer_version_arn}", file=out)
    for line in plan.package_changes.lines():
        print(f"  {line}", file=out)
    if plan.changed and plan.package_changes.is_empty:
        print("  (no package version changed)", file=out)


def cmd_layer_deploy(args: argparse.Namespace, out: Any, err: Any) -> int:
    settings = resolve_settings(args)
    credentials = _credentials(settings)
    args._secret = credentials.password if credentials else None
    # [store] every deploy goes through the artifact store, to one or more targets (cli_targets.py)
    deployment = deploy_to_targets(args, settings, credentials, out, err)
    if deployment is None:
        return int(getattr(args, "_targets_failed", 0))  # [store] the failed targets' exit code (0: none failed)
    if args.json:
        print(json.dumps(deployment.to_dict(), indent=2), file=out)
    else:
        action = "Published" if deployment.published else "Adopted" if deployment.adopted else "Unchanged"
        print(f"{action}: {deployment.layer_name} version {deployment.layer_version}", file=out)
        print(f"  {deployment.layer_version_arn}", file=out)
        print(f"  manifest  {deployment.s3uri_manifest}", file=out)
        if deployment.deleted_versions:
            print(f"  deleted   versions {', '.join(map(str, deployment.deleted_versions))} (keep_last)", file=out)
    return 0


# ---------------------------------------------------------------------------- build, list, diff, sbom, clean
@contextlib.contextmanager
def _build_folder_held(path_pyproject_toml: Path, *, wait: bool) -> Iterator[Path]:
    """The project's build folder, held as a deploy holds it (``flock`` on ``build/lambda/layer-build.lock``,
    see ``workflow.py``): a build or clean never pulls the tree from under a deploy, nor the reverse."""
    import fcntl

    from .layer.foundation import LayerPathLayout

    layout = LayerPathLayout(path_pyproject_toml=path_pyproject_toml)
    layout.dir_build_lambda.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.dir_build_lambda / "layer-build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise CliError(
                    f"a deploy or build is using {layout.dir_build_lambda_layer} right now; try again once it is done"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield layout.dir_build_lambda_layer
    finally:
        os.close(fd)


def cmd_layer_build(args: argparse.Namespace, out: Any, err: Any) -> int:
    """Build and package the layer as a deploy would, and report its size; no AWS request at all."""
    if args.push:  # [store] the build half of a build/deploy split, as `alab layer push`
        return cmd_layer_push(args, out, err)
    from .layer.evidence import write_local_sbom
    from .layer.inputs import local_fingerprint
    from .layer.target import LayerTarget

    settings = resolve_settings(args, required=())
    credentials = _credentials(settings)
    args._secret = credentials.password if credentials else None
    spec = layer_spec(settings, args)
    target = LayerTarget(python_version=spec.python_version, architecture=spec.architecture)
    path = settings["path_pyproject_toml"]
    fingerprint = local_fingerprint(
        path_pyproject_toml=path,
        tool=spec.tool,
        python_version=target.python_version,
        architecture=target.architecture,
        ignore_packages=spec.ignore_packages,
        packaging_options=spec.packaging_options,
    )
    with _build_folder_held(path, wait=True):
        info = _build_and_zip(spec, path, target, credentials)
        sbom = write_local_sbom(info, path_pyproject_toml=path, tool=spec.tool, target=target)
    _print_build_report(out, args.json, info, spec, target, fingerprint, sbom)
    return 0


def _build_and_zip(spec: LayerSpec, path: Path, target: Any, credentials: Credentials | None) -> Any:
    """A deploy's build (``workflow.build_and_package``) without AWS, after the same check of the lock."""
    from .constants import LayerBuildToolEnum
    from .layer.manifest import read_local_manifest
    from .layer.workflow import BuildSettings, build_and_package, check_build_possible_for

    manifest = read_local_manifest(path, spec.tool, target)
    settings = BuildSettings(spec.build_in, credentials, spec.image, spec.container_runtime)
    check_build_possible_for(manifest, target, settings)
    return build_and_package(
        manifest, LayerBuildToolEnum(spec.tool), target, path, settings,
        ignore_packages=spec.ignore_packages, packaging_options=spec.packaging_options,
    )  # fmt: skip


def _print_build_report(
    out: Any, as_json: bool, info: Any, spec: LayerSpec, target: Any, fingerprint: str, sbom: Path
) -> None:
    """What ``alab layer build`` made: sizes against Lambda's limit, digests, the largest distributions."""
    if as_json:
        result = {
            "zip": str(info.path),
            "sha256": info.sha256,
            "code_sha256": info.code_sha256,
            "zipped_size": info.zipped_size,
            "unzipped_size": info.unzipped_size,
            "file_count": info.file_count,
            "fingerprint": fingerprint,
            "runtime": target.runtime,
            "architecture": target.architecture,
            "largest_distributions": [{"name": n, "size": s} for n, s in info.largest_distributions],
            "excluded": info.excluded,
            "sbom": str(sbom),
        }
        print(json.dumps(result, indent=2), file=out)
        return
    limit = spec.packaging_options.unzipped_size_limit
    print(f"Built {info.path}", file=out)
    print(f"  target       {target.runtime} {target.architecture} ({spec.tool}, {spec.build_in})", file=out)
    print(
        f"  size         {human_size(info.zipped_size)} zipped, {human_size(info.unzipped_size)} unzipped "
        f"({info.unzipped_size / limit:.0%} of the {limit_size(limit)} limit), {info.file_count} files",
        file=out,
    )
    print(f"  sha256       {info.sha256}", file=out)
    print(f"  fingerprint  {fingerprint}", file=out)
    print(f"  sbom         {sbom}", file=out)
    if info.largest_distributions:
        print("  largest:", file=out)
        for name, size in info.largest_distributions:
            print(f"    {human_size(size):>9}  {name}", file=out)
    if info.excluded:
        print(f"  excluded     {', '.join(info.excluded)}", file=out)


def _history_layout(settings: dict[str, Any], place: ReadPlace) -> tuple[Any, str]:
    from .layer.foundation import LayerS3Layout, coerce_tool

    return LayerS3Layout(s3dir_lambda=place.s3dir_lambda), coerce_tool(settings["tool"]).manifest_name


def _recorded_dependencies(record: Any, path_pyproject_toml: Path) -> dict[str, str]:
    """The runtime set a recorded manifest pins for the record's own target, read as a plan reads it."""
    from .layer.manifest import recorded_runtime_set
    from .layer.target import LayerTarget

    target = LayerTarget(python_version=record.python_version, architecture=record.architecture)
    return dict(recorded_runtime_set(record.tool, record.manifest_content, path_pyproject_toml, target).dependencies)


def _provenance_summary(s3_client: Any, layout: Any, version: int) -> dict[str, str] | None:
    """Where, with what and from where a version was built, as its ``provenance.json`` says (``None``: none)."""
    from .layer.history import PROVENANCE_NAME, read_version_file

    data = read_version_file(s3_client=s3_client, layout=layout, version=version, name=PROVENANCE_NAME)
    try:
        provenance: Any = json.loads(data) if data is not None else None
        build, tool, builder = provenance["build"], provenance["tool"], provenance["builder"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # absent or unreadable: informative only, the record is what counts
    container = build.get("container") or {}
    return {
        "build_place": str(build.get("place")) + (f" ({container.get('image')})" if container else ""),
        "builder": f"{builder.get('name')} {builder.get('version')}",
        "tool": f"{tool.get('name')} {tool.get('version')}",
        "from_store": str(build.get("artifact_store") or ""),
    }


def _list_rows(args: argparse.Namespace, settings: dict[str, Any], place: ReadPlace) -> tuple[list[Any], Any, str]:
    from .layer.history import list_recorded_versions

    layout, manifest_name = _history_layout(settings, place)
    versions = list_recorded_versions(s3_client=place.s3_client, layout=layout, manifest_name=manifest_name)
    rows = []
    for item in versions:
        try:
            count: int | None = len(_recorded_dependencies(item.record, settings["path_pyproject_toml"]))
        except LayerError:
            count = None  # a manifest this project can no longer read: shown as unknown
        row = {**item.to_dict(), "package_count": count}
        if args.provenance:
            summary = _provenance_summary(place.s3_client, layout, row["layer_version"]) if row["provenance"] else None
            row["provenance_summary"] = summary
        rows.append(row)
    return rows, layout, manifest_name


def cmd_layer_list(args: argparse.Namespace, out: Any, err: Any) -> int:
    """The versions the S3 records hold, oldest first (S3 only: what each was built from); ``--provenance``
    adds how each was built (one more S3 read per version)."""
    settings = resolve_settings(args, required=())
    place = read_place(args, settings)
    rows, layout, manifest_name = _list_rows(args, settings, place)
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    where = layout.s3dir_layer.uri + (f" ({place.label})" if place.label else "")
    if not rows:
        print(f"No version is recorded in {where} for {manifest_name}", file=out)
        return 0
    print(f"Versions recorded in {where} ({manifest_name}):", file=out)
    header = ("VERSION", "RECORDED (UTC)", "FINGERPRINT", "SIZE", "PACKAGES", "SBOM", "PROVENANCE", "ARN")
    extra = ("BUILT IN", "BUILDER", "TOOL", "FROM STORE") if args.provenance else ()
    table = [header + extra]
    for row in rows:
        recorded = dt.datetime.fromisoformat(row["recorded_at"]).astimezone(dt.UTC)
        cells = (
            str(row["layer_version"]),
            recorded.strftime("%Y-%m-%d %H:%M:%S"),
            row["fingerprint"][:12],
            human_size(row["code_size"]),
            "?" if row["package_count"] is None else str(row["package_count"]),
            "yes" if row["sbom"] else "no",
            "yes" if row["provenance"] else "no",
            row["layer_version_arn"],
        )
        summary = row.get("provenance_summary") or {}
        more = (summary.get("build_place", "?"), summary.get("builder", "?"), summary.get("tool", "?"))
        table.append(
            cells + ((*more, "yes" if summary.get("from_store") else "no" if summary else "?") if extra else ())
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=False)).rstrip(), file=out)
    return 0


def _version_argument(value: str) -> int | str:
    """``local`` or a version number (``3``, ``v3``)."""
    text = value.strip().lower()
    if text == "local":
        return "local"
    number = text[1:] if text.startswith("v") else text
    if number.isdigit() and int(number) >= 1:
        return int(number)
    raise argparse.ArgumentTypeError(f"{value!r} is neither a layer version number (1, 2, …) nor 'local'")


def _version_number(value: str) -> int:
    """A recorded version number (``3``, ``v3``)."""
    which = _version_argument(value)
    if isinstance(which, int):
        return which
    raise argparse.ArgumentTypeError("a version number is needed here (alab layer list shows them), not 'local'")


def _dependencies_of(which: int | str, settings: dict[str, Any], place: ReadPlace | None) -> dict[str, str]:
    from .layer.history import read_version_record
    from .layer.manifest import read_local_manifest
    from .layer.target import LayerTarget

    if which == "local":
        target = LayerTarget(python_version=settings["python_version"], architecture=settings["architecture"])
        return dict(read_local_manifest(settings["path_pyproject_toml"], settings["tool"], target).dependencies)
    assert isinstance(which, int) and place is not None
    layout, manifest_name = _history_layout(settings, place)
    record = read_version_record(s3_client=place.s3_client, layout=layout, version=which, manifest_name=manifest_name)
    if record is None:
        where = layout.get_s3path_versioned_manifest(which, manifest_name).uri
        raise CliError(f"version {which} is not recorded: no {where} (alab layer list shows the recorded versions)")
    return _recorded_dependencies(record, settings["path_pyproject_toml"])


def cmd_layer_diff(args: argparse.Namespace, out: Any, err: Any) -> int:
    """Which packages differ between two recorded versions, or a version and the local lock."""
    from .layer.manifest import diff_dependencies

    needs_s3 = any(isinstance(v, int) for v in (args.old, args.new))
    settings = resolve_settings(args, required=())
    place = read_place(args, settings) if needs_s3 else None
    changes = diff_dependencies(
        _dependencies_of(args.old, settings, place), _dependencies_of(args.new, settings, place)
    )
    old, new = (f"version {v}" if isinstance(v, int) else "the local lock" for v in (args.old, args.new))
    if args.json:
        print(json.dumps({"old": args.old, "new": args.new, "package_changes": changes.to_dict()}, indent=2), file=out)
        return 0
    if changes.is_empty:
        print(f"No package differs between {old} and {new}", file=out)
        return 0
    count = len(changes.lines())
    print(f"{count} package{'' if count == 1 else 's'} differ from {old} to {new}:", file=out)
    for line in changes.lines():
        print(f"  {line}", file=out)
    return 0


def cmd_layer_sbom(args: argparse.Namespace, out: Any, err: Any) -> int:
    """Print the CycloneDX SBOM stored with a version (``layer/NNNNNN/sbom.cdx.json``)."""
    from .layer.history import SBOM_NAME, read_version_file

    settings = resolve_settings(args, required=())
    place = read_place(args, settings)
    layout, _ = _history_layout(settings, place)
    s3_client = place.s3_client
    name = SBOM_NAME if not args.provenance else "provenance.json"
    data = read_version_file(s3_client=s3_client, layout=layout, version=args.version, name=name)
    if data is None:
        where = layout.get_s3path_version_file(args.version, name).uri
        raise CliError(
            f"version {args.version} has no {'SBOM' if not args.provenance else 'provenance record'} at {where}: "
            f"it was published before they were recorded, adopted without a build, or is not recorded here"
        )
    out.write(data.decode("utf-8"))
    if not data.endswith(b"\n"):
        out.write("\n")
    return 0


def cmd_layer_clean(args: argparse.Namespace, out: Any, err: Any) -> int:
    """Remove the build folder (``build/lambda/layer``) and nothing else; refuse while a deploy builds there."""
    import shutil

    from .layer.foundation import LayerPathLayout

    path = _project_file(args.project)
    folder = LayerPathLayout(path_pyproject_toml=path).dir_build_lambda_layer
    if not folder.exists():
        print(f"Nothing to clean: {folder} does not exist", file=out)
        return 0
    with _build_folder_held(path, wait=False):
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(folder)
    print(f"Removed {folder} ({human_size(size)})", file=out)
    return 0


def _add_build_command(layer_commands: Any, add_layer_options: Any) -> None:
    """``alab layer build [--push]``: the deploy's build and packaging, with no AWS unless pushed."""
    build = layer_commands.add_parser(
        "build",
        help="build and package the layer and report its size (no AWS)",
        description="Build and package the layer exactly as a deploy would, into build/lambda/layer/layer.zip, "
        "with its SBOM beside it; no AWS request is made, so no credentials or region are needed.",
    )
    add_layer_options(build, groups=BUILD_GROUPS)
    build.add_argument(
        "--push",
        action="store_true",
        help="store the zip in the targets' artifact store instead (as `alab layer push`; needs AWS), "
        "for a later `alab layer deploy --from-store`",
    )
    build.set_defaults(handler=cmd_layer_build)


def add_layer_commands(layer_commands: Any, add_layer_options: Any) -> None:
    """``alab layer build|list|diff|sbom|clean``: the commands besides plan and deploy."""
    _add_build_command(layer_commands, add_layer_options)
    listing = layer_commands.add_parser(
        "list",
        help="the published versions the S3 records hold",
        description="The versions recorded in S3 for this layer, newest last: date, fingerprint, size, package "
        "count, SBOM and ARN (--json for machines). Reads S3 and Lambda; builds nothing.",
    )
    listing.add_argument(
        "--provenance",
        action="store_true",
        help="also show how each version was built: build place, builder, tool, from the artifact store",
    )
    add_layer_options(listing, groups=RECORD_GROUPS)
    listing.set_defaults(handler=cmd_layer_list)

    diff = layer_commands.add_parser(
        "diff",
        help="package diff between two recorded versions, or a version and the local lock",
        description="Package diff between two recorded versions (alab layer diff 3 5) or a recorded version and "
        "the local lock (alab layer diff 3 local).",
    )
    diff.add_argument("old", type=_version_argument, metavar="A", help="a recorded version number, or 'local'")
    diff.add_argument("new", type=_version_argument, metavar="B", help="a recorded version number, or 'local'")
    add_layer_options(diff, groups=RECORD_GROUPS)
    diff.set_defaults(handler=cmd_layer_diff)

    sbom = layer_commands.add_parser(
        "sbom",
        help="print the CycloneDX SBOM recorded with a version",
        description="Print the CycloneDX 1.6 SBOM a deploy stored with a version (layer/NNNNNN/sbom.cdx.json), "
        "or with --provenance how that version was built.",
    )
    sbom.add_argument("version", type=_version_number, metavar="VERSION", help="a recorded version number")
    sbom.add_argument("--provenance", action="store_true", help="print the version's provenance record instead")
    add_layer_options(sbom, groups=RECORD_GROUPS)
    sbom.set_defaults(handler=cmd_layer_sbom)

    clean = layer_commands.add_parser(
        "clean",
        help="remove the build folder (build/lambda/layer), nothing else",
        description="Remove the build folder, build/lambda/layer (the installed packages and the zip); the lock-"
        "reading cache and everything else stay. Refused while a deploy builds there.",
    )
    clean.add_argument("--project", help="the project's pyproject.toml or its folder (default: the nearest one upward)")
    clean.set_defaults(handler=cmd_layer_clean)


# ---------------------------------------------------------------------------- parser
def _package_version() -> str:
    """The installed distribution's version (its metadata, so it is the one pip reports)."""
    try:
        return importlib.metadata.version("aws-lambda-artifact-builder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other error: exit 2 means "changed" under --detailed-exitcode."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(1, f"error: {self.prog}: {message}\n")


#: Words that keep their capital at the start of a flag's help.
_PROPER_WORDS = frozenset({"Lambda", "Python", "AWS", "S3", "IAM", "SBOM", "CycloneDX"})


def _help_text(text: str) -> str:
    """The spec's help (a sentence, for Terraform and Pulumi docs) in --help's style: lower case, no full stop."""
    first = text.split(" ", 1)[0].rstrip(":,")
    if first not in _PROPER_WORDS and first[1:].islower():
        text = text[0].lower() + text[1:]
    return text[:-1] if text.endswith(".") else text


def _add_spec_argument(p: argparse.ArgumentParser, field: SpecField) -> None:
    """The flag of one spec option; its default is ``None`` so the configuration table shows through."""
    opt = field.option
    kwargs: dict[str, Any] = {"dest": opt.dest or field.name, "help": _help_text(opt.help)}
    if opt.kind is list:
        kwargs.update(action="append", default=[], metavar=opt.metavar or "VALUE")
    elif opt.kind is bool:
        kwargs.update(action=argparse.BooleanOptionalAction, default=None)
    elif field.name in SIZE_KEYS:
        kwargs.update(type=_size_argument, metavar="SIZE")
    else:
        kwargs.update(type=opt.kind, choices=opt.choices, metavar=opt.metavar)
    p.add_argument(*opt.cli_flags(field.name), **kwargs)


#: The flag groups of the layer commands, in --help order; each command shows those it uses.
ALL_GROUPS: tuple[str, ...] = ("layer", "build", "deploy", "index", "aws")
#: What the commands that read the S3 records use (list, diff, sbom): where the layer and its record are.
RECORD_GROUPS: tuple[str, ...] = ("layer", "aws")
#: What a build uses (build, push): no retention or grants.
BUILD_GROUPS: tuple[str, ...] = ("layer", "build", "index", "aws")
_GROUP_TITLES = {
    "layer": "the layer and its record",
    "build": "how the layer is built and packaged",
    "deploy": "what a deploy does with the versions",
    "index": "a private package index",
    "aws": "AWS",
}


def _group_of(field: SpecField) -> str:
    from .layer.spec import DeployOptions

    if field.name in {f.name for f in dataclasses.fields(DeployOptions)}:
        return "deploy"
    if field.option.packaging or "plan" not in field.option.commands or field.name == "ignore_packages":
        return "build"
    return "layer"


def _add_index_options(p: Any) -> None:
    p.add_argument("--index-name", dest="index_name", help="name of the private index (default: private)")
    p.add_argument("--index-url", dest="index_url", help="private index URL, without login")
    p.add_argument("--index-username", dest="index_username", help="login name for --index-url")
    p.add_argument(
        "--index-password-env",
        dest="index_password_env",
        metavar="VAR",
        help=f"environment variable holding the index password (default: {DEFAULT_PASSWORD_ENV})",
    )
    p.add_argument(
        "--credentials-file",
        dest="credentials_file",
        metavar="FILE",
        help="JSON file with the private index's login (index_name, index_url, username, password; mode 0600)",
    )


def _add_layer_options(p: argparse.ArgumentParser, classes: Iterable[type], groups: Sequence[str] = ALL_GROUPS) -> None:
    """The flags of a layer command, in titled groups: the spec's options (one ``[tool.aws_lambda_artifact_builder]``
    table serves every command), the index login and where AWS is. ``groups`` names those the command uses;
    ``plan`` takes deploy's (it checks them as deploy would, though it builds nothing)."""
    sections = {name: p.add_argument_group(_GROUP_TITLES[name]) for name in ALL_GROUPS if name in groups}
    for field in spec_fields(classes):
        group = sections.get(_group_of(field))
        if field.option.commands and group is not None:
            _add_spec_argument(cast(Any, group), field)
    if "index" in sections:
        _add_index_options(sections["index"])
    # [store] --region once per region and --role-arn once per account (layer/targets.py): deploy and push
    # publish to each; the other commands take one region of the caller's account.
    add_target_arguments(cast(Any, sections["aws"]))
    sections["aws"].add_argument("--endpoint-url", help="AWS endpoint (default: boto3's, e.g. AWS_ENDPOINT_URL)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_output_options(p)


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``-v`` and ``--quiet`` for a command (also accepted before it: ``alab -v layer deploy``)."""
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also show the installer's command and output and every step's detail",
    )
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="only warnings and errors")


def build_parser(classes: Iterable[type] = SPEC_CLASSES) -> argparse.ArgumentParser:
    """The whole command line; the layer's flags come from the spec ``classes`` (``layer/spec.py``)."""
    classes = tuple(classes)
    parser = _Parser(prog="alab", description="Build and publish AWS Lambda dependency layers.", epilog=EXIT_CODES_HELP)
    parser.set_defaults(_spec_classes=classes)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    add_output_options(parser)
    parser.add_argument("--version", action="version", version=f"alab {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    layer = commands.add_parser(
        "layer",
        help="plan, build, deploy and inspect a dependency layer",
        description="A Lambda dependency layer built from the project's lock: plan (would a deploy publish?), "
        "deploy (publish only when the dependencies changed), build (no AWS), push (build into the artifact "
        "store), list, diff and sbom (what the S3 records hold) and clean (the build folder).",
    )
    layer_commands = layer.add_subparsers(dest="layer_command", required=True, metavar="ACTION")

    plan = layer_commands.add_parser(
        "plan",
        help="would a deploy publish? (no build, no write)",
        description="Would a deploy publish, and why? It takes every flag deploy takes (one set of flags and "
        "configuration keys for every command) and ignores those only a build or a publish uses.",
    )
    _add_layer_options(plan, classes)
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 for no change, 2 for a change, 1 or 3-6 for an error (see alab --help)",
    )
    plan.set_defaults(handler=cmd_layer_plan)

    deploy = layer_commands.add_parser(
        "deploy",
        help="publish a new version if the dependencies changed",
        description="Build, package, upload and publish a new layer version when the runtime dependencies "
        "changed since the version recorded in S3; otherwise do nothing (one S3 request).",
    )
    _add_layer_options(deploy, classes)
    deploy.set_defaults(handler=cmd_layer_deploy)
    add_layer_commands(layer_commands, functools.partial(_add_layer_options, classes=classes))
    add_push_command(layer_commands, functools.partial(_add_layer_options, classes=classes))  # [store]
    add_terraform_commands(commands)
    return parser


def _one_line(message: str, secret: str | None) -> str:
    text = " | ".join(line.strip() for line in str(message).splitlines() if line.strip())
    return redact(text, [secret])


def _in_cli_terms(message: str, flags: dict[str, str]) -> str:
    """An input named as the user gave it: ``keep_last 0 must …`` reads ``--keep-last 0 must …`` when the
    value came from that flag (from pyproject.toml, the key is the right name already)."""
    parts = message.split("; ")
    for i, part in enumerate(parts):
        for key, flag in flags.items():
            if part.startswith(f"{key} "):
                parts[i] = flag + part[len(key) :]
    return "; ".join(parts)


def _short_build_error(message: str, verbose: bool) -> str:
    """A failed command as what failed and its last line (the cause or the hint): its output, already
    streamed with ``-v``, would make one line of thousands of characters."""
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) <= 2:
        return message
    more = "" if verbose else " (rerun with -v for the command and its output)"
    return f"{lines[0]} | {lines[-1].strip()}{more}"


def _user_error(error: Exception) -> BaseException:
    """botocore's own failures (no credentials, no region, expired, a refusal) as one line naming the fix."""
    return user_error(error)


def main(argv: Sequence[str] | None = None, classes: Iterable[type] = SPEC_CLASSES) -> int:
    """Run ``alab``; ``classes`` is the spec its layer flags and calls come from (a test extends it)."""
    parser = build_parser(classes)
    args = parser.parse_args(argv)
    args._secret = None
    args._flags = {}
    output = ConsoleOutput(
        sys.stderr,
        verbose=getattr(args, "verbose", False),
        quiet=getattr(args, "quiet", False),
        secrets=lambda: [args._secret],
    )
    try:
        with output:
            return int(args.handler(args, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (LayerError, ClientError, BotoCoreError, OSError) as e:
        if args.debug:
            raise
        mapped = _user_error(e)
        message = _in_cli_terms(str(mapped), args._flags)
        if isinstance(e, BuildError):
            message = _short_build_error(message, getattr(args, "verbose", False))
        print(f"error: {_one_line(message, args._secret)}", file=sys.stderr)
        return exit_code(mapped)  # one per error class: errors.EXIT_CODES
    except Exception as e:
        if args.debug:
            raise
        detail = _one_line(f"{type(e).__name__}: {e}", args._secret)
        print(f"error: unexpected {detail} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
