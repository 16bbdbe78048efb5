"""The install planner (pure, no I/O but reading a manifest's runtime set): which pins a layer
installs, from which index, with which hashes, and the exact commands that install them.

1. ``pins_for_manifest(manifest) -> list[LockedPin]`` gives the index pins of a ``LocalManifest``'s
   runtime set (read through uv/poetry, see ``manifest``): version, the index the lock recorded
   (``None``: the tool's default / requirements.txt's own options), the locked sha256 hashes and the
   file names the lock lists (``None`` for requirements.txt). ``local_sources(manifest)`` are the
   workspace members, path and git dependencies that ``build.build_local_wheels`` builds on the host.
   ``locked_pins(*, tool, manifest_content, dependencies)`` is the older reader of the same facts
   from a lock's text.
2. ``plan_install_steps(*, tool, target, pins, dir_python, dir_work, python, tool_command=None,
   credentials=None, native=False, requirement_options=()) -> list[InstallStep]``
   ``dir_python``/``dir_work``/``python`` are paths *as the installer sees them* (host paths locally,
   ``/var/task/...`` in a container). ``native=False``: the installer runs on another platform than the
   target, so it selects target wheels only (pip ``--platform ... --implementation cp --python-version
   ... --only-binary=:all:``, uv ``--python-platform``/``--python-version``). ``native=True``: the installer
   runs on the target itself (a container with the target's Python): no platform flags, and sdists may
   be built. Every install is ``--no-deps`` over the pinned set (``--require-hashes`` when the lock has
   hashes), so nothing is ever re-resolved. pip and poetry locks install with pip, uv locks with uv
   (``installer_for``), except for an Amazon Linux 2 target (3.10/3.11, glibc 2.26) from another host:
   uv names no manylinux tag between 2_17 and 2_28, so pip takes the exact manylinux_2_26..2_5 list.
3. ``InstallStep`` (frozen, JSON-able through ``to_dict()``; never holds a secret):
   - ``description: str``          one line for progress output
   - ``argv: tuple[str, ...]``     the full command line (no secret, ever)
   - ``env: dict[str, str]``       variables to set in the child: isolation from the user's config
                                   (``PIP_CONFIG_FILE=os.devnull``, ``UV_NO_CONFIG=1``, ...) and index URLs
                                   without logins
   - ``unset_env: tuple[str, ...]`` prefixes of inherited variables to drop (``PIP_``, ``UV_``) except
                                   ``KEEP_ENV`` (TLS, cache, timeout settings)
   - ``secret_env_names: tuple[str, ...]`` variables whose values come from ``Credentials`` at run time:
                                   ``step.secret_env(credentials) -> dict[str, str]`` gives them
                                   (a container runner passes them by name: ``-e NAME``)
   - ``files: dict[str, str]``     files to write before running, path as the installer sees it ->
                                   text (the pinned requirements); never a secret
   - ``cwd: str | None``
4. ``pins_without_target_wheel(pins, target)`` / ``check_local_build_possible`` are the early "no wheel
   for this target" checks (from the files the lock lists); ``explain_install_failure(output, pins,
   target, tool)`` turns an installer's failing output into a hint. Running a plan is ``build``'s job.
5. ``local_wheel_command`` / ``sdist_wheel_command`` are the commands (argv, environment) that build a
   local source or an sdist-only pin into a wheel on the host (``build.build_local_wheels`` and
   ``build.build_sdist_wheels`` run them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..constants import LayerBuildToolEnum
from ..errors import LayerError, ManifestError, mask_url_credentials, redact
from ..progress import get_logger
from .foundation import Credentials, coerce_tool
from .manifest import LocalManifest
from .runtime_set import INDEX_OPTIONS, RuntimePackage, _load_toml, logical_lines
from .target import LayerTarget

#: Where an installer looks when the lock names no index.
PYPI_SIMPLE_URL = "https://pypi.org/simple/"

#: Inherited ``PIP_*``/``UV_*`` variables that only change transport (TLS, caches, timeouts), never
#: what gets installed; every other one is dropped from the child so a user's config cannot change
#: the layer.
KEEP_ENV: frozenset[str] = frozenset(
    {
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_CACHE_DIR",
        "PIP_NO_CACHE_DIR",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_TIMEOUT",
        "PIP_RETRIES",
        "PIP_PROXY",
        "PIP_TRUSTED_HOST",
        "UV_CACHE_DIR",
        "UV_NO_CACHE",
        "UV_NATIVE_TLS",
        "UV_SYSTEM_CERTS",
        "UV_HTTP_TIMEOUT",
        "UV_HTTP_RETRIES",
        "UV_CONCURRENT_DOWNLOADS",
        "UV_CONCURRENT_INSTALLS",
        "UV_INSECURE_HOST",
        "UV_OFFLINE",
    }
)

#: File the pinned requirements are written to, below ``dir_work``.
PINS_FILE_NAME = "layer-requirements.txt"
#: pip's ``--report`` of the install, beside the pins (the SBOM takes each installed wheel's sha256 from it).
INSTALL_REPORT_NAME = "install-report.json"
#: uv names a manylinux target by these glibc minors only (``--python-platform``).
_UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


# ---------------------------------------------------------------------------- target wheel tags
def target_platforms(target: LayerTarget) -> list[str]:
    """Every manylinux platform tag the target runtime's glibc accepts, newest first (pip needs them all)."""
    machine = target.machine
    major, newest = target.glibc
    oldest = 5 if machine == "x86_64" else 17
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    platforms = []
    for minor in range(newest, oldest - 1, -1):
        platforms.append(f"manylinux_{major}_{minor}_{machine}")
        if minor in aliases and (machine == "x86_64" or minor == 17):
            platforms.append(f"{aliases[minor]}_{machine}")
    return platforms


