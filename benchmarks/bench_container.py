"""Container build cost against the local build of the same lock, measured in one run.

Locks the realistic set from PyPI (numpy, pydantic, requests, orjson, ...; see projects.py) for pip
(requirements.txt), poetry (poetry.lock) and uv (uv.lock), then for each tool and each container
engine that answers (docker, podman) times, interleaved round by round,
- container build ÷ local build of the same lock for the same target, warm caches (goal <= 1.3);
- for uv, container build ÷ the raw ``uv pip install`` of the lock's export on the host (what
  bench_build calls "raw uv"): the container's own cost, since a local build of a uv lock for an
  Amazon Linux 2 target (python3.10/3.11) installs with pip, which hides it;
- for uv, the same with a process's first build: what a process remembers (the engine probe in
  memory, the image ID, the containers it used) forgotten before each round, as a one-shot ``alab``
  run or a fresh Pulumi/Terraform provider process: with the build container an earlier run left
  (kept across processes, the default), and without one (removed before each round, so the round
  starts it: the first run after its idle exit, or ``ALAB_KEEP_BUILD_CONTAINER=0``).
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from aws_lambda_artifact_builder.api import (
    LayerError,
    LayerTarget,
    build_layer_artifacts_in_container,
    build_layer_artifacts_in_local,
    create_layer_zip_file,
)
from aws_lambda_artifact_builder.layer import build_container_runner
from aws_lambda_artifact_builder.layer.build_container import detect_container_engine
from bench_build import raw_installer
from projects import REALISTIC, TOOLS, make_realistic_projects
from ratios import Ratio, markdown_table, seconds, time_ratio


class FirstBuildOfAProcess:
    """``build`` after forgetting what a process remembers between builds (the engine probe in memory, the image
    ID, the containers it used), as a one-shot ``alab`` run or a fresh Pulumi/Terraform provider process:
    ``kept``: with the build container an earlier run left (the default), else with none (the first run after
    its idle exit, or ``ALAB_KEEP_BUILD_CONTAINER=0``), so the round starts one. The removal is the untimed
    ``setup``: no run pays it."""

    #: The keys of the containers each runtime's builds used: docker and podman may be one engine underneath
    #: (the docker CLI on podman's API), so removing by project would remove the other's container too.
    keys: ClassVar[dict[str, set[str]]] = {}

    def __init__(self, build: Callable[[], object], *, runtime: str, kept: bool) -> None:
        self.build, self.runtime, self.kept = build, runtime, kept

    def setup(self) -> None:
        if not self.kept:
            engine = detect_container_engine(self.runtime)
            for key in self.keys.get(self.runtime, set()):
                label = f"label={build_container_runner.CONTAINER_LABEL}={key}"
                found = subprocess.run(
                    [engine.executable, "ps", "-q", "--filter", label], capture_output=True, text=True
                )
                for container in found.stdout.split():
                    build_container_runner.remove_container(engine, container)
        build_container_runner._probed_engines.clear()
        build_container_runner._image_ids.clear()
        build_container_runner._used.clear()

    def __call__(self) -> object:
        result = self.build()
        used = {k for k, run in build_container_runner._used.items() if run.engine.runtime == self.runtime}
        self.keys.setdefault(self.runtime, set()).update(used)
        return result


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each (already warm) function per round, the rounds running them in turn (a function's
    ``setup``, if any, and a sync of written files untimed before it): interleaving spreads the machine's load drift over all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            setup = getattr(fn, "setup", None)
            if setup is not None:
                setup()
            os.sync()  # the previous build's written layer is not flushed during this one
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def engines_available() -> tuple[list[str], list[str]]:
    """The container engines that answer, and why the others were skipped."""
    engines, skipped = [], []
    for runtime in ("docker", "podman"):
        try:
            engines.append(detect_container_engine(runtime).runtime)
        except LayerError as e:
            skipped.append(f"{runtime}: {e}")
    return engines, skipped


def measure(
    *, image: str | None, python_version: str = "3.11", rounds: int = 3, tools: tuple[str, ...] = TOOLS
) -> tuple[list[Ratio], list[str]]:
    """Every row of this benchmark (none when no engine or image is at hand), and notes."""
    if not image:
        return [], [
            "container rows skipped: no image named (--image or ALAB_CONTAINER_TEST_IMAGE; "
            "scripts/setup-container-engine.sh makes one)"
        ]
    engines, skipped = engines_available()
    notes = [f"container engine skipped: {reason}" for reason in skipped]
    if not engines:
        return [], notes + ["container rows skipped: no container engine answers"]
    architecture = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
        platform.machine().lower()
    ]
    work = Path(tempfile.mkdtemp(prefix="alab-bench-container-"))
    try:
        projects = make_realistic_projects(work, tools)
        common = dict(python_version=python_version, architecture=architecture, verbose=False)
        rows = []
        for tool in tools:
            path = projects[tool]
            # The local build in a copy: removing its tree (pip's, bigger) would slow the container build after it.
            path_local = work / f"{tool}-local" / path.name
            shutil.copytree(path.parent, path_local.parent)
            builds: dict[str, Callable[[], object]] = {
                "local": lambda tool=tool, path=path_local: build_layer_artifacts_in_local(
                    tool=tool, path_pyproject_toml=path, skip_prompt=True, **common
                )
            }
            for runtime in engines:
                builds[runtime] = lambda tool=tool, path=path, runtime=runtime: build_layer_artifacts_in_container(
                    tool=tool,
                    path_pyproject_toml=path,
                    image=image,
                    container_runtime=runtime,
                    dir_cache=work / "container-cache",
                    **common,
                )
            if tool == "uv":
                target = LayerTarget(python_version=python_version, architecture=architecture)
                builds["raw uv"] = raw_installer("uv", path, target, None, work / "raw-target")
                for runtime in engines:
                    for kept, suffix in ((True, "new process"), (False, "new process, no kept container")):
                        builds[f"{runtime}, {suffix}"] = FirstBuildOfAProcess(
                            builds[runtime], runtime=runtime, kept=kept
                        )
            digests = {}  # the first build of each also warms its caches
            for name, build in builds.items():
                build()
                if name in ("local", *engines):  # it installs outside the project
                    where = path_local if name == "local" else path
                    digests[name] = create_layer_zip_file(path_pyproject_toml=where, verbose=False).sha256
            load_before = os.getloadavg()
            times = interleaved(builds, rounds)
            load_after = os.getloadavg()
            if "raw uv" in times:  # the least disturbed rounds: a shared machine's load only adds to a time
                fastest = min(times["raw uv"])
                notes.append(
                    f"{tool}, fastest round ÷ fastest raw uv ({seconds(fastest)}): "
                    + "; ".join(f"{name} {min(t) / fastest:.2f}" for name, t in times.items() if name != "raw uv")
                )
            notes.append(
                f"{tool}: load averages (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_before)} before the timed "
                f"rounds, {', '.join(f'{x:.2f}' for x in load_after)} after ({os.cpu_count()} cores)"
            )
            for runtime in engines:
                same = "same zip" if digests[runtime] == digests["local"] else "zip DIFFERS"
                rows.append(
                    time_ratio(
                        f"container build ÷ local build, {tool} ({same})",
                        f"{REALISTIC}, in {runtime}",
                        times[runtime],
                        times["local"],
                        "≤ 1.3",
                    )
                )
                if "raw uv" in times:
                    for name, what in (
                        (runtime, "container build"),
                        (f"{runtime}, new process", "first build of a process"),
                        (f"{runtime}, new process, no kept container", "first build of a process, no kept container"),
                    ):
                        rows.append(
                            time_ratio(
                                f"{what} ÷ raw uv on the host, uv",
                                f"{REALISTIC}, in {runtime}",
                                times[name],
                                times["raw uv"],
                                "≤ 1.3",
                            )
                        )
        info = create_layer_zip_file(path_pyproject_toml=projects[tools[-1]], verbose=False)
        notes.append(
            f"Container builds target python{python_version} {architecture} in {image} (the local build the same); "
            f"{info.file_count} files, {info.unzipped_size / 1e6:.1f} MB unzipped; warm caches."
        )
        return rows, notes
    finally:
        for runtime in engines:  # the containers kept on these projects would idle for nothing
            engine = detect_container_engine(runtime)
            for tool in tools:
                for name in build_container_runner.list_build_containers(engine, work / tool):
                    build_container_runner.remove_container(engine, name)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--image", default=os.environ.get("ALAB_CONTAINER_TEST_IMAGE"), help="image with the target's Python"
    )
    parser.add_argument("--python-version", default="3.11", help="the image's Python")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tool", action="append", choices=TOOLS, help="measure only this tool (repeatable)")
    args = parser.parse_args()
    tools = tuple(args.tool or TOOLS)
    rows, notes = measure(image=args.image, python_version=args.python_version, rounds=args.rounds, tools=tools)
    if not rows:
        sys.exit("\n".join(notes))
    print(markdown_table(rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
