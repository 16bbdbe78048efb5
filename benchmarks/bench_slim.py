"""Slim layers: the size each slim packaging option saves on a realistic set, and whether the slimmed layer imports.

A uv project locked from PyPI with numpy, pandas, pydantic-core and cryptography (and what they pull
in) is built once for the target (python3.11 x86_64 by default: a Python of that version runs here).
The same tree is then packaged with no slim option, with each option alone and with all of them:
- slim ÷ plain unzipped size and zipped size per option (sizes are deterministic: one sample each);
- every variant is packaged twice and must give the same sha256 (byte-reproducible);
- every slimmed zip (each option alone and all of them) is extracted and every top-level module in it
  (packages, modules and extension modules at the top of ``python/``) is imported by a Python of the
  target version, each in a fresh process run with ``-I -S`` (no site-packages, no user site: the
  benchmark's own virtualenv has cryptography, numpy's dependencies and more) with only the layer
  added to ``sys.path``, and the imported module's file must be inside the layer. A failed import
  is reported, never hidden.

Usage: .venv/bin/python benchmarks/bench_slim.py [--python-version 3.11] [--architecture x86_64]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aws_lambda_artifact_builder.api import LayerTarget
from aws_lambda_artifact_builder.layer.build import build_layer_artifacts_in_local
from aws_lambda_artifact_builder.layer.package import SLIM_OPTIONS, PackagingOptions, create_layer_zip_file
from projects import clean_env, tool_path
from ratios import Ratio, markdown_table, size, size_ratio

SUBJECT = "numpy, pandas, pydantic-core, cryptography (PyPI)"
PINS = ["numpy==2.1.3", "pandas==2.2.3", "pydantic-core==2.23.4", "cryptography==43.0.3"]


def make_project(work: Path, target: LayerTarget) -> Path:
    """A uv project of ``PINS``, locked from PyPI (their dependencies resolved by uv)."""
    folder = work / "slim-app"
    folder.mkdir(parents=True)
    deps = ",\n".join(f'    "{p}"' for p in PINS)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "slim-app"\nversion = "0.1.0"\nrequires-python = ">={target.python_version}"\n'
        f"dependencies = [\n{deps},\n]\n"
    )
    subprocess.run([tool_path("uv"), "lock"], cwd=folder, env=clean_env(work), check=True, capture_output=True)
    return folder / "pyproject.toml"


def package_twice(path: Path, options: PackagingOptions) -> tuple[int, int, str, bool]:
    """(unzipped, zipped, sha256, the second packaging gave the same bytes)."""
    first = create_layer_zip_file(path_pyproject_toml=path, options=options, verbose=False)
    second = create_layer_zip_file(path_pyproject_toml=path, options=options, verbose=False)
    return first.unzipped_size, first.zipped_size, first.sha256, first.sha256 == second.sha256


def top_level_modules(dir_python: Path) -> list[str]:
    """The importable names at the top of a layer's ``python/`` folder."""
    names = set()
    for entry in dir_python.iterdir():
        if entry.name.endswith((".dist-info", ".libs", ".data")) or entry.name in ("__pycache__", "bin"):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            names.add(entry.name)
        elif entry.is_file() and entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.is_file() and ".so" in entry.suffixes:
            names.add(entry.name.split(".", 1)[0])
    return sorted(names)


def find_python(version: str) -> str | None:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    return shutil.which(f"python{version}")


def smoke_import(path_zip: Path, python: str, work: Path) -> tuple[list[str], dict[str, str]]:
    """(modules imported, {module: last error line}) for every top-level module of the zip."""
    dest = work / "extracted"
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(path_zip) as zf:
        zf.extractall(dest)
    dir_python = dest / "python"
    ok, failed = [], {}
    for name in top_level_modules(dir_python):
        code = (
            f"import sys, os; sys.path.insert(0, {str(dir_python)!r}); import {name} as m; "
            f"f = getattr(m, '__file__', None) or list(m.__path__)[0]; "
            f"assert os.path.realpath(f).startswith({str(dir_python.resolve())!r} + os.sep), f'{{f}} is not the layer'"
        )
        result = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=dest, timeout=300)
        if result.returncode == 0:
            ok.append(name)
        else:
            lines = result.stderr.strip().splitlines()
            failed[name] = lines[-1] if lines else f"exit {result.returncode}"
    return ok, failed


def smoke_import_every_variant(
    path: Path, variants: list[tuple[str, PackagingOptions]], python: str, work: Path, target: LayerTarget
) -> list[str]:
    """A note per slimmed layer: its top-level modules imported from the layer alone (see the module)."""
    notes: list[str] = []
    for label, options in variants:
        lines: list[str] = []
        path_zip = create_layer_zip_file(path_pyproject_toml=path, options=options, printer=lines.append).path
        if label == "all slim options":
            notes += [line.replace("[package] ", "") for line in lines if "strip_debug_symbols" in line]
        ok, failed = smoke_import(path_zip, python, work)
        verdict = "all import" if not failed else "FAILED: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        notes.append(
            f"Smoke import (`{Path(python).name} -I -S`, Python {target.python_version}, each module's file inside "
            f"the layer) of the {label} layer: {len(ok)} of {len(ok) + len(failed)} top-level modules "
            f"({', '.join(ok + sorted(failed))}): {verdict}."
        )
    return notes


def measure(*, python_version: str = "3.11", architecture: str = "x86_64") -> tuple[list[Ratio], list[str]]:
    """Every row of this benchmark, and notes about what was measured."""
    target = LayerTarget(python_version=python_version, architecture=architecture)
    work = Path(tempfile.mkdtemp(prefix="alab-bench-slim-"))
    rows: list[Ratio] = []
    notes: list[str] = []
    try:
        path = make_project(work, target)
        build_layer_artifacts_in_local(
            tool="uv",
            path_pyproject_toml=path,
            python_version=target.python_version,
            architecture=target.architecture,
            skip_prompt=True,
            verbose=False,
        )
        plain = package_twice(path, PackagingOptions())
        variants = [(name, PackagingOptions(**{name: True})) for name in SLIM_OPTIONS]
        variants.append(("all slim options", PackagingOptions(**dict.fromkeys(SLIM_OPTIONS, True))))
        reproducible = [plain[3]]
        saved = []
        for label, options in variants:
            unzipped, zipped, _, same = package_twice(path, options)
            reproducible.append(same)
            rows.append(size_ratio(f"slim ÷ plain unzipped size, {label}", SUBJECT, unzipped, plain[0], "< 1"))
            rows.append(size_ratio(f"slim ÷ plain zipped size, {label}", SUBJECT, zipped, plain[1], "< 1"))
            saved.append(f"{label} saves {size(plain[0] - unzipped)} unzipped, {size(plain[1] - zipped)} zipped")
        notes.append(
            f"Slim options on {SUBJECT} for {target.runtime} {target.architecture} (plain layer: {size(plain[0])} "
            f"unzipped, {size(plain[1])} zipped): " + "; ".join(saved) + "."
        )
        notes.append(
            "Each variant packaged twice gave the same sha256: "
            + ("yes, every one." if all(reproducible) else f"NO ({reproducible.count(False)} differ).")
        )
        python = find_python(target.python_version)
        if python is None:
            notes.append(f"Smoke import not run: no python{target.python_version} on this machine.")
        else:
            notes += smoke_import_every_variant(path, variants, python, work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--python-version", default="3.11")
    parser.add_argument("--architecture", default="x86_64")
    args = parser.parse_args()
    rows, notes = measure(python_version=args.python_version, architecture=args.architecture)
    print(markdown_table(rows))
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