def uv_python_platform(target: LayerTarget) -> str:
    """uv's ``--python-platform``: the newest manylinux uv can name that the target's glibc accepts."""
    newest = max(m for m in _UV_MANYLINUX_MINORS if m <= target.glibc[1])
    return f"{target.machine}-manylinux_2_{newest}"


def target_tags(target: LayerTarget) -> frozenset[Tag]:
    """Wheel tags the target runtime can import: CPython ABI, abi3, pure Python, on its platforms."""
    version = tuple(int(p) for p in target.python_version.split("."))
    platforms = target_platforms(target)
    return frozenset(
        [
            *cpython_tags(python_version=version, abis=[target.abi], platforms=platforms),
            *compatible_tags(python_version=version, interpreter=target.abi, platforms=platforms),
        ]
    )


# ---------------------------------------------------------------------------- the locked pins
@dataclasses.dataclass(frozen=True)
class LockedPin:
    """One distribution of the runtime set, as the lock pins it."""

    name: str
    version: str
    #: The index the lock recorded; ``None``: the installer's default (or requirements.txt's own options).
    index_url: str | None = None
    #: ``sha256:<hex>`` of every file the lock allows for this pin.
    hashes: tuple[str, ...] = ()
    #: File names the lock lists (wheels and sdist); ``None`` when the manifest does not say (requirements.txt).
    filenames: tuple[str, ...] | None = None
    #: A wheel built from a local source (workspace member, path or git dependency), as the installer sees it.
    path: str | None = None

    def requirement_line(self, *, with_hashes: bool) -> str:
        line = f"{self.name} @ {PurePosixPath(self.path).as_uri()}" if self.path else f"{self.name}=={self.version}"
        if with_hashes:
            line += "".join(f" --hash={h}" for h in self.hashes)
        return line

    def has_wheel_for(self, tags: frozenset[Tag]) -> bool:
        for filename in self.filenames or ():
            if not filename.endswith(".whl"):
                continue
            try:
                _, _, _, wheel_tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            if wheel_tags & tags:
                return True
        return False


