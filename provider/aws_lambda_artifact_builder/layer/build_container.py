"""Container build stage: the local builder's install, run inside a docker or podman container.

When a dependency has no wheel for the target, or a team wants Lambda's own build image,
the install runs in an image with the target's Python and architecture. Only the install
happens there: the commands come from the same pure planner as the local build
(``build_container_plan``, over :func:`.install_plan.plan_install_steps`), they run in a build container
kept across builds and processes (``build_container_runner``), and packaging happens on the host with the
same zipper, so one lock gives the same ``layer.zip`` from either builder.

Local sources (workspace members, path and git dependencies) become wheels first: pure-Python
ones on the host (:func:`.build.build_local_wheels`, as a local build does), ones with compiled
code from an sdist made on the host and built into a wheel in the container, for the target.

The stages of :func:`build_container_layer`: prepare the build folder, build local sources, plan,
run in the container, move ``python/`` into place and check it. ``build_layer_artifacts_in_container``
and the ``build_layer_artifacts_using_{tool}_in_container`` functions are shims over it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from packaging.tags import parse_tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from ..constants import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, LayerBuildToolEnum
from ..errors import BuildError, LayerError, ManifestError
from ..progress import forward_logs
from ..typehint import T_PRINTER
from .build import (
    InstallStep,
    LockedPin,
    build_local_wheels,
    check_installed,
    local_sources,
    pins_for_manifest,
    pip_transport_env,
    requirement_index_options,
    target_tags,
)
from .build_container_plan import (
    CONTAINER_PLATFORMS,
    PATH_SCRIPT_SOURCE,
    PIP_TRANSPORT_ENV_VARS,
    PROXY_ENV_VARS,
    ContainerEngine,
    ContainerRun,
    container_plan,
    container_user,
    default_image,
    find_ca_bundle,
    make_container_name,
    plan_container_steps,
    plan_wheel_steps,
    staging_dir,
)
from .build_container_runner import (
    build_in_container,
    check_architecture_runnable,
    close_build_containers,
    detect_container_engine,
    ensure_image,
    keyed_run,
    list_build_containers,
)
from .foundation import BaseLogger, Credentials, LayerPathLayout, coerce_tool
from .install_plan import copy_manifest, requirement_index_logins, requirement_login_variables
from .manifest import LocalManifest, RuntimePackage, find_tool, missing_tool_message, read_local_manifest
from .target import LayerTarget

__all__ = [
    "ContainerBuild",
    "ContainerEngine",
    "build_container_layer",
    "build_layer_artifacts_in_container",
    "build_layer_artifacts_using_pip_in_container",
    "build_layer_artifacts_using_poetry_in_container",
    "build_layer_artifacts_using_uv_in_container",
    "close_build_containers",
    "default_image",
    "detect_container_engine",
    "list_build_containers",
]


def default_cache_dir() -> Path:
    """Host folder the container keeps tool installs and download caches in, so repeat builds are fast."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aws-lambda-artifact-builder" / "container"


#: A staging folder this old belongs to a build that was killed (a running build finishes long before).
STALE_STAGING_SECONDS = 24 * 3600


