"""Build wheels (and sdists) from the tiny fixture packages with the standard library only.

A real build backend would need the network; these wheels are complete (METADATA, WHEEL,
entry points, RECORD with hashes) so pip, uv and poetry install them like any other. An sdist
(``build_sdist``) is the package's folder as a tar.gz with a ``PKG-INFO``: the installer builds it
with the backend its ``[build-system]`` names, which the index must then serve.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import tomllib
import zipfile
from pathlib import Path

_DATE = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(dir_package: Path, dir_out: Path) -> Path:
    meta = tomllib.loads((dir_package / "pyproject.toml").read_text())
    project = meta["project"]
    name, version = project["name"], project["version"]
    dist = name.replace("-", "_")
    tag = meta.get("tool", {}).get("fixture", {}).get("tag", "py3-none-any")
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((dir_package / "src").rglob("*.py")):
        files[path.relative_to(dir_package / "src").as_posix()] = path.read_bytes()
    # [tool.fixture.files]: entries placed as written (``<dist>.data/scripts/x``, even ``../../etc/x``).
    for arcname, text in meta.get("tool", {}).get("fixture", {}).get("files", {}).items():
        files[arcname.replace("{dist}", dist).replace("{version}", version)] = text.encode()
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
    ]
    metadata += [f"Requires-Dist: {req}" for req in project.get("dependencies", [])]
    if isinstance(project.get("license"), str):  # PEP 639: an SPDX expression
        metadata.append(f"License-Expression: {project['license']}")
    metadata += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    purelib = "true" if tag == "py3-none-any" else "false"
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: alab-tests\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    ).encode()
    scripts = project.get("scripts", {})
    if scripts:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in scripts.items()]
        files[f"{info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dir_out.mkdir(parents=True, exist_ok=True)
    path_whl = dir_out / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path_whl, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files.items():
            zi = zipfile.ZipInfo(arcname, date_time=_DATE)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return path_whl


def build_sdist(dir_package: Path, dir_out: Path) -> Path:
    """``<name>-<version>.tar.gz`` (PEP 625 name) of the package's pyproject.toml and ``src/``, with a
    ``PKG-INFO`` (metadata 2.2, nothing dynamic) and fixed times, owners and modes: the same bytes each time."""
    project = tomllib.loads((dir_package / "pyproject.toml").read_text())["project"]
    base = f"{project['name'].replace('-', '_')}-{project['version']}"
    info = [
        "Metadata-Version: 2.2",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
    ]
    info += [f"Requires-Dist: {req}" for req in project.get("dependencies", [])]
    files = {"PKG-INFO": ("\n".join(info) + "\n").encode()}
    files["pyproject.toml"] = (dir_package / "pyproject.toml").read_bytes()
    for path in sorted((dir_package / "src").rglob("*.py")):
        files[path.relative_to(dir_package).as_posix()] = path.read_bytes()
    dir_out.mkdir(parents=True, exist_ok=True)
    path_sdist = dir_out / f"{base}.tar.gz"
    with gzip.GzipFile(path_sdist, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in sorted(files.items()):
            member = tarfile.TarInfo(f"{base}/{name}")
            member.size, member.mtime, member.mode = len(data), 1577836800, 0o644
            tar.addfile(member, io.BytesIO(data))
    return path_sdist


def build_all_fixture_wheels(dir_packages: Path, dir_out: Path) -> list[Path]:
    return [build_wheel(d, dir_out) for d in sorted(dir_packages.iterdir()) if (d / "pyproject.toml").is_file()]