def normalize_index_url(url: str) -> str:
    """An index URL compared loosely: no login, no trailing slash, lower-case scheme and host."""
    parts = urlsplit(mask_url_credentials(url.strip()))
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{parts.path.rstrip('/')}"


def _same_pin(entry: Mapping[str, Any], name: str, version: str) -> bool:
    if canonicalize_name(str(entry.get("name", ""))) != name:
        return False
    try:
        return Version(str(entry.get("version"))) == Version(version)
    except InvalidVersion:
        return str(entry.get("version")) == version


def _uv_pin(entry: Mapping[str, Any], name: str, version: str, manifest: str, data: Mapping[str, Any]) -> LockedPin:
    source = entry.get("source", {})
    if "registry" not in source:
        kind = next(iter(source), "unknown")
        raise ManifestError(
            f"{manifest}: {name} {version} comes from a {kind} source; a layer installs only from indexes"
        )
    files = list(entry.get("wheels", [])) + ([entry["sdist"]] if "sdist" in entry else [])
    return LockedPin(
        name=name,
        version=version,
        index_url=str(source["registry"]),
        hashes=tuple(sorted({str(f["hash"]) for f in files if f.get("hash")})),
        filenames=tuple(unquote(PurePosixPath(urlsplit(str(f.get("url", f.get("path", "")))).path).name) for f in files)
        or None,
    )


def _poetry_pin(entry: Mapping[str, Any], name: str, version: str, manifest: str, data: Mapping[str, Any]) -> LockedPin:
    source = entry.get("source") or {}
    kind = source.get("type")
    if kind not in (None, "legacy"):
        raise ManifestError(
            f"{manifest}: {name} {version} comes from a {kind} source; a layer installs only from indexes"
        )
    files = entry.get("files")
    if files is None:  # lock-version 1.x keeps the files in [metadata.files]
        files = data.get("metadata", {}).get("files", {}).get(entry.get("name", name))
    return LockedPin(
        name=name,
        version=version,
        index_url=str(source["url"]) if kind == "legacy" else None,
        hashes=tuple(sorted({str(f["hash"]) for f in files or () if f.get("hash")})),
        filenames=tuple(str(f["file"]) for f in files) if files else None,
    )


_HASH = re.compile(r"--hash[=\s]+(\S+)")
_INDEX_OPTIONS = INDEX_OPTIONS
_LOGIN = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<login>[^/\s]*)@")
#: Variables through which the logins written inside requirements.txt reach pip (never argv, never a file).
REQUIREMENT_LOGIN_ENV_PREFIX = "ALAB_REQUIREMENTS_LOGIN_"


def _index_option_lines(manifest_content: bytes | str) -> list[str]:
    text = manifest_content.decode("utf-8-sig") if isinstance(manifest_content, bytes) else manifest_content
    lines = []
    for _, line in logical_lines(text.replace("\r\n", "\n")):
        if line.startswith("-") and re.split(r"[\s=]", line, maxsplit=1)[0] in _INDEX_OPTIONS:
            lines.append(line)
    return lines


def requirement_index_options(manifest_content: bytes | str, *, base_dir: Path | str | None = None) -> tuple[str, ...]:
    """The index option lines of a requirements.txt (``--index-url``, ``--find-links``, ...), in order.

    A login written inside a URL becomes ``${ALAB_REQUIREMENTS_LOGIN_<n>}`` (pip expands it from the
    environment: see ``requirement_index_logins``); ``${VAR}`` the user wrote stays for pip to expand.
    With ``base_dir`` (the requirements file's folder), a relative ``--find-links`` is made absolute,
    as pip resolves it against the file's folder.
    """
    out = []
    for number, line in enumerate(_index_option_lines(manifest_content)):

        def swap(m: re.Match[str], n: int = number) -> str:
            login = m.group("login")
            if re.fullmatch(r"(\$\{[A-Z0-9_]+\}|:)*", login):
                return m.group(0)
            return f"{m.group('scheme')}${{{REQUIREMENT_LOGIN_ENV_PREFIX}{n}}}@"

        line = _LOGIN.sub(swap, line)
        option, _, value = line.replace("=", " ", 1).partition(" ")
        value = value.strip()
        if (
            base_dir is not None
            and option in ("-f", "--find-links")
            and "://" not in value
            and not value.startswith("/")
        ):
            line = f"{option} {(Path(base_dir) / value).absolute()}"
        out.append(line)
    return tuple(out)