def remove_stale_staging(dir_cache: Path, now: float) -> None:
    """Remove what killed builds left in the cache; a concurrent build's folder is young and stays."""
    for path in (dir_cache / "staging").glob("*"):
        try:
            if now - path.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def move_tree(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (absent or an empty folder): a rename when possible, else a copy."""
    try:
        os.replace(src, dst)
    except OSError:
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(src)


def check_wheel_tags(dir_python: Path, target: LayerTarget) -> None:
    """Refuse wheels the target cannot load, which an image newer than Lambda's OS may pick.

    A wheel built from source in the container (``linux_*`` tag) is the point of a container build
    and passes; a ``manylinux`` wheel for a newer glibc than the runtime's does not.
    """
    accepted = target_tags(target)
    problems = []
    for path_wheel in sorted(dir_python.glob("*.dist-info/WHEEL")):
        tags = set()
        for line in path_wheel.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Tag:"):
                tags |= set(parse_tag(line.partition(":")[2].strip()))
        if not tags or tags & accepted:
            continue
        if all(t.platform.startswith("linux_") for t in tags):
            continue
        shown = ", ".join(sorted(str(t) for t in tags))
        problems.append(f"{path_wheel.parent.name[: -len('.dist-info')]} ({shown})")
    if problems:
        raise BuildError(
            f"the container installed wheels that {target.runtime} on {target.architecture} (glibc "
            f"{target.glibc[0]}.{target.glibc[1]}, {target.machine}) cannot load: {'; '.join(problems)}. The image "
            f"does not match Lambda's runtime: use the default image {default_image(target)}"
        )


@dataclasses.dataclass(frozen=True)
class ContainerBuild:
    """The layer spec of a container build: what to build, for which target, in which image and engine."""

    tool: LayerBuildToolEnum
    path_pyproject_toml: Path
    target: LayerTarget
    #: None: the SAM build image of the target (:func:`default_image`).
    image: str | None = None
    container_runtime: str | None = None
    #: None: :func:`default_cache_dir`.
    dir_cache: Path | None = None
    network: str | None = "host"


@dataclasses.dataclass(frozen=True)
class _Session:
    """What every container request of one build shares."""

    build: ContainerBuild
    layout: LayerPathLayout
    manifest: LocalManifest
    engine: ContainerEngine
    image: str
    #: The image's ID (:func:`ensure_image`), asked while the build folder is prepared: ~0.1 s of podman.
    image_check: Future[str]
    dir_cache: Path
    host_env: dict[str, str]
    credentials: Credentials | None
    logger: BaseLogger

    @property
    def image_id(self) -> str:
        return self.image_check.result()

    def run(self) -> ContainerRun:
        """The container that serves this build's requests: kept across builds and processes per its key."""
        path_ca_bundle = find_ca_bundle(self.host_env)
        run = ContainerRun(
            engine=self.engine,
            image=self.image,
            image_id=self.image_id,
            platform=CONTAINER_PLATFORMS[self.build.target.architecture],
            name=make_container_name(self.build.tool, self.build.target),
            dir_project_root=self.layout.dir_project_root,
            dir_cache=self.dir_cache,
            path_ca_bundle=path_ca_bundle,
            user=container_user(self.engine, os.geteuid(), os.getegid()),
            network=self.build.network,
            script=self.layout.path_build_lambda_layer_in_container_script_in_container,
            python_version=self.build.target.python_version,
        )
        return keyed_run(run, os.environ)

    def request(self, steps: Sequence[InstallStep], *, build_id: str, dir_build: str) -> None:
        """Run ``steps`` in the container, with the build's own folder ``dir_build`` (container path)."""
        plan = container_plan(
            tool=self.build.tool, target=self.build.target, image=self.image, steps=steps,
            path_ca_bundle=find_ca_bundle(self.host_env), dir_build=dir_build,
        )  # fmt: skip
        path_plan = self.layout.dir_build_lambda_layer / f"container-build-plan-{build_id}.json"
        path_plan.write_text(json.dumps(plan, indent=2, sort_keys=True), encoding="utf-8")
        # The login and the transport settings (a proxy URL may hold one) travel in the request only.
        secrets: dict[str, str] = {}
        for step in steps:
            secrets.update(step.secret_env(self.credentials))
        if self.build.tool is LayerBuildToolEnum.pip:  # logins written inside requirements.txt, as locally
            secrets.update(requirement_index_logins(self.manifest.content))
            secrets.update(requirement_login_variables(self.manifest.content, self.host_env))
        transport = {n: self.host_env[n] for n in (*PROXY_ENV_VARS, *PIP_TRANSPORT_ENV_VARS) if self.host_env.get(n)}
        build_in_container(
            self.run(),
            path_plan=self.layout.get_path_in_container(path_plan),
            env=self.host_env,
            request_env={**transport, **secrets},
            credentials=self.credentials,
            target=self.build.target,
            logger=self.logger,
        )
        path_facts = self.layout.dir_build_lambda_layer / CONTAINER_FACTS_NAME
        record_container_image(path_facts, self.image_id)


#: What the build script reported from inside the build container (``build_container_script.py``), beside the zip.
CONTAINER_FACTS_NAME = "container-build-facts.json"


def record_container_image(path_facts: Path, image_id: str) -> None:
    """Add the ID of the image the build container runs (part of its key) to the build script's facts: the
    image a name pointed at when the provenance is written may be another one by then."""
    try:
        facts = json.loads(path_facts.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # informative only
    if isinstance(facts, dict) and image_id:
        image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
        path_facts.write_text(json.dumps({**facts, "image_id": image_id}), encoding="utf-8")


def _in_background(fn: Callable[[], str]) -> Future[str]:
    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller of future.result()
            future.set_exception(e)

    threading.Thread(target=run, daemon=True).start()
    return future


def _open_session(build: ContainerBuild, credentials: Credentials | None, logger: BaseLogger) -> _Session:
    """Read the lock and check the engine and CPU, everything that can fail before a file is written, and start
    the image check (its result, or its failure, is awaited once the build folder is prepared)."""
    layout = LayerPathLayout(path_pyproject_toml=build.path_pyproject_toml)
    manifest = read_local_manifest(layout.path_pyproject_toml, build.tool, build.target)
    image = build.image or default_image(build.target)
    engine = detect_container_engine(build.container_runtime)
    check_architecture_runnable(engine, build.target)
    image_check = _in_background(lambda: ensure_image(engine, image, build.target, logger))
    dir_cache = build.dir_cache.absolute() if build.dir_cache is not None else default_cache_dir()
    dir_cache.mkdir(parents=True, exist_ok=True)
    # What the host's installers would use to reach an index: the environment over pip's config files.
    host_env = {**pip_transport_env(os.environ), **os.environ}
    return _Session(build, layout, manifest, engine, image, image_check, dir_cache, host_env, credentials, logger)


def _prepare_build_folder(session: _Session) -> None:
    """A fresh ``build/lambda/layer`` with the project's manifests and the in-container script."""
    layout = session.layout
    # Earlier versions wrote the index login here; never leave it on disk, never read it.
    layout.path_private_repository_credentials_in_local.unlink(missing_ok=True)
    layout.clean(skip_prompt=True)
    layout.mkdirs()
    layout.copy_pyproject_toml()  # each copy is a DEBUG line of the "build" logger
    copy_manifest(session.manifest.path, layout.dir_repo)
    layout.copy_build_script(PATH_SCRIPT_SOURCE)


def _built_for_host_only(dir_wheel: Path, target: LayerTarget) -> bool:
    """``build_local_wheels`` refused a wheel it built: one wheel there, for another platform (compiled code)."""
    wheels = list(dir_wheel.glob("*.whl"))
    return len(wheels) == 1 and not parse_wheel_filename(wheels[0].name)[3] & target_tags(target)


def _make_sdist(package: RuntimePackage, dir_out: Path, session: _Session) -> Path:
    """An sdist of a local folder, made on the host (no compiler runs): the container builds its wheel."""
    assert package.build_from is not None
    if package.build_from.startswith("git+"):
        raise BuildError(
            f"{package.name} ({package.source}) has compiled code and comes from git: a container build makes "
            f"wheels of compiled local sources from a folder only; vendor it as a path dependency or publish it"
        )
    uv = find_tool("uv")
    if uv is None:
        raise BuildError(missing_tool_message("uv"))
    dir_out.mkdir(parents=True, exist_ok=True)
    argv = [uv, "build", "--sdist", "--out-dir", str(dir_out), package.build_from]
    result = subprocess.run(argv, capture_output=True, text=True, env=session.host_env)
    sdists = sorted(dir_out.glob("*.tar.gz"))
    if result.returncode != 0 or len(sdists) != 1:
        raise BuildError(
            f"making an sdist of {package.name} from {package.source} failed: {result.stderr.strip()[-2000:]}"
        )
    return sdists[0]


def _wheel_pin(package: RuntimePackage, dir_wheel: Path, target: LayerTarget) -> LockedPin:
    """The pin of a wheel the container built, checked like a host-built one (one wheel, target tags, version)."""
    wheels = sorted(dir_wheel.glob("*.whl"))
    tags = parse_wheel_filename(wheels[0].name)[3] if len(wheels) == 1 else frozenset()
    # Built in the container, a wheel with compiled code is tagged linux_<cpu>: for this target (check_wheel_tags).
    if not tags or not (tags & target_tags(target) or all(t.platform == f"linux_{target.machine}" for t in tags)):
        names = [w.name for w in wheels]
        raise BuildError(f"building {package.name} in the container gave {names}, not one wheel for {target.runtime}")
    if parse_wheel_filename(wheels[0].name)[1] != Version(package.version):
        raise ManifestError(
            f"{package.name} built from {package.source} is not {package.version}, the locked version; re-lock"
        )
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    return LockedPin(name=package.name, version=package.version, hashes=(f"sha256:{digest}",), path=str(wheels[0]))


def _local_source_pins(session: _Session) -> list[LockedPin]:
    """Wheels of the local sources: pure ones built on the host, compiled ones in the container for the target."""
    sources = local_sources(session.manifest)
    if not sources:
        return []
    target, layout = session.build.target, session.layout
    dir_out = layout.dir_build_lambda_layer / "local-wheels"
    pins, compiled = [], {}
    for package in sources:
        try:
            pins += build_local_wheels(
                [package], target, dir_out, logger=session.logger, credentials=session.credentials
            )
        except LayerError:
            if not _built_for_host_only(dir_out / package.name, target):
                raise
            shutil.rmtree(dir_out / package.name)
            compiled[package.name] = (
                package,
                _make_sdist(package, layout.dir_build_lambda_layer / "local-sdists" / package.name, session),
            )
    if compiled:
        build_id = uuid.uuid4().hex
        dir_staging, dir_in_container = staging_dir(session.dir_cache, build_id)
        sdists = {name: layout.get_path_in_container(sdist) for name, (_, sdist) in compiled.items()}
        try:
            session.request(
                plan_wheel_steps(sdists, layout.get_path_in_container(dir_out), credentials=session.credentials),
                build_id=build_id,
                dir_build=dir_in_container,
            )
        finally:
            shutil.rmtree(dir_staging, ignore_errors=True)
        pins += [_wheel_pin(package, dir_out / name, target) for name, (package, _) in compiled.items()]
    return pins


def _install(session: _Session, pins: list[LockedPin]) -> None:
    """Install the pins in the container into a fresh staging folder, then move it into the project."""
    build, layout = session.build, session.layout
    build_id = uuid.uuid4().hex
    remove_stale_staging(session.dir_cache, time.time())
    dir_staging, dir_in_container = staging_dir(session.dir_cache, build_id)
    dir_staging.mkdir(parents=True)
    steps = plan_container_steps(
        tool=build.tool,
        target=build.target,
        layout=layout,
        dir_python=f"{dir_in_container}/python",
        pins=pins,
        credentials=session.credentials,
        requirement_options=requirement_index_options(
            session.manifest.content, base_dir=layout.get_path_in_container(session.manifest.path.parent)
        )
        if build.tool is LayerBuildToolEnum.pip
        else (),
    )
    try:
        session.request(steps, build_id=build_id, dir_build=dir_in_container)
        move_tree(dir_staging / "python", layout.dir_python)
    finally:
        shutil.rmtree(dir_staging, ignore_errors=True)


def build_container_layer(build: ContainerBuild, *, credentials: Credentials | None = None, logger: BaseLogger) -> None:
    """Fill ``LayerPathLayout.dir_python`` with the lock's runtime set, installed in a build container."""
    session = _open_session(build, credentials, logger)
    logger.log(
        f"Build a layer for {build.target.runtime} {build.target.architecture} from {session.manifest.path} with "
        f"{build.tool.value} in {session.image} ({session.engine.runtime})"
    )
    _prepare_build_folder(session)
    session.image_check.result()  # the image is there (pulled if need be), or its error
    pins = sorted(pins_for_manifest(session.manifest) + _local_source_pins(session), key=lambda p: p.name)
    _install(session, pins)
    check_installed(session.layout.dir_python, pins, build.target, manifest_name=str(session.manifest.path))
    check_wheel_tags(session.layout.dir_python, build.target)
    logger.log(f"Installed {len(pins)} distributions into {session.layout.dir_python}")


def build_layer_artifacts_in_container(
    *,
    tool: LayerBuildToolEnum | str,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Fill ``LayerPathLayout.dir_python`` by running the local build's install in a container.

    ``image`` defaults to the SAM build image of the target; any image whose ``python`` is the
    target's version can be named. ``dir_cache`` (default :func:`default_cache_dir`) keeps the
    pinned build tool and download caches between builds. ``network="host"`` lets the container
    reach what the host reaches (an index or proxy on loopback); ``None`` uses the engine's default.
    The previous build in ``build/lambda/layer`` is removed without asking: this is a batch build.
    The build container is kept for the next build with the same settings, in this process or a later
    one, until it has been idle for ten minutes (``ALAB_KEEP_BUILD_CONTAINER=0``: until the process
    ends) or :func:`close_build_containers`.
    """
    build = ContainerBuild(
        tool=coerce_tool(tool),
        path_pyproject_toml=Path(path_pyproject_toml),
        target=LayerTarget(python_version=python_version, architecture=architecture),
        image=image,
        container_runtime=container_runtime,
        dir_cache=Path(dir_cache) if dir_cache is not None else None,
        network=network,
    )
    with forward_logs(verbose, printer):  # the seed's verbose/printer: the build logs, this forwards
        build_container_layer(build, credentials=credentials, logger=BaseLogger(stage="build"))


def build_layer_artifacts_using_pip_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Install requirements.txt's pins with the pinned pip (see :func:`build_layer_artifacts_in_container`)."""
    build_layer_artifacts_in_container(tool=LayerBuildToolEnum.pip, **locals())


def build_layer_artifacts_using_poetry_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Check poetry.lock with the pinned poetry, then pip-install its main group, as the local build does."""
    build_layer_artifacts_in_container(tool=LayerBuildToolEnum.poetry, **locals())


def build_layer_artifacts_using_uv_in_container(
    *,
    path_pyproject_toml: Path | str,
    python_version: str = DEFAULT_PYTHON_VERSION,
    architecture: str = DEFAULT_ARCHITECTURE,
    credentials: Credentials | None = None,
    image: str | None = None,
    container_runtime: str | None = None,
    dir_cache: Path | str | None = None,
    network: str | None = "host",
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> None:
    """Install uv.lock's runtime set with the pinned uv (see :func:`build_layer_artifacts_in_container`)."""
    build_layer_artifacts_in_container(tool=LayerBuildToolEnum.uv, **locals())
