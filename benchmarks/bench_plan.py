"""What a no-op plan costs, in S3 round trips, and whether planning many layers adds overhead.

Starts a moto server and a private index on loopback, locks the uv fixture project, records
20 layers (each its own s3dir_lambda and layer name) and then measures, in the same run and
with the same boto3 clients, interleaving the samples:
- one S3 HEAD of a layer record (the unit),
- a no-op ``plan_layer`` of one layer (the S3 GET of the record, overlapped with the Lambda
  listing that proves the recorded version still exists, plus reading and fingerprinting the
  local lock), goal <= 2.0 HEADs,
- the same with the default clients (``make_clients``, what the CLI and Pulumi use),
- planning the 20 layers one after the other, against 20 x one plan, goal <= 1.1.

Prints a markdown table of medians (min-max) and ratios. Not a test: no timing is asserted.

Usage: .venv/bin/python benchmarks/bench_plan.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DIR_REPO / "tests"))

import boto3  # noqa: E402

from aws_lambda_artifact_builder.api import (  # noqa: E402
    plan_layer,
    publish_layer_version,
    upload_layer_zip_to_s3,
)
from support.layers import write_test_zip  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import MotoServer, PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402

LAYERS = 20


def _stats(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def _machine() -> str:
    mem = ""
    try:
        kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores{mem}{load}, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="samples per single measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        dir_tmp = Path(tmp)
        moto = MotoServer.start(dir_tmp / "moto.log")
        build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", dir_tmp / "wheels")
        index = PrivateIndex.start(dir_tmp / "wheels", dir_tmp / "index", "bench", "bench-Pa55@w/rd%")
        try:
            os.environ.update(
                AWS_ENDPOINT_URL=moto.endpoint_url,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
            )
            s3 = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name="us-east-1")
            lam = boto3.client("lambda", endpoint_url=moto.endpoint_url, region_name="us-east-1")
            s3.create_bucket(Bucket="alab-bench")
            path = make_project("uv", dir_tmp / "project", index, dir_tmp / "cache")
            write_test_zip(path)
            layers = []
            for i in range(LAYERS):
                kwargs = dict(
                    layer_name=f"bench-{i:02d}",
                    path_pyproject_toml=path,
                    s3dir_lambda=f"s3://alab-bench/layers/{i:02d}/",
                    tool="uv",
                )
                upload_layer_zip_to_s3(
                    s3dir_lambda=kwargs["s3dir_lambda"], path_pyproject_toml=path, s3_client=s3, verbose=False
                )
                publish_layer_version(**kwargs, s3_client=s3, lambda_client=lam, verbose=False)
                layers.append(kwargs)
            one = layers[0]
            assert not plan_layer(**one, s3_client=s3, lambda_client=lam).changed

            def head() -> None:
                s3.head_object(Bucket="alab-bench", Key="layers/00/layer/last-uv.lock")

            def plan_one() -> None:
                plan_layer(**one, s3_client=s3, lambda_client=lam)

            def plan_default_clients() -> None:
                plan_layer(**one)

            def plan_all() -> None:
                for kwargs in layers:
                    plan_layer(**kwargs, s3_client=s3, lambda_client=lam)

            singles: dict[str, list[float]] = {"head": [], "plan": [], "plan_default": []}
            calls: dict[str, Callable[[], None]] = {"head": head, "plan": plan_one, "plan_default": plan_default_clients}
            for fn in calls.values():  # warm up connections and caches
                for _ in range(10):
                    fn()
            for _ in range(args.rounds):
                for name, fn in calls.items():
                    started = time.perf_counter()
                    fn()
                    singles[name].append(time.perf_counter() - started)
            many: list[float] = []
            for _ in range(max(args.rounds // 4, 10)):
                started = time.perf_counter()
                plan_all()
                many.append(time.perf_counter() - started)
                for name in ("head", "plan"):
                    started = time.perf_counter()
                    calls[name]()
                    singles[name].append(time.perf_counter() - started)
        finally:
            index.stop()
            moto.stop()

    head_ms = _stats(singles["head"])
    plan_ms = _stats(singles["plan"])
    default_ms = _stats(singles["plan_default"])
    many_ms = _stats(many)
    rows = [
        ("one S3 HEAD of the record", head_ms, "1.00", ""),
        ("no-op plan_layer ÷ one S3 HEAD", plan_ms, f"{plan_ms[0] / head_ms[0]:.2f}", "≤ 2.0"),
        ("no-op plan_layer, default clients ÷ one S3 HEAD", default_ms, f"{default_ms[0] / head_ms[0]:.2f}", "≤ 2.0"),
        (f"{LAYERS}-layer plan ÷ {LAYERS} × one plan", many_ms, f"{many_ms[0] / (LAYERS * plan_ms[0]):.2f}", "≤ 1.1"),
    ]
    print(f"Machine: {_machine()}; endpoint: moto server on loopback; {args.rounds} rounds, medians (min-max)\n")
    print("| measure | median ms | min-max ms | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    for label, (median, low, high), ratio, goal in rows:
        print(f"| {label} | {median * 1000:.2f} | {low * 1000:.2f}-{high * 1000:.2f} | {ratio} | {goal} |")


if __name__ == "__main__":
    main()