def requirements_without_logins(manifest_content: bytes | str) -> str:
    """requirements.txt as the build keeps a copy of it: each login written inside an index option is
    ``${ALAB_REQUIREMENTS_LOGIN_<n>}``, as in the pins file (the copy is not where the secret lives)."""
    text = manifest_content.decode("utf-8-sig") if isinstance(manifest_content, bytes) else manifest_content
    for line, masked in zip(_index_option_lines(text), requirement_index_options(text), strict=False):
        text = text.replace(line, masked)
    return text


def copy_manifest(path: Path, dir_repo: Path) -> None:
    """The build's copy of the lock file; a requirements file's copy without the logins written inside it."""
    get_logger("build").debug("Copy %s to %s", path, dir_repo / path.name)
    dir_repo.mkdir(parents=True, exist_ok=True)
    content = path.read_bytes()
    if path.suffix == ".lock" or requirements_without_logins(content) == content.decode("utf-8-sig", "replace"):
        shutil.copy(path, dir_repo / path.name)
    else:
        (dir_repo / path.name).write_text(requirements_without_logins(content), encoding="utf-8")


#: ``${NAME}`` in a URL's login, which pip expands from its environment.
_LOGIN_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")


def requirement_login_variables(manifest_content: bytes | str, environ: Mapping[str, str]) -> dict[str, str]:
    """The ``${NAME}`` variables in requirements.txt's index logins, with their values from ``environ``:
    a container build's pip has only the environment it is sent. Only names meant for an index login
    (``ALAB_*``, ``*_INDEX_*``) travel, never an AWS credential: the file alone must not be able to
    send one to its index."""
    found = {}
    for line in _index_option_lines(manifest_content):
        for m in _LOGIN.finditer(line):
            for name in _LOGIN_VARIABLE.findall(m.group("login")):
                meant = name.startswith("ALAB_") or "_INDEX_" in name
                if meant and not name.startswith(("AWS_", "ALAB_AWS_")) and name in environ:
                    found[name] = environ[name]
    return found


def requirement_index_logins(manifest_content: bytes | str) -> dict[str, str]:
    """``ALAB_REQUIREMENTS_LOGIN_<n>`` -> the login written inside requirements.txt's n-th index option."""
    env = {}
    for number, line in enumerate(_index_option_lines(manifest_content)):
        m = _LOGIN.search(line)
        if m and not re.fullmatch(r"(\$\{[A-Z0-9_]+\}|:)*", m.group("login")):
            env[f"{REQUIREMENT_LOGIN_ENV_PREFIX}{number}"] = m.group("login")
    return env


