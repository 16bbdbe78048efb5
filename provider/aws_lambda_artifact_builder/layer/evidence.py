"""SBOM and provenance of a layer: what is in the zip, and how and where it was made.

* ``sbom.cdx.json``: a CycloneDX 1.6 JSON SBOM made with ``cyclonedx-python-lib`` from the zip
  itself (every ``python/*.dist-info`` in it, read with ``importlib.metadata``): name, version,
  ``pkg:pypi`` purl, licence (``License-Expression``, else a one-line ``License``, else the
  trove classifiers) and the sha256 of the wheel installed when the lock says which file that was
  (its tags equal the dist-info's ``WHEEL`` tags), or, for requirements.txt, when pip's own
  ``--report`` of the build says so (``install-report.json`` beside the zip). It is deterministic: its serial number derives
  from the zip's sha256 and it carries no timestamp, so two builds of one lock give the same SBOM.
* ``provenance.json``: the tool and its version (in a container build, as the installer there reports
  it), the lock's digest, the fingerprint, the target, where it was built (host, or container image,
  its digest and the ID of the image the container ran), the strip's version when
  ``strip_debug_symbols`` is on, this tool's version and the time.

Both are written next to the version's record (``layer/NNNNNN/``, ``LayerS3Layout``) once a
version is published and recorded (``store_version_evidence``, called once by the deploy), the
SBOM beside the zip by ``alab layer build``, and both beside a zip in the artifact store by the
run that built it (``describe_build``; that provenance has no version). A version published from
the store takes its builder, tool and build place from the store's provenance: the deploy that
copied the zip did not make it. They are never inside the zip, which stays byte-reproducible.

The lock's per-file hashes are read from ``uv.lock``/``poetry.lock`` with ``tomllib`` here because
neither tool's export says which hash belongs to which file (``uv export`` lists them per package).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import platform
import sys
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from packaging.tags import parse_tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from ..constants import LayerBuildToolEnum
from ..progress import get_logger
from .clients import aws_call
from .foundation import LayerS3Layout
from .history import PROVENANCE_NAME, SBOM_NAME
from .install_plan import INSTALL_REPORT_NAME
from .manifest import LocalManifest, RuntimeSet, find_tool, read_local_manifest
from .runner import SUBPROCESS, CommandRunner
from .target import LayerTarget

if TYPE_CHECKING:  # pragma: no cover
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.component import Component
    from mypy_boto3_s3 import S3Client

    from .facts import VersionFacts
    from .inputs import LayerInputs
    from .package import LayerZipInfo

import tomllib

PROVENANCE_FORMAT = "alab-provenance/1"
_DIST = "aws-lambda-artifact-builder"


@dataclasses.dataclass(frozen=True)
class ZippedDistribution:
    """One distribution as the zip holds it."""

    name: str
    version: str
    #: ``License-Expression``, a one-line ``License``, or the licence names of the trove classifiers.
    licenses: tuple[str, ...]
    #: The dist-info's ``WHEEL`` tags (empty when it has none).
    tags: frozenset[str]


def _licenses(metadata: Any) -> tuple[str, ...]:
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return (expression,)
    text = (metadata.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100:
        return (text,)
    classifiers = metadata.get_all("Classifier") or []
    named = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::") and c.count("::") >= 2]
    return tuple(sorted(set(named)))


def zipped_distributions(path_zip: Path, *, prefix: str = "python/") -> list[ZippedDistribution]:
    """Every distribution whose ``.dist-info`` the zip holds below ``prefix``, sorted by canonical name."""
    found = []
    with zipfile.ZipFile(path_zip) as zf:
        folders = sorted(
            {n[len(prefix) :].split("/")[0] for n in zf.namelist() if n.startswith(prefix) and ".dist-info/" in n}
        )
        for folder in folders:
            if not folder.endswith(".dist-info"):
                continue
            dist = importlib.metadata.PathDistribution(zipfile.Path(zf, f"{prefix}{folder}/"))
            metadata = dist.metadata
            wheel = dist.read_text("WHEEL") or ""
            tags = frozenset(
                str(t)
                for line in wheel.splitlines()
                if line.startswith("Tag:")
                for t in parse_tag(line.split(":", 1)[1].strip())
            )
            found.append(
                ZippedDistribution(
                    name=str(metadata["Name"]),
                    version=str(metadata["Version"]),
                    licenses=_licenses(metadata),
                    tags=tags,
                )
            )
    return sorted(found, key=lambda d: canonicalize_name(d.name))


def lock_file_hashes(manifest: LocalManifest) -> dict[str, str]:
    """``file name -> sha256:<hex>`` for every file a ``uv.lock`` or ``poetry.lock`` lists (none for pip)."""
    if manifest.tool is LayerBuildToolEnum.pip:
        return {}
    try:
        data = tomllib.loads(manifest.path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    files: list[Mapping[str, Any]] = []
    for entry in data.get("package", []):
        if not isinstance(entry, dict):
            continue
        if manifest.tool is LayerBuildToolEnum.uv:
            files += [w for w in entry.get("wheels", []) if isinstance(w, dict)]
            if isinstance(entry.get("sdist"), dict):
                files.append(entry["sdist"])
        else:
            files += [f for f in entry.get("files", []) or [] if isinstance(f, dict)]
    meta_files = data.get("metadata", {}).get("files", {})  # poetry lock-version 1.x
    if isinstance(meta_files, dict):
        files += [f for group in meta_files.values() if isinstance(group, list) for f in group if isinstance(f, dict)]
    hashes = {}
    for f in files:
        where = str(f.get("file") or f.get("filename") or f.get("url") or f.get("path") or "")
        name = unquote(PurePosixPath(urlsplit(where).path).name)
        if name and f.get("hash"):
            hashes[name] = str(f["hash"])
    return hashes


def reported_wheel_hashes(path_report: Path) -> dict[str, str]:
    """``wheel file name -> sha256:<hex>`` of what ``pip install --report`` says it installed (its
    ``download_info.archive_info.hashes``, the digest of the very file pip checked and installed);
    empty when there is no readable report (uv, poetry, a zip this folder did not build)."""
    try:
        report = json.loads(path_report.read_text(encoding="utf-8"))
        items = report["install"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found = {}
    for item in items if isinstance(items, list) else []:
        info = item.get("download_info") if isinstance(item, dict) else None
        if not isinstance(info, dict):
            continue
        digest = (info.get("archive_info") or {}).get("hashes", {}).get("sha256")
        name = unquote(PurePosixPath(urlsplit(str(info.get("url", ""))).path).name)
        if isinstance(digest, str) and name.endswith(".whl"):
            found[name] = f"sha256:{digest}"
    return found


def installed_wheel(
    dist: ZippedDistribution, runtime_set: RuntimeSet, file_hashes: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(wheel file name, ``sha256:<hex>``) of what the lock installed for ``dist``, as far as it says."""
    name = canonicalize_name(dist.name)
    package = next((p for p in runtime_set.packages if canonicalize_name(p.name) == name), None)
    if package is None:
        return None, None
    # A lock that names no files (requirements.txt): the wheels pip's --report says it installed.
    for filename in package.filenames or [f for f in file_hashes if f.endswith(".whl")]:
        try:
            wheel_name, version, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        if wheel_name != name or (not package.filenames and str(version) != str(Version(dist.version))):
            continue
        if dist.tags and {str(t) for t in tags} == dist.tags:
            return filename, file_hashes.get(filename)
    if len(package.hashes) == 1:  # requirements.txt with one --hash: it is the installed file's
        return None, package.hashes[0]
    return None, None


