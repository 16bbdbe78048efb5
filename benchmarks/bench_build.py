"""Local build and packaging cost, measured against the raw tools in one run.

Locks one realistic set from PyPI (numpy, pydantic, requests, orjson, ...) for pip
(requirements.txt) and uv (uv.lock), warms every cache once, then times medians (the two
sides of a ratio alternate within each round) of:
- local build ÷ raw installer on the same lock, same target, warm cache (goal <= 1.15), where
  the raw installer is what a user would type: pip ``install --no-deps --no-compile --target
  --platform ... --implementation cp --python-version --only-binary=:all: -r requirements.txt``;
  uv ``export --frozen --no-dev --no-emit-project`` then ``pip install --no-deps --target
  --python-platform --python-version --only-binary :all: -r``;
- packaging ÷ ``zip -r -9 -X -q`` of the same ``python/`` tree, in time (goal <= 0.5) and in
  size (goal <= 1.03).
It also says whether the pip and uv builds of the same set packaged to identical bytes.

Usage: .venv/bin/python benchmarks/bench_build.py [--rounds N] [--python-version 3.12] [--architecture x86_64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aws_lambda_artifact_builder.api import LayerPathLayout, LayerTarget, build_layer_artifacts_in_local, create_layer_zip_file
from aws_lambda_artifact_builder.layer.build import KEEP_ENV, target_platforms, uv_python_platform
from aws_lambda_artifact_builder.layer.manifest import _parse_toml

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


def find_uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        sys.exit("uv is not installed (pip install uv)")
    return found


def raw_env() -> dict[str, str]:
    """The caller's environment without installer settings, as the builder's children get it."""
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or not k.startswith(("PIP_", "UV_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1"})
    return env


def timed_pair(ours: Callable[[], object], raw: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median seconds of each, after one untimed call of each that warms every cache.

    The two alternate within every round, so that load from other processes hits both alike.
    """
    ours()
    raw()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((ours, samples[0]), (raw, samples[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])


def run(argv: list[str], **kw: object) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]


def make_projects(work: Path, uv: str) -> dict[str, Path]:
    deps = ",\n".join(f'    "{p}"' for p in PINS)
    pyproject = f'[project]\nname = "bench-app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = [\n{deps},\n]\n'
    projects = {}
    for tool in ("pip", "uv"):
        folder = work / tool
        folder.mkdir()
        (folder / "pyproject.toml").write_text(pyproject)
        projects[tool] = folder / "pyproject.toml"
    (work / "pip" / "requirements.txt").write_text("\n".join(PINS) + "\n")
    run([uv, "lock"], cwd=work / "uv", env=raw_env())
    return projects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--architecture", default="x86_64")
    args = parser.parse_args()
    target = LayerTarget(python_version=args.python_version, architecture=args.architecture)
    uv = find_uv()
    work = Path(tempfile.mkdtemp(prefix="alab-bench-build-"))
    try:
        projects = make_projects(work, uv)
        env = raw_env()
        rows: list[tuple[str, float, float, str]] = []

        def build(tool: str) -> Callable[[], None]:
            def run_build() -> None:
                _parse_toml.cache_clear()  # pay for reading the lock, as a fresh process does
                build_layer_artifacts_in_local(
                    tool=tool,
                    path_pyproject_toml=projects[tool],
                    python_version=target.python_version,
                    architecture=target.architecture,
                    skip_prompt=True,
                    verbose=False,
                )

            return run_build

        raw_target = work / "raw-target"

        def raw_pip() -> None:
            shutil.rmtree(raw_target, ignore_errors=True)
            argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(raw_target)]
            argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python_version]
            for platform in target_platforms(target):
                argv += ["--platform", platform]
            run(argv + ["-r", str(projects["pip"].parent / "requirements.txt")], env=env)

        def raw_uv() -> None:
            shutil.rmtree(raw_target, ignore_errors=True)
            exported = work / "exported.txt"
            run([uv, "export", "--frozen", "--no-dev", "--no-emit-project", "-o", str(exported)], cwd=projects["uv"].parent, env=env)
            run(
                [uv, "pip", "install", "--no-deps", "--target", str(raw_target), "--python-platform",
                 uv_python_platform(target), "--python-version", target.python_version, "--only-binary", ":all:",
                 "-r", str(exported)],
                env=env,
            )

        for tool, raw in (("pip", raw_pip), ("uv", raw_uv)):
            t_build, t_raw = timed_pair(build(tool), raw, args.rounds)
            rows.append((f"{tool}: local build / raw installer", t_build, t_raw, "<= 1.15"))

        digests = {}
        for tool in ("pip", "uv"):
            build(tool)()
            digests[tool] = create_layer_zip_file(path_pyproject_toml=projects[tool], verbose=False).sha256
        layout = LayerPathLayout(path_pyproject_toml=projects["uv"])
        info = create_layer_zip_file(path_pyproject_toml=projects["uv"], verbose=False)
        path_zip = work / "zip-r-9.zip"

        def zip_r() -> None:
            path_zip.unlink(missing_ok=True)
            run(["zip", "-r", "-9", "-X", "-q", str(path_zip), "python"], cwd=layout.dir_artifacts)

        t_pack, t_zip = timed_pair(
            lambda: create_layer_zip_file(path_pyproject_toml=projects["uv"], verbose=False), zip_r, args.rounds
        )
        rows.append(("packaging / zip -r -9 -X -q (time)", t_pack, t_zip, "<= 0.5"))

        print(f"target {target.runtime} {target.architecture}; {len(PINS)} pinned distributions; "
              f"{info.file_count} files, {info.unzipped_size / 1e6:.1f} MB unzipped; median of {args.rounds}, warm caches")
        print(f"{'measure':<40} {'ours (s)':>9} {'raw (s)':>9} {'ratio':>7}  goal")
        for name, ours, raw_s, goal in rows:
            print(f"{name:<40} {ours:>9.3f} {raw_s:>9.3f} {ours / raw_s:>7.2f}  {goal}")
        size_ratio = info.zipped_size / path_zip.stat().st_size
        print(f"{'packaging / zip -r -9 -X -q (size)':<40} {info.zipped_size:>9d} {path_zip.stat().st_size:>9d} "
              f"{size_ratio:>7.3f}  <= 1.03")
        same = "yes" if digests["pip"] == digests["uv"] else "no"
        print(f"pip and uv builds of the same set give byte-identical layer.zip: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