def locked_pins(
    *,
    tool: LayerBuildToolEnum | str,
    manifest_content: bytes | str,
    dependencies: Mapping[str, str],
    manifest_name: str | None = None,
) -> list[LockedPin]:
    """The pins of ``dependencies`` (a target's runtime set, from ``runtime_dependencies``), with the
    index, hashes and files the manifest records for each; sorted by name."""
    tool = coerce_tool(tool)
    manifest = manifest_name or tool.manifest_name
    if isinstance(manifest_content, bytes):
        manifest_content = manifest_content.decode("utf-8-sig")
    pins: list[LockedPin] = []
    if tool is LayerBuildToolEnum.pip:
        hashes: dict[str, tuple[str, ...]] = {}
        for _, line in logical_lines(manifest_content.replace("\r\n", "\n")):
            if line.startswith("-"):
                continue
            try:
                req = Requirement(line.split(" --")[0].strip())
            except InvalidRequirement:
                continue
            found = tuple(sorted(set(_HASH.findall(line))))
            pinned = [sp.version for sp in req.specifier if sp.operator in ("==", "===")]
            if found and dependencies.get(canonicalize_name(req.name)) in pinned:
                hashes[canonicalize_name(req.name)] = found
        return [LockedPin(name=n, version=v, hashes=hashes.get(n, ())) for n, v in sorted(dependencies.items())]
    data = _load_toml(manifest_content, manifest)
    entries: list[dict[str, Any]] = data.get("package", [])
    make = _uv_pin if tool is LayerBuildToolEnum.uv else _poetry_pin
    for name, version in sorted(dependencies.items()):
        entry = next((e for e in entries if _same_pin(e, name, version)), None)
        if entry is None:
            raise ManifestError(f"{manifest}: {name} {version} is in the runtime set but not in the lock")
        pins.append(make(entry, name, version, manifest, data))
    return pins


def _index_url(source: str, dir_lock: Path) -> str | None:
    """The index a pin's recorded source names; uv records a ``file://`` index as a path, relative to the lock."""
    if source.startswith(("http://", "https://", "file://")):
        return source
    if not source or "://" in source or source.startswith(("path:", "git")):
        return None
    url = (dir_lock / source).resolve().as_uri()
    return url + "/" if source.endswith("/") else url


def pins_for_manifest(manifest: LocalManifest) -> list[LockedPin]:
    """The index pins of a manifest's runtime set (local sources are built separately, see ``local_sources``)."""
    return [
        LockedPin(
            name=p.name,
            version=p.version,
            index_url=_index_url(p.source, manifest.path.parent),
            hashes=p.hashes,
            filenames=p.filenames,
        )
        for p in manifest.runtime_set.packages
        if not p.is_local
    ]


def local_sources(manifest: LocalManifest) -> list[RuntimePackage]:
    """The runtime set's packages that are built from a folder or a git commit."""
    return [p for p in manifest.runtime_set.packages if p.is_local]


def pins_without_target_wheel(pins: Iterable[LockedPin], target: LayerTarget) -> list[LockedPin]:
    """Pins whose lock lists files but no wheel the target can use (a local build cannot install them)."""
    tags = target_tags(target)
    return [p for p in pins if p.filenames is not None and not p.has_wheel_for(tags)]


def no_wheel_message(names: Sequence[str], target: LayerTarget, tool: LayerBuildToolEnum | str) -> str:
    tool = coerce_tool(tool)
    return (
        f"no wheel for {target.runtime} on {target.architecture} ({target.abi}, manylinux glibc <= "
        f"{target.glibc[0]}.{target.glibc[1]}, {target.machine}) exists for: {', '.join(names)}. "
        f"A local build never ships host binaries for another target: build this layer in a container "
        f"(build_layer_artifacts_using_{tool.value}_in_container), where it can be built from source, "
        f"or pin a version that publishes such a wheel"
    )


# ---------------------------------------------------------------------------- wheels built on the host
def local_wheel_command(
    build_from: str,
    dir_one: Path,
    *,
    uv: str | None,
    python: str,
    environ: Mapping[str, str],
    credentials: Credentials | None,
) -> tuple[list[str], dict[str, str]]:
    """The command that builds one local source into a wheel in ``dir_one``: ``uv build`` for a
    folder when uv is there, else (and always for a git URL) ``pip wheel --no-deps``. The build
    backend may come from the project's index: the login goes in the environment."""
    if build_from.startswith("git+") or uv is None:
        argv = [python, "-m", "pip", "wheel", "--no-deps", "--no-input", "-w", str(dir_one), build_from]
    else:
        argv = [uv, "build", "--wheel", "--out-dir", str(dir_one), build_from]
    env = {**environ, **(credentials_env(credentials) if credentials is not None else {})}
    env.pop("PIP_INDEX_URL", None)
    return argv, env