def _library_component(
    dist: ZippedDistribution, runtime_set: RuntimeSet, file_hashes: Mapping[str, str], factory: LicenseFactory
) -> Component:
    """The SBOM component of one distribution in the zip: purl, licences and, when the lock says
    which wheel was installed, that wheel's name and sha256."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    purl = PackageURL(type="pypi", name=canonicalize_name(dist.name), version=dist.version)
    wheel, digest = installed_wheel(dist, runtime_set, file_hashes)
    hashes = []
    if digest and digest.startswith("sha256:"):
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=digest.split(":", 1)[1]))
    return Component(
        type=ComponentType.LIBRARY,
        name=dist.name,
        version=dist.version,
        purl=purl,
        bom_ref=purl.to_string(),
        hashes=hashes,
        licenses=[factory.make_from_string(text) for text in dist.licenses],
        properties=[Property(name="alab:wheel", value=wheel)] if wheel else [],
    )


def make_sbom(
    dists: list[ZippedDistribution],
    *,
    runtime_set: RuntimeSet,
    file_hashes: Mapping[str, str],
    zip_sha256: str,
    target: LayerTarget,
) -> str:
    """The CycloneDX 1.6 JSON SBOM of a zip's distributions (deterministic: see the module)."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.contrib.this.builders import this_component
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    factory = LicenseFactory()
    components = [_library_component(dist, runtime_set, file_hashes, factory) for dist in dists]
    root = Component(
        type=ComponentType.FILE,
        name="layer.zip",
        bom_ref="layer.zip",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=zip_sha256)],
        properties=[
            Property(name="alab:runtime", value=target.runtime),
            Property(name="alab:architecture", value=target.architecture),
        ],
    )
    ours = Component(type=ComponentType.APPLICATION, name=_DIST, version=builder_version(), bom_ref=_DIST)
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:alab:layer-zip:sha256:{zip_sha256}"),
        metadata=BomMetaData(component=root, tools=[]),
        components=components,
    )
    bom.metadata.tools.components.update([ours, this_component()])
    bom.register_dependency(root, components)
    for component in components:
        bom.register_dependency(component, [])
    data = json.loads(make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string())
    data.get("metadata", {}).pop("timestamp", None)  # time belongs to the provenance: the SBOM is reproducible
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def builder_version() -> str:
    try:
        return importlib.metadata.version(_DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: Path) -> hashlib._Hash:
    """The sha256 of a file read in chunks (a layer zip can be 250 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest


def sbom_for_zip(path_zip: Path, manifest: LocalManifest, target: LayerTarget, *, zip_sha256: str | None = None) -> str:
    return make_sbom(
        zipped_distributions(path_zip),
        runtime_set=manifest.runtime_set,
        file_hashes={**reported_wheel_hashes(path_zip.with_name(INSTALL_REPORT_NAME)), **lock_file_hashes(manifest)},
        zip_sha256=zip_sha256 or file_sha256(path_zip).hexdigest(),
        target=target,
    )


def write_local_sbom(info: LayerZipInfo, *, path_pyproject_toml: Path, tool: str, target: LayerTarget) -> Path:
    """``sbom.cdx.json`` beside a zip ``alab layer build`` made."""
    manifest = read_local_manifest(path_pyproject_toml, tool, target)
    path = info.path.with_name(SBOM_NAME)
    path.write_text(sbom_for_zip(info.path, manifest, target, zip_sha256=info.sha256), encoding="utf-8")
    return path


def tool_version(tool: LayerBuildToolEnum, *, runner: CommandRunner = SUBPROCESS) -> str | None:
    """``uv 0.9.5`` or the like: the tool that read the lock on this host (``None`` if it does not answer)."""
    argv = [sys.executable, "-m", "pip", "--version"] if tool is LayerBuildToolEnum.pip else None
    if argv is None:
        exe = find_tool(tool.value)
        if exe is None:
            return None
        argv = [exe, "--version"]
    try:
        result = runner.run(argv, timeout=60)
    except OSError:
        return None
    text = result.stdout.strip().splitlines()
    return text[0] if result.ok and text else None


def image_digest(image: str, container_runtime: str | None, *, runner: CommandRunner = SUBPROCESS) -> str | None:
    """The image's repo digest (``name@sha256:…``), else its ID (``sha256:…``), as the container engine has
    it (docker's and podman's ``image inspect`` both know these two); ``None`` when it cannot say."""
    try:
        from .build_container import detect_container_engine

        engine = detect_container_engine(container_runtime)
        result = runner.run(
            [engine.executable, "image", "inspect", "--format", "{{.Id}} {{range .RepoDigests}}{{.}} {{end}}", image],
            timeout=60,
        )
    except Exception:  # noqa: BLE001 - the digest is informative; no engine means no digest
        return None
    words = result.stdout.split()
    if not result.ok or not words:
        return None
    image_id = words[0] if words[0].startswith("sha256:") else f"sha256:{words[0]}"
    return words[1] if len(words) > 1 else image_id


def _container_facts(inputs: LayerInputs) -> dict[str, Any]:
    """What the build script reported from inside the build container (``build_container.py``)."""
    from .build_container import CONTAINER_FACTS_NAME

    try:
        facts = json.loads((inputs.path_layout.dir_build_lambda_layer / CONTAINER_FACTS_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def strip_version(target: LayerTarget, *, runner: CommandRunner = SUBPROCESS) -> str | None:
    """``GNU strip (GNU Binutils for Debian) 2.40`` or the like: the strip ``strip_debug_symbols`` runs
    (``slim.find_strip``); another release may write other bytes."""
    from .slim import find_strip

    exe = find_strip("aarch64" if target.architecture == "arm64" else "x86_64")
    if exe is None:
        return None
    try:
        done = runner.run([exe, "--version"], timeout=60)
    except OSError:
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.ok and lines else None


def build_provenance(
    *,
    inputs: LayerInputs,
    zip_sha256: str,
    sbom_sha256: str,
    build_in: str,
    image: str | None,
    container_runtime: str | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """How a zip was made, without any published version: what the artifact store keeps beside the zip,
    and the base of every version's provenance."""
    container, facts = None, {}
    if build_in == "container":
        from .build_container import default_image

        name = image or default_image(inputs.target)
        facts = _container_facts(inputs)
        container = {"image": name, "digest": image_digest(name, container_runtime), "image_id": facts.get("image_id")}
    host_tool = tool_version(inputs.tool) if not facts.get("tool_version") else None
    packaging = inputs.packaging_options.fingerprint_fields()
    if inputs.packaging_options.strip_debug_symbols:
        packaging = {**packaging, "strip_version": strip_version(inputs.target)}
    return {
        "format": PROVENANCE_FORMAT,
        "builder": {"name": _DIST, "version": builder_version()},
        "tool": {
            "name": inputs.tool.value,
            "version": facts.get("tool_version") or host_tool,
            "note": "" if not container else "reported in the build container" if not host_tool else "the host's",
        },
        "lock": {"file": inputs.manifest.path.name, "sha256": hashlib.sha256(inputs.manifest.content).hexdigest()},
        "fingerprint": inputs.fingerprint,
        "target": {
            "runtime": inputs.target.runtime,
            "python_version": inputs.target.python_version,
            "architecture": inputs.target.architecture,
        },
        "packaging": packaging,
        "build": {
            "place": build_in,
            "container": container,
            "host": {"system": platform.system(), "machine": platform.machine(), "python": platform.python_version()},
            "artifact_store": None,
        },
        "zip_sha256": zip_sha256,
        "sbom": {"file": SBOM_NAME, "sha256": sbom_sha256},
        "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    }


def make_provenance(
    *,
    inputs: LayerInputs,
    record: VersionFacts,
    zip_sha256: str,
    sbom_sha256: str,
    build_in: str,
    image: str | None,
    container_runtime: str | None,
    now: dt.datetime | None = None,
    from_store: str | None = None,
    stored: Mapping[str, Any] | None = None,
) -> str:
    """The provenance record of a published version (see the module). ``from_store`` names the artifact
    store's zip when this deploy published one built by another run, and ``stored`` is the provenance the
    store keeps beside it: the builder, tool and build place are then the run's that built the zip."""
    data = build_provenance(
        inputs=inputs, zip_sha256=zip_sha256, sbom_sha256=sbom_sha256, build_in=build_in, image=image,
        container_runtime=container_runtime, now=now,
    )  # fmt: skip
    if stored is not None and stored.get("zip_sha256") == zip_sha256:
        data.update({key: stored[key] for key in ("builder", "tool", "build") if key in stored})
        data["built_at"] = stored.get("created_at")
    data["build"] = {**data["build"], "artifact_store": from_store}
    data["layer"] = {
        "name": record.layer_name,
        "version": record.layer_version,
        "arn": record.layer_version_arn,
        "code_sha256": record.code_sha256,
        "code_size": record.code_size,
        "zip_sha256": data.pop("zip_sha256"),
    }
    return json.dumps(data, indent=2) + "\n"


def describe_build(
    path_zip: Path, *, inputs: LayerInputs, build_in: str, image: str | None, container_runtime: str | None
) -> dict[str, str]:
    """The SBOM and build provenance of a zip this run built, by file name, for the artifact store."""
    zip_sha256 = file_sha256(path_zip).hexdigest()
    sbom = sbom_for_zip(path_zip, inputs.manifest, inputs.target, zip_sha256=zip_sha256)
    provenance = build_provenance(
        inputs=inputs, zip_sha256=zip_sha256, sbom_sha256=hashlib.sha256(sbom.encode("utf-8")).hexdigest(),
        build_in=build_in, image=image, container_runtime=container_runtime,
    )  # fmt: skip
    return {SBOM_NAME: sbom, PROVENANCE_NAME: json.dumps(provenance, indent=2) + "\n"}


def _put_json_files(s3_client: S3Client, layout: LayerS3Layout, version: int, texts: Mapping[str, str]) -> list[str]:
    """Write each JSON text under ``s3dir`` by its file name, in order; their S3 URIs."""
    written = []
    for name, text in texts.items():
        s3path = layout.get_s3path_version_file(version, name)
        with aws_call("s3:PutObject", f"write {name}", s3path=s3path):
            s3_client.put_object(
                Bucket=s3path.bucket, Key=s3path.key, Body=text.encode("utf-8"), ContentType="application/json"
            )
        written.append(s3path.uri)
    return written


def store_version_evidence(
    *,
    s3_client: S3Client,
    inputs: LayerInputs,
    record: VersionFacts,
    built: bool,
    build_in: str,
    image: str | None,
    container_runtime: str | None,
    path_zip: Path | None = None,
    from_store: str | None = None,
    stored: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write ``sbom.cdx.json`` and ``provenance.json`` beside a published version's record; their S3 URIs.

    ``path_zip`` is the zip that was published (default: the build folder's); ``from_store`` the
    artifact store object it came from and ``stored`` the provenance the store keeps beside it.

    Only a deploy that built the zip can describe it: an adopted version keeps what its own
    publish stored. A zip in the build folder that is no longer the published one (another
    build of the project ran since) is not described. A failure is a warning: the version is
    published and recorded, and ``alab layer list`` shows what it lacks.
    """
    log = get_logger("evidence")
    if not built:
        log.info("[evidence] version %s was adopted, not built: nothing new to describe", record.layer_version)
        return []
    path_zip = path_zip or inputs.path_layout.path_build_lambda_layer_zip
    try:
        digest = file_sha256(path_zip)
        if base64.b64encode(digest.digest()).decode("ascii") != record.code_sha256:
            log.warning(
                "[evidence] warning: %s is no longer the zip of version %s: no SBOM", path_zip, record.layer_version
            )
            return []
        sbom = sbom_for_zip(path_zip, inputs.manifest, inputs.target, zip_sha256=digest.hexdigest())
        provenance = make_provenance(
            inputs=inputs,
            record=record,
            zip_sha256=digest.hexdigest(),
            sbom_sha256=hashlib.sha256(sbom.encode("utf-8")).hexdigest(),
            build_in=build_in,
            image=image,
            container_runtime=container_runtime,
            from_store=from_store,
            stored=stored,
        )
        texts = {SBOM_NAME: sbom, PROVENANCE_NAME: provenance}
        written = _put_json_files(s3_client, inputs.s3_layout, record.layer_version, texts)
    except Exception as e:  # noqa: BLE001 - see the docstring: the publish stands
        log.warning(
            "[evidence] warning: could not store the SBOM and provenance of version %s: %s", record.layer_version, e
        )
        return []
    log.info("[evidence] wrote %s", ", ".join(written))
    return written
