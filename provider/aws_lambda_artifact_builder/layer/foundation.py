"""The layer foundation: credentials, local and S3 layouts, and the manifest manager.

These names and their behaviour are the seed API that existing users know; every later
stage (build, package, upload, publish, workflow) computes its paths and keys here so
that a path or an S3 key is defined in exactly one place.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from s3pathlib.api import S3Path

from ..constants import ZFILL, LayerBuildToolEnum
from ..errors import LayerError, LayerInputError, mask_url_credentials
from ..progress import forwarded_to, get_logger, redact_line
from ..typehint import T_PRINTER

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

_MASK = "****"


def _write_private_file(path: Path, content: bytes) -> None:
    """Write a file that only its owner can read, also when it existed with wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True, repr=False)
class Credentials:
    """Login for a private package index that pip, poetry and uv must authenticate against.

    The password is only ever handed to a child process's environment; ``repr``/``str``
    mask it so that an exception or a log line never leaks it.
    """

    index_name: str
    index_url: str
    username: str
    password: str

    def __repr__(self) -> str:
        return (
            f"Credentials(index_name={self.index_name!r}, "
            f"index_url={mask_url_credentials(self.index_url)!r}, "
            f"username={self.username!r}, password={_MASK!r})"
        )

    __str__ = __repr__

    @property
    def uppercase_index_name(self) -> str:
        """The index name as uv and poetry spell it inside environment variable names."""
        return re.sub(r"[^A-Za-z0-9]", "_", self.index_name).upper()

    def _split_index_url(self) -> tuple[str, str, str]:
        url = self.index_url.strip()
        if "://" not in url:
            url = "https://" + url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host:
            raise LayerError(f"Credentials.index_url {mask_url_credentials(self.index_url)!r} has no host")
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        path = parts.path.rstrip("/")
        if not path.endswith("/simple"):
            path += "/simple"
        return parts.scheme, netloc, path + "/"

    @property
    def simple_index_url(self) -> str:
        """The index's simple API URL without any login in it (what lock files may record)."""
        scheme, netloc, path = self._split_index_url()
        return urlunsplit((scheme, netloc, path, "", ""))

    @property
    def pip_extra_index_url(self) -> str:
        """``scheme://username:password@host/path/simple/`` with both URL-encoded, for pip."""
        scheme, netloc, path = self._split_index_url()
        login = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return urlunsplit((scheme, login + netloc, path, "", ""))

    @property
    def additional_pip_install_args_index_url(self) -> list[str]:
        """pip arguments that replace PyPI with the private index (prefer the environment, see build)."""
        return ["--index-url", self.pip_extra_index_url]

    @property
    def additional_pip_install_args_extra_index_url(self) -> list[str]:
        """pip arguments that add the private index next to PyPI (prefer the environment, see build)."""
        return ["--extra-index-url", self.pip_extra_index_url]

    def pip_env(self, *, extra: bool = True) -> dict[str, str]:
        """Environment for a pip child: the login travels here, never in argv."""
        key = "PIP_EXTRA_INDEX_URL" if extra else "PIP_INDEX_URL"
        return {key: self.pip_extra_index_url}

    def uv_env(self) -> dict[str, str]:
        """Environment for a uv child (``UV_INDEX_<NAME>_USERNAME/PASSWORD``)."""
        name = self.uppercase_index_name
        return {f"UV_INDEX_{name}_USERNAME": self.username, f"UV_INDEX_{name}_PASSWORD": self.password}

    def poetry_env(self) -> dict[str, str]:
        """Environment for a poetry child (``POETRY_HTTP_BASIC_<NAME>_USERNAME/PASSWORD``)."""
        name = self.uppercase_index_name
        return {
            f"POETRY_HTTP_BASIC_{name}_USERNAME": self.username,
            f"POETRY_HTTP_BASIC_{name}_PASSWORD": self.password,
        }

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def dump(self, path: Path | str) -> None:
        """Write the credentials as JSON readable only by the owner (mode 0600)."""
        content = json.dumps(self.to_dict(), indent=4).encode("utf-8")
        _write_private_file(Path(path), content)

    @classmethod
    def load(cls, path: Path | str) -> Credentials:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class LayerPathLayout:
    """Where a layer build puts its files below the project root.

    ``build/lambda/layer`` is wiped before every build, so files that must survive the
    wipe (the in-container script, the credentials file) live one level up.
    """

    path_pyproject_toml: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_pyproject_toml", Path(self.path_pyproject_toml).absolute())

    @property
    def dir_project_root(self) -> Path:
        return self.path_pyproject_toml.parent

    def get_path_in_container(self, path_in_local: Path | str) -> str:
        """The path the container sees for a local path, with the project root mounted at ``/var/task``."""
        path = Path(path_in_local).absolute()
        try:
            relpath = path.relative_to(self.dir_project_root)
        except ValueError:
            raise LayerError(
                f"{path} is outside the project root {self.dir_project_root}, "
                f"which is the only folder mounted into the build container"
            ) from None
        return "/" + "/".join(("var", "task", *relpath.parts))

    @property
    def dir_build_lambda(self) -> Path:
        return self.dir_project_root / "build" / "lambda"

    @property
    def dir_build_lambda_layer(self) -> Path:
        """Scratch folder of a layer build; cleared before each build."""
        return self.dir_build_lambda / "layer"

    @property
    def path_build_lambda_layer_zip(self) -> Path:
        return self.dir_build_lambda_layer / "layer.zip"

    @property
    def dir_repo(self) -> Path:
        """A copy of the project's manifest files, so a build never touches the originals."""
        return self.dir_build_lambda_layer / "repo"

    @property
    def path_tmp_pyproject_toml(self) -> Path:
        return self.dir_repo / self.path_pyproject_toml.name

    @property
    def dir_build_lambda_layer_repo_venv_site_packages(self) -> Path:
        """site-packages of the virtualenv that poetry or uv create in :attr:`dir_repo`."""
        dir_lib = self.dir_repo / ".venv" / "lib"
        found = sorted(dir_lib.glob("python3.*/site-packages"))
        if len(found) != 1:
            raise LayerError(f"expected one python3.X/site-packages below {dir_lib}, found {len(found)}")
        return found[0]

    @property
    def path_build_lambda_layer_in_container_script_in_local(self) -> Path:
        """The in-container build script; outside the wiped layer folder so it survives the wipe."""
        return self.dir_build_lambda / "build_lambda_layer_in_container.py"

    @property
    def path_build_lambda_layer_in_container_script_in_container(self) -> str:
        return self.get_path_in_container(self.path_build_lambda_layer_in_container_script_in_local)

    @property
    def path_requirements_txt(self) -> Path:
        return self.dir_project_root / LayerBuildToolEnum.pip.manifest_name

    @property
    def path_poetry_lock(self) -> Path:
        return self.dir_project_root / LayerBuildToolEnum.poetry.manifest_name

    @property
    def path_tmp_poetry_lock(self) -> Path:
        return self.dir_repo / LayerBuildToolEnum.poetry.manifest_name

    @property
    def path_uv_lock(self) -> Path:
        return self.dir_project_root / LayerBuildToolEnum.uv.manifest_name

    @property
    def path_tmp_uv_lock(self) -> Path:
        return self.dir_repo / LayerBuildToolEnum.uv.manifest_name

    @property
    def path_private_repository_credentials_in_local(self) -> Path:
        """Credentials file for a container build; outside the wiped layer folder."""
        return self.dir_build_lambda / "private-repository-credentials.json"

    @property
    def path_private_repository_credentials_in_container(self) -> str:
        return self.get_path_in_container(self.path_private_repository_credentials_in_local)

    @property
    def dir_artifacts(self) -> Path:
        """Everything below this folder goes into layer.zip."""
        return self.dir_build_lambda_layer / "artifacts"

    @property
    def dir_python(self) -> Path:
        """The ``python/`` folder Lambda puts on ``sys.path`` for a layer."""
        return self.dir_artifacts / "python"

    def clean(self, skip_prompt: bool = False) -> None:
        """Remove the previous build; asks first on a terminal and refuses, rather than hangs, without one."""
        folder = self.dir_build_lambda_layer
        if not folder.exists():
            return
        if not skip_prompt:
            if not sys.stdin or not sys.stdin.isatty():
                raise LayerError(
                    f"refusing to delete the build folder {folder} without confirmation: "
                    f"no terminal to ask on; pass skip_prompt=True"
                )
            answer = input(f"Delete the lambda layer build folder {folder}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise LayerError(f"not deleting {folder}: the build needs an empty build folder")
        shutil.rmtree(folder)

    def mkdirs(self) -> None:
        self.dir_repo.mkdir(parents=True, exist_ok=True)
        self.dir_python.mkdir(parents=True, exist_ok=True)

    def copy_file(self, p_src: Path, p_dst: Path, printer: T_PRINTER = print) -> None:
        # The builtin print (the seed's default) means "log it": a DEBUG line, never stdout.
        (get_logger("build").debug if printer is print else printer)(f"Copy {p_src} to {p_dst}")
        Path(p_dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p_src, p_dst)

    def copy_build_script(self, p_src: Path, printer: T_PRINTER = print) -> None:
        self.copy_file(p_src, self.path_build_lambda_layer_in_container_script_in_local, printer=printer)

    def copy_pyproject_toml(self, printer: T_PRINTER = print) -> None:
        self.copy_file(self.path_pyproject_toml, self.path_tmp_pyproject_toml, printer=printer)

    def copy_poetry_lock(self, printer: T_PRINTER = print) -> None:
        self.copy_file(self.path_poetry_lock, self.path_tmp_poetry_lock, printer=printer)

    def copy_uv_lock(self, printer: T_PRINTER = print) -> None:
        self.copy_file(self.path_uv_lock, self.path_tmp_uv_lock, printer=printer)

    def get_path_manifest(self, tool: LayerBuildToolEnum | str) -> Path:
        """The manifest that pins a tool's dependencies: the source of truth of the layer."""
        return self.dir_project_root / coerce_tool(tool).manifest_name


def coerce_tool(tool: Any) -> LayerBuildToolEnum:
    """A :class:`LayerBuildToolEnum` from an enum member or its name; a ``LayerInputError`` on ``tool`` otherwise."""
    try:
        return LayerBuildToolEnum(tool)
    except ValueError:
        allowed = ", ".join(t.value for t in LayerBuildToolEnum)
        raise LayerInputError([("tool", f"unknown layer build tool {tool!r}; use one of: {allowed}")]) from None


#: File name of the manifest of each tool, as stored in S3 too.
MANIFEST_NAMES: dict[LayerBuildToolEnum, str] = {tool: tool.manifest_name for tool in LayerBuildToolEnum}


def coerce_s3dir(s3dir: S3Path | str) -> S3Path:
    """An S3 directory from an ``S3Path`` or an ``s3://bucket/prefix/`` string, or a clear error."""
    if isinstance(s3dir, S3Path):
        path = s3dir
    elif isinstance(s3dir, str):
        if not s3dir.startswith("s3://") or len(s3dir) <= len("s3://"):
            raise LayerError(f"s3dir_lambda {s3dir!r} is not an S3 URI like 's3://bucket/prefix/'")
        try:
            path = S3Path(s3dir)
        except Exception as e:  # noqa: BLE001  (s3pathlib raises several types for malformed URIs)
            raise LayerError(f"s3dir_lambda {s3dir!r} is not a valid S3 URI: {e}") from None
    else:
        raise LayerError(f"s3dir_lambda must be an S3Path or an 's3://' string, not {type(s3dir).__name__}")
    bucket = path.bucket or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise LayerError(
            f"s3dir_lambda {path.uri!r}: {bucket!r} is not a valid bucket name (S3 bucket names are 3 to 63 "
            "lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    if not path.is_dir():
        raise LayerError(f"s3dir_lambda {path.uri!r} is not a directory: end it with '/'")
    return path


@dataclasses.dataclass
class LayerS3Layout:
    """The S3 keys of one layer's record below ``s3dir_lambda``."""

    s3dir_lambda: S3Path

    def __post_init__(self) -> None:
        self.s3dir_lambda = coerce_s3dir(self.s3dir_lambda)

    @property
    def s3path_temp_layer_zip(self) -> S3Path:
        """Staging key Lambda reads the zip from while publishing; not kept per version."""
        return self.s3dir_lambda.joinpath("layer", "layer.zip")

    @property
    def s3path_deploy_claim(self) -> S3Path:
        """The claim a deploy that found a change holds while it builds and publishes (``claim.py``)."""
        return self.s3dir_lambda.joinpath("layer", "deploy-claim.json")

    def get_s3path_publish_intent(self, fingerprint: str) -> S3Path:
        """The CodeSha256 a deploy is about to publish with this fingerprint (``publish.write_publish_intent``)."""
        return self.s3dir_lambda.joinpath("layer", f"intent-{fingerprint}.json")

    # ---- artifact store (``layer/store.py``): one packaged zip per fingerprint ----
    def get_s3dir_artifact(self, fingerprint: str) -> S3Path:
        """The folder of one fingerprint's packaged zip and its description, shared by every target."""
        if not re.fullmatch(r"[0-9a-f]{64}", fingerprint or ""):
            raise LayerError(f"fingerprint {fingerprint!r} is not a sha256 hex digest")
        return self.s3dir_lambda.joinpath("layer", "artifacts", fingerprint).to_dir()

    def get_s3path_artifact_zip(self, fingerprint: str) -> S3Path:
        return self.get_s3dir_artifact(fingerprint).joinpath("layer.zip")

    def get_s3path_artifact_info(self, fingerprint: str) -> S3Path:
        """``{"fingerprint", "code_sha256", "size"}`` of the stored zip, written after it."""
        return self.get_s3dir_artifact(fingerprint).joinpath("layer.json")

    def get_s3path_build_claim(self, fingerprint: str) -> S3Path:
        """The claim a runner holds while it builds a fingerprint the store lacks (``claim.py``'s lease)."""
        return self.get_s3dir_artifact(fingerprint).joinpath("build-claim.json")

    @property
    def s3dir_layer(self) -> S3Path:
        """The folder of every key below (``layer/``): what ``alab layer list`` lists."""
        return self.s3dir_lambda.joinpath("layer").to_dir()

    def get_s3path_version_file(self, layer_version: int, name: str) -> S3Path:
        """A file beside one version's manifest: its SBOM or provenance (``layer/evidence.py``)."""
        return self.get_s3dir_layer_version(layer_version).joinpath(name)

    def get_s3dir_layer_version(self, layer_version: int) -> S3Path:
        if isinstance(layer_version, bool) or not isinstance(layer_version, int) or layer_version < 1:
            raise LayerError(f"layer version must be an integer >= 1, not {layer_version!r}")
        return self.s3dir_lambda.joinpath("layer", str(layer_version).zfill(ZFILL)).to_dir()

    def get_s3path_versioned_manifest(self, layer_version: int, manifest_name: str) -> S3Path:
        return self.get_s3dir_layer_version(layer_version).joinpath(manifest_name)

    def get_s3path_last_manifest(self, manifest_name: str) -> S3Path:
        return self.s3dir_lambda.joinpath("layer", f"last-{manifest_name}")

    def get_s3path_layer_requirements_txt(self, layer_version: int) -> S3Path:
        return self.get_s3path_versioned_manifest(layer_version, LayerBuildToolEnum.pip.manifest_name)

    def get_s3path_layer_poetry_lock(self, layer_version: int) -> S3Path:
        return self.get_s3path_versioned_manifest(layer_version, LayerBuildToolEnum.poetry.manifest_name)

    def get_s3path_layer_uv_lock(self, layer_version: int) -> S3Path:
        return self.get_s3path_versioned_manifest(layer_version, LayerBuildToolEnum.uv.manifest_name)

    @property
    def s3path_last_requirements_txt(self) -> S3Path:
        return self.get_s3path_last_manifest(LayerBuildToolEnum.pip.manifest_name)

    @property
    def s3path_last_poetry_lock(self) -> S3Path:
        return self.get_s3path_last_manifest(LayerBuildToolEnum.poetry.manifest_name)

    @property
    def s3path_last_uv_lock(self) -> S3Path:
        return self.get_s3path_last_manifest(LayerBuildToolEnum.uv.manifest_name)


@dataclasses.dataclass(frozen=True)
class BaseLogger:
    """The seed's progress output, now an adapter onto ``logging``: every line goes to the ``stage``'s
    logger; ``printer`` also gets it when ``verbose`` and it is not the builtin ``print`` (the default,
    which no longer writes to stdout), unless a ``progress.forward_logs`` block sends it there already."""

    verbose: bool = True
    printer: T_PRINTER = print
    stage: str = "build"

    def _emit(self, level: int, msg: str) -> None:
        get_logger(self.stage).log(level, "%s", msg)
        if self.verbose and self.printer is not builtins.print and not forwarded_to(self.printer):
            self.printer(redact_line(msg))

    def log(self, msg: str) -> None:
        """What a step did (``INFO``)."""
        self._emit(logging.INFO, msg)

    def debug(self, msg: str) -> None:
        """Detail shown only on request (``DEBUG``): commands, installer output, file copies."""
        self._emit(logging.DEBUG, msg)

    def warning(self, msg: str) -> None:
        """Something the user should act on although the step went on (``WARNING``)."""
        self._emit(logging.WARNING, msg)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerManifestManager(BaseLogger):
    """Ties a project's local manifest to its record in S3: the names and keys the core uses too
    (``inputs.LayerInputs.manifest_manager``), which needs no client."""

    path_pyproject_toml: Path
    s3dir_lambda: S3Path
    layer_build_tool: LayerBuildToolEnum
    s3_client: S3Client | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_pyproject_toml", Path(self.path_pyproject_toml).absolute())
        object.__setattr__(self, "s3dir_lambda", coerce_s3dir(self.s3dir_lambda))
        object.__setattr__(self, "layer_build_tool", coerce_tool(self.layer_build_tool))

    @cached_property
    def path_layout(self) -> LayerPathLayout:
        return LayerPathLayout(path_pyproject_toml=self.path_pyproject_toml)

    @cached_property
    def s3_layout(self) -> LayerS3Layout:
        return LayerS3Layout(s3dir_lambda=self.s3dir_lambda)

    @property
    def manifest_name(self) -> str:
        return self.layer_build_tool.manifest_name

    @property
    def path_manifest(self) -> Path:
        return self.path_layout.get_path_manifest(self.layer_build_tool)

    @property
    def s3path_last_manifest(self) -> S3Path:
        return self.s3_layout.get_s3path_last_manifest(self.manifest_name)

    def get_versioned_manifest(self, version: int) -> S3Path:
        """S3 key of the manifest recorded for one published layer version."""
        return self.s3_layout.get_s3path_versioned_manifest(version, self.manifest_name)