def sdist_wheel_command(
    pin: LockedPin,
    dir_one: Path,
    path_requirements: Path,
    *,
    python: str,
    environ: Mapping[str, str],
    credentials: Credentials | None,
) -> tuple[list[str], dict[str, str]]:
    """``pip wheel`` of one sdist-only pin from its index (with its login when it is the private one),
    hash-checked against the lock through ``path_requirements`` (``pin.requirement_line``)."""
    index = pin.index_url or PYPI_SIMPLE_URL
    env = {**environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index}
    if _matches(index, credentials):
        assert credentials is not None
        env["PIP_INDEX_URL"] = credentials.pip_extra_index_url
    argv = [python, "-m", "pip", "wheel", "--no-deps", "--no-input", "--disable-pip-version-check"]
    argv += ["--no-binary", pin.name, "-w", str(dir_one), "-r", str(path_requirements)]
    if pin.hashes:
        argv.append("--require-hashes")
    return argv, env


# ---------------------------------------------------------------------------- the install plan
def credentials_env(credentials: Credentials) -> dict[str, str]:
    """Every variable through which a child can receive the login; a step picks the ones it needs."""
    return {
        "PIP_INDEX_URL": credentials.pip_extra_index_url,
        "PIP_EXTRA_INDEX_URL": credentials.pip_extra_index_url,
        **credentials.uv_env(),
        **credentials.poetry_env(),
    }


def mask_secrets(text: str, credentials: Credentials | None) -> str:
    """Text safe to print: URL logins and the password (raw and URL-encoded) removed; see ``redact``."""
    return redact(text, [credentials.password] if credentials is not None else [])


@dataclasses.dataclass(frozen=True)
class InstallStep:
    """One installer run of a build plan; holds no secret, so it can be logged and shipped as JSON."""

    description: str
    argv: tuple[str, ...]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    unset_env: tuple[str, ...] = ("PIP_", "UV_")
    secret_env_names: tuple[str, ...] = ()
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: str | None = None

    def secret_env(self, credentials: Credentials | None) -> dict[str, str]:
        """The values of ``secret_env_names``, to put in the child's environment only."""
        if not self.secret_env_names:
            return {}
        if credentials is None:
            raise LayerError(f"{self.description} needs credentials for {', '.join(self.secret_env_names)}")
        values = credentials_env(credentials)
        return {name: values[name] for name in self.secret_env_names}

    def child_env(self, base: Mapping[str, str], credentials: Credentials | None) -> dict[str, str]:
        """``base`` without the user's installer settings, plus this step's variables and secrets."""
        env = {k: v for k, v in base.items() if k in KEEP_ENV or not k.startswith(self.unset_env)}
        env.update(self.env)
        env.update(self.secret_env(credentials))
        return env

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "argv": list(self.argv),
            "env": dict(self.env),
            "unset_env": list(self.unset_env),
            "secret_env_names": list(self.secret_env_names),
            "files": dict(self.files),
            "cwd": self.cwd,
        }


def _matches(url: str, credentials: Credentials | None) -> bool:
    return credentials is not None and normalize_index_url(url) == normalize_index_url(credentials.simple_index_url)


def _ordered_indexes(pins: Sequence[LockedPin]) -> tuple[str | None, list[str]]:
    """(default index, extra indexes) from the pins' recorded indexes; ``None`` default means PyPI."""
    urls: list[str] = []
    for pin in pins:
        if pin.index_url and normalize_index_url(pin.index_url) not in [normalize_index_url(u) for u in urls]:
            urls.append(pin.index_url)
    pypi = [u for u in urls if normalize_index_url(u) == normalize_index_url(PYPI_SIMPLE_URL)]
    others = [u for u in urls if u not in pypi]
    if pypi or any(p.index_url is None for p in pins) or not others:
        return None, others
    return others[0], others[1:]


