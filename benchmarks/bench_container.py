"""Container build cost against the local build of the same lock, measured in one run.

Locks one realistic set from PyPI (numpy, pydantic, requests, orjson, ...) for pip
(requirements.txt), poetry (poetry.lock) and uv (uv.lock), then for each tool and each container
engine that answers (docker, podman) times medians of
- container build ÷ local build of the same lock for the same target, warm caches (goal <= 1.3).
Both sides build the layer's ``python/`` tree only; packaging is the same host code for both. Each
row also says whether the two packaged layer.zip files are byte-identical.

The target is the image's Python and this machine's architecture, so that the local build and the
container build install for the same runtime. CI's image: scripts/setup-container-engine.sh.

Usage: .venv/bin/python benchmarks/bench_container.py --image IMAGE [--python-version 3.11] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aws_lambda_artifact_builder.api import (
    LayerError,
    build_layer_artifacts_in_container,
    build_layer_artifacts_in_local,
    create_layer_zip_file,
)
from aws_lambda_artifact_builder.layer.build import KEEP_ENV
from aws_lambda_artifact_builder.layer.build_container import detect_container_engine

PINS = [
    "annotated-types==0.7.0",
    "certifi==2024.8.30",
    "charset-normalizer==3.4.0",
    "idna==3.10",
    "numpy==2.1.3",
    "orjson==3.10.18",
    "pydantic==2.9.2",
    "pydantic-core==2.23.4",
    "requests==2.32.3",
    "typing-extensions==4.12.2",
    "urllib3==2.2.3",
]
TOOLS = ("pip", "poetry", "uv")


def tool_path(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} is not installed (pip install {name})")
    return found


def lock_env(work: Path) -> dict[str, str]:
    """The caller's environment without installer settings or user config, for locking."""
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or not k.startswith(("PIP_", "UV_", "POETRY_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "POETRY_CONFIG_DIR": str(work / "poetry-config")})
    return env


def make_projects(work: Path) -> dict[str, Path]:
    deps = ",\n".join(f'    "{p}"' for p in PINS)
    pyproject = f'[project]\nname = "bench-app"\nversion = "0.1.0"\nrequires-python = ">=3.10,<4"\ndependencies = [\n{deps},\n]\n'
    # poetry reaches PyPI here only through its simple index (the JSON API is not served).
    poetry_source = '\n[[tool.poetry.source]]\nname = "pypi-simple"\nurl = "https://pypi.org/simple/"\npriority = "primary"\n'
    projects = {}
    for tool in TOOLS:
        folder = work / tool
        folder.mkdir()
        (folder / "pyproject.toml").write_text(pyproject + (poetry_source if tool == "poetry" else ""))
        projects[tool] = folder / "pyproject.toml"
    (work / "pip" / "requirements.txt").write_text("\n".join(PINS) + "\n")
    env = lock_env(work)
    subprocess.run([tool_path("uv"), "lock"], cwd=work / "uv", env=env, check=True, capture_output=True)
    subprocess.run(
        [tool_path("poetry"), "lock", "--no-interaction"], cwd=work / "poetry", env=env, check=True, capture_output=True
    )
    return projects


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each (already warm) function over ``rounds`` rounds that run them in turn:
    interleaving spreads the machine's load drift over all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default=os.environ.get("ALAB_CONTAINER_TEST_IMAGE"), help="image with the target's Python")
    parser.add_argument("--python-version", default="3.11", help="the image's Python")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.image:
        sys.exit("name an image with --image (or ALAB_CONTAINER_TEST_IMAGE)")
    architecture = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    engines = []
    for runtime in ("docker", "podman"):
        try:
            engines.append(detect_container_engine(runtime).runtime)
        except LayerError as e:
            print(f"skipping {runtime}: {e}")
    if not engines:
        sys.exit("no container engine answers")
    work = Path(tempfile.mkdtemp(prefix="alab-bench-container-"))
    try:
        projects = make_projects(work)
        common = dict(python_version=args.python_version, architecture=architecture, verbose=False)
        rows = []
        for tool in TOOLS:
            path = projects[tool]
            builds: dict[str, Callable[[], object]] = {
                "local": lambda tool=tool, path=path: build_layer_artifacts_in_local(
                    tool=tool, path_pyproject_toml=path, skip_prompt=True, **common
                )
            }
            for runtime in engines:
                builds[runtime] = lambda tool=tool, path=path, runtime=runtime: build_layer_artifacts_in_container(
                    tool=tool,
                    path_pyproject_toml=path,
                    image=args.image,
                    container_runtime=runtime,
                    dir_cache=work / "container-cache",
                    **common,
                )
            digests = {}  # the first build of each also warms its caches
            for name, build in builds.items():
                build()
                digests[name] = create_layer_zip_file(path_pyproject_toml=path, verbose=False).sha256
            medians = interleaved(builds, args.rounds)
            for runtime in engines:
                same = digests[runtime] == digests["local"]
                rows.append((f"{tool} in {runtime} / {tool} local", medians[runtime], medians["local"], same))

        info = create_layer_zip_file(path_pyproject_toml=projects["uv"], verbose=False)
        print(
            f"target python{args.python_version} {architecture} in {args.image}; {len(PINS)} pinned distributions, "
            f"{info.file_count} files, {info.unzipped_size / 1e6:.1f} MB unzipped; median of {args.rounds} interleaved rounds, warm caches; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'measure':<32} {'container (s)':>13} {'local (s)':>10} {'ratio':>6}  goal     same zip")
        for name, t_container, t_local, same in rows:
            print(f"{name:<32} {t_container:>13.3f} {t_local:>10.3f} {t_container / t_local:>6.2f}  <= 1.3    {'yes' if same else 'NO'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
