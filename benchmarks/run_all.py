"""``make bench``: run every benchmark in this folder and write one table of ratios to RESULTS.md.

Each figure is a ratio of two things measured side by side in this run (see ratios.py): the median
over several rounds, with the min-max of the rounds. The machine and its load are noted at the top,
because every ratio depends on them; nothing here asserts a timing.

Usage: .venv/bin/python benchmarks/run_all.py [--output benchmarks/RESULTS.md] [--quick]
       (container rows need an engine and ALAB_CONTAINER_TEST_IMAGE, as .ci/run sets up)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import bench_build
import bench_container
import bench_plan
import bench_pulumi
import bench_slim
from ratios import Ratio, machine, markdown_table

DIR_BENCH = Path(__file__).resolve().parent


def git_revision() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=DIR_BENCH, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--output", type=Path, default=DIR_BENCH / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: to try the runner, not to publish")
    args = parser.parse_args()
    quick = args.quick
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    machine_before = machine()
    started = time.monotonic()

    rows: list[Ratio] = []
    notes: list[str] = []
    print("bench_plan ...", file=sys.stderr)
    rows += bench_plan.measure(rounds=3 if quick else 7, samples=10 if quick else 30)
    print("bench_pulumi ...", file=sys.stderr)
    rows += bench_pulumi.measure(rounds=3 if quick else 7, samples=5 if quick else 15)
    print("bench_build ...", file=sys.stderr)
    build_rows, build_notes = bench_build.measure(rounds=2 if quick else 5, cold_rounds=1 if quick else 3)
    rows += build_rows
    notes += build_notes
    print("bench_container ...", file=sys.stderr)
    container_rows, container_notes = bench_container.measure(image=image, rounds=1 if quick else 3)
    rows += container_rows
    notes += container_notes
    print("bench_slim ...", file=sys.stderr)
    slim_rows, slim_notes = bench_slim.measure()
    rows += slim_rows
    notes += slim_notes

    took = time.monotonic() - started
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Machine: {machine_before} at the start; {machine()} at the end.",
            f"Run: `make bench` at {git_revision()} on {dt.date.today().isoformat()}, {took / 60:.0f} min"
            + (" (--quick: too few rounds to publish)" if quick else "")
            + ".",
            "",
            "Every figure is a ratio of two things measured side by side in this run, one ratio per round: the "
            "median over the rounds and their min–max. Below 1 means ours is faster or smaller. Goals are "
            "targets for a reader to compare, not assertions. What each row measures: the docstrings of "
            "benchmarks/bench_*.py.",
            "",
            markdown_table(rows),
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