def _pins_file(pins: Sequence[LockedPin], option_lines: Sequence[str]) -> tuple[str, bool]:
    with_hashes = bool(pins) and all(p.hashes for p in pins)
    lines = ["# Written by aws-lambda-artifact-builder: the layer's pinned runtime set.", *option_lines]
    lines += [p.requirement_line(with_hashes=with_hashes) for p in pins]
    return "\n".join(lines) + "\n", with_hashes


def plan_install_steps(
    *,
    tool: LayerBuildToolEnum | str,
    target: LayerTarget,
    pins: Sequence[LockedPin],
    dir_python: str,
    dir_work: str,
    python: str,
    tool_command: Sequence[str] | None = None,
    credentials: Credentials | None = None,
    native: bool = False,
    requirement_options: Sequence[str] = (),
) -> list[InstallStep]:
    """The commands that install exactly ``pins`` for ``target`` into ``dir_python`` (pure, see module doc).

    ``tool_command`` is how to run the installer: pip (default ``python -m pip``) for pip and poetry
    manifests, uv (default ``uv``) for uv locks. ``requirement_options`` are requirements.txt's own
    index options (pip manifests only).
    """
    tool = coerce_tool(tool)
    path_pins = str(PurePosixPath(dir_work) / PINS_FILE_NAME)
    where = f"{target.runtime} {target.architecture}"
    if installer_for(tool, target, native=native) == "uv":
        return [_plan_uv(target, pins, dir_python, path_pins, python, tool_command, credentials, native, where)]
    if tool is LayerBuildToolEnum.uv:
        tool_command = None  # uv's pins with their indexes, through this Python's pip (see installer_for)
    return [
        _plan_pip(
            tool,
            target,
            pins,
            dir_python,
            path_pins,
            python,
            tool_command,
            credentials,
            native,
            where,
            requirement_options,
        )
    ]


def _plan_pip(
    tool: LayerBuildToolEnum,
    target: LayerTarget,
    pins: Sequence[LockedPin],
    dir_python: str,
    path_pins: str,
    python: str,
    tool_command: Sequence[str] | None,
    credentials: Credentials | None,
    native: bool,
    where: str,
    requirement_options: Sequence[str],
) -> InstallStep:
    options = list(requirement_options)
    secret: list[str] = []
    if tool is LayerBuildToolEnum.pip:
        if credentials is not None:
            secret.append("PIP_EXTRA_INDEX_URL")
    else:
        default, extras = _ordered_indexes(pins)
        if default is not None:
            if _matches(default, credentials):
                secret.append("PIP_INDEX_URL")
            else:
                options.append(f"--index-url {default}")
        for url in extras:
            if _matches(url, credentials):
                secret.append("PIP_EXTRA_INDEX_URL")
            else:
                options.append(f"--extra-index-url {url}")
    text, with_hashes = _pins_file(pins, options)
    argv = [*(tool_command or (python, "-m", "pip")), "install", "--no-deps", "--target", dir_python]
    argv += ["--no-compile", "--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
    argv += ["--progress-bar", "off", "--report", str(PurePosixPath(path_pins).with_name(INSTALL_REPORT_NAME))]
    if with_hashes:
        argv.append("--require-hashes")
    if not native:
        argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python_version]
        for platform in target_platforms(target):
            argv += ["--platform", platform]
    argv += ["-r", path_pins]
    return InstallStep(
        description=f"pip install of {len(pins)} pinned distributions for {where}",
        argv=tuple(argv),
        env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        secret_env_names=tuple(secret),
        files={path_pins: text},
    )


def _plan_uv(
    target: LayerTarget,
    pins: Sequence[LockedPin],
    dir_python: str,
    path_pins: str,
    python: str,
    tool_command: Sequence[str] | None,
    credentials: Credentials | None,
    native: bool,
    where: str,
) -> InstallStep:
    default, extras = _ordered_indexes(pins)
    env = {"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    secret: list[str] = []

    def named(url: str) -> str:
        if _matches(url, credentials):
            assert credentials is not None
            secret.extend(credentials.uv_env())
            return f"{credentials.index_name}={url}"
        return url

    if default is not None:
        env["UV_DEFAULT_INDEX"] = named(default)
    if extras:
        env["UV_INDEX"] = " ".join(named(u) for u in extras)
    text, with_hashes = _pins_file(pins, ())
    argv = [*(tool_command or ("uv",)), "pip", "install", "--no-deps", "--target", dir_python, "--python", python]
    argv += ["--index-strategy", "first-index"]
    if with_hashes:
        argv.append("--require-hashes")
    if not native:
        argv += ["--only-binary", ":all:", "--python-platform", uv_python_platform(target)]
        argv += ["--python-version", target.python_version]
    argv += ["-r", path_pins]
    return InstallStep(
        description=f"uv pip install of {len(pins)} pinned distributions for {where}",
        argv=tuple(argv),
        env=env,
        secret_env_names=tuple(secret),
        files={path_pins: text},
    )


_NO_WHEEL_PATTERNS = (
    re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)"),
    re.compile(r"Because ([A-Za-z0-9._-]+)(?:==\S+)? has no (?:usable )?wheels"),
    re.compile(r"([A-Za-z0-9._-]+)==\S+ has no wheels with a matching"),
)


def explain_install_failure(
    output: str,
    pins: Sequence[LockedPin],
    target: LayerTarget,
    tool: LayerBuildToolEnum | str,
    credentials: Credentials | None = None,
) -> str:
    """Why an installer found no distribution: no wheel for the target, or an index that did not serve it.

    A failure caused by the index (login refused, index down, version missing) raises a one-line
    ``IndexFailure`` instead (see ``install_errors``): it is not a matter of wheels or containers.
    """
    from .install_errors import raise_index_failure

    raise_index_failure(output, pins, tool=coerce_tool(tool).value, credentials=credentials)
    names = {canonicalize_name(m.group(1)) for p in _NO_WHEEL_PATTERNS for m in p.finditer(output)}
    if not names:
        return ""
    by_name = {p.name: p for p in pins}
    tags = target_tags(target)
    served = sorted(n for n in names if n in by_name and by_name[n].has_wheel_for(tags))
    unknown = sorted(f"{n}=={by_name[n].version}" if n in by_name else n for n in names if n not in served)
    hints = []
    if served:
        hints.append(
            f"the lock lists a wheel for {target.runtime} {target.architecture} of {', '.join(served)}, but the index "
            f"did not offer it: check the credentials (index name, URL, login) and that the index still serves it"
        )
    if unknown:
        hints.append(no_wheel_message(unknown, target, tool) + " (or the index does not serve it to these credentials)")
    return "\n".join(hints)


def installer_for(tool: LayerBuildToolEnum | str, target: LayerTarget, *, native: bool = False) -> str:
    """``"uv"`` or ``"pip"``: pip and poetry locks install with pip; uv locks with uv, except for a
    foreign target whose glibc floor uv cannot name (Amazon Linux 2's 2.26: uv's nearest is 2.17, which
    would refuse the manylinux_2_24..2_26 wheels the runtime loads), where pip takes the exact list."""
    if coerce_tool(tool) is not LayerBuildToolEnum.uv:
        return "pip"
    return "uv" if native or target.glibc[1] in _UV_MANYLINUX_MINORS else "pip"


def _sdist_only(pin: LockedPin) -> bool:
    return any(f.endswith((".tar.gz", ".zip", ".tar.bz2")) for f in pin.filenames or ())


def check_local_build_possible(manifest: LocalManifest, target: LayerTarget) -> None:
    """Before any build or S3 write: a pin whose lock lists neither a wheel for the target nor an
    sdist cannot be installed by a local build (named, with the fix)."""
    missing = [p for p in pins_without_target_wheel(pins_for_manifest(manifest), target) if not _sdist_only(p)]
    if missing:
        names = [f"{p.name}=={p.version}" for p in missing]
        raise LayerError(f"{manifest.path}: " + no_wheel_message(names, target, manifest.tool))
