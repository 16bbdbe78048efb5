"""What a no-op plan costs, in S3 round trips, and whether planning many layers adds overhead.

Starts a moto server and a private index on loopback, locks the uv fixture project, records
20 layers (each its own s3dir_lambda and layer name) and then measures, in the same run and
with the same boto3 clients, in blocks of interleaved samples (one ratio per block: the median of
the block's samples of each side):
- one S3 HEAD of a layer record (the unit),
- a no-op ``plan_layer`` of one layer (the S3 GET of the record, overlapped with the Lambda
  listing that proves the recorded version still exists, plus reading and fingerprinting the
  local lock: after the first read, a stat-checked cache hit under ``build/lambda``) ÷ one HEAD,
  goal <= 1.5, on the fixture project and on a realistic uv lock of 100+ packages locked from PyPI
  at bench time (skipped, with a note on stderr, when PyPI is not reachable),
- the same with the default clients (``make_clients``, what the CLI and Pulumi use),
- planning the 20 layers one after the other ÷ 20 x one plan of the same block, goal <= 1.1.

Prints a markdown table of ratios (median, min-max over the blocks). Not a test: no timing is asserted.

Usage: .venv/bin/python benchmarks/bench_plan.py [--rounds N] [--samples N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DIR_REPO / "tests"))

import boto3  # noqa: E402

from aws_lambda_artifact_builder.layer.inputs import local_fingerprint  # noqa: E402
from aws_lambda_artifact_builder.api import (  # noqa: E402
    plan_layer,
    publish_layer_version,
    upload_layer_zip_to_s3,
)
from support.layers import write_test_zip  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import MotoServer, PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402
from ratios import Ratio, machine, markdown_table, seconds  # noqa: E402

LAYERS = 20

#: A realistic Lambda service's direct dependencies: uv locks them to 140-odd packages (1.2 MB uv.lock).
BIG_DEPENDENCIES = [
    "aws-lambda-powertools[all]",
    "boto3",
    "pandas",
    "pyarrow",
    "requests",
    "fastapi",
    "uvicorn[standard]",
    "sqlalchemy",
    "psycopg[binary]",
    "httpx",
    "jinja2",
    "scipy",
    "matplotlib",
    "google-cloud-storage",
    "celery",
    "flask",
    "pydantic-settings",
    "opentelemetry-sdk",
    "sentry-sdk",
    "structlog",
    "openpyxl",
    "cryptography",
    "pyjwt",
    "redis",
    "jsonschema",
    "markdown",
    "pillow",
    "lxml",
    "beautifulsoup4",
]


def make_big_uv_project(folder: Path) -> Path | None:
    """A uv project of BIG_DEPENDENCIES locked from PyPI (None when that fails, e.g. offline)."""
    import subprocess

    folder.mkdir(parents=True)
    deps = ",\n".join(f'    "{d}"' for d in BIG_DEPENDENCIES)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "bench-big"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = [\n{deps},\n]\n'
        '\n[dependency-groups]\ndev = ["pytest", "mypy"]\n'
    )
    uv = Path(sys.executable).parent / "uv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    result = subprocess.run([str(uv), "lock", "--no-config"], cwd=folder, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"bench_plan: the realistic uv project could not be locked: {result.stderr[-300:]}", file=sys.stderr)
        return None
    return folder / "pyproject.toml"


def block_ratio(measure: str, ours: list[list[float]], unit: list[list[float]], goal: str, scale: float = 1.0) -> Ratio:
    """One ratio per block: median of the block's ``ours`` ÷ (``scale`` x median of its ``unit``)."""
    samples = tuple(statistics.median(o) / (scale * statistics.median(u)) for o, u in zip(ours, unit))
    flat_ours = statistics.median([x for block in ours for x in block])
    flat_unit = statistics.median([x for block in unit for x in block])
    detail = f"{seconds(flat_ours)} ÷ {f'{scale:g} × ' if scale != 1 else ''}{seconds(flat_unit)}"
    return Ratio(measure, "fixture uv project, moto server on loopback", samples, goal, detail)


def measure(*, rounds: int = 7, samples: int = 30) -> list[Ratio]:
    """``rounds`` blocks of ``samples`` interleaved samples of each single measure (plus 3 of the 20-layer plan)."""
    saved_env = dict(os.environ)
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
            path_big = make_big_uv_project(dir_tmp / "big")
            big: dict[str, object] | None = None
            if path_big is not None:
                write_test_zip(path_big)
                big = dict(
                    layer_name="bench-big", path_pyproject_toml=path_big, s3dir_lambda="s3://alab-bench/big/", tool="uv"
                )
                upload_layer_zip_to_s3(
                    s3dir_lambda=big["s3dir_lambda"], path_pyproject_toml=path_big, s3_client=s3, verbose=False
                )
                publish_layer_version(**big, s3_client=s3, lambda_client=lam, verbose=False)
                assert not plan_layer(**big, s3_client=s3, lambda_client=lam).changed
                packages = (path_big.parent / "uv.lock").read_text().count("[[package]]")

            def head() -> None:
                s3.head_object(Bucket="alab-bench", Key="layers/00/layer/last-uv.lock")

            def plan_one() -> None:
                plan_layer(**one, s3_client=s3, lambda_client=lam)

            def plan_default_clients() -> None:
                plan_layer(**one)

            def plan_all() -> None:
                for kwargs in layers:
                    plan_layer(**kwargs, s3_client=s3, lambda_client=lam)

            def plan_big() -> None:
                assert big is not None
                plan_layer(**big, s3_client=s3, lambda_client=lam)  # type: ignore[arg-type]

            def local_big() -> None:
                assert path_big is not None
                local_fingerprint(path_pyproject_toml=path_big, tool="uv")

            calls: dict[str, Callable[[], None]] = {
                "head": head,
                "plan": plan_one,
                "plan_default": plan_default_clients,
            }
            if big is not None:
                calls["plan_big"] = plan_big
                calls["local_big"] = local_big
            for fn in calls.values():  # warm up connections and caches
                for _ in range(10):
                    fn()
            blocks: dict[str, list[list[float]]] = {name: [] for name in (*calls, "many", "plan_in_many")}
            for _ in range(rounds):
                block: dict[str, list[float]] = {name: [] for name in blocks}
                for _ in range(samples):
                    for name, fn in calls.items():
                        started = time.perf_counter()
                        fn()
                        block[name].append(time.perf_counter() - started)
                for _ in range(3):
                    started = time.perf_counter()
                    plan_all()
                    block["many"].append(time.perf_counter() - started)
                    for _ in range(3):
                        started = time.perf_counter()
                        plan_one()
                        block["plan_in_many"].append(time.perf_counter() - started)
                for name, values in block.items():
                    blocks[name].append(values)
        finally:
            index.stop()
            moto.stop()
            os.environ.clear()
            os.environ.update(saved_env)

    rows = [
        block_ratio("no-op plan_layer ÷ one S3 HEAD", blocks["plan"], blocks["head"], "≤ 1.5"),
        block_ratio(
            "no-op plan_layer (default clients) ÷ one S3 HEAD", blocks["plan_default"], blocks["head"], "≤ 1.5"
        ),
        block_ratio(
            f"{LAYERS}-layer plan ÷ {LAYERS} × one-layer plan", blocks["many"], blocks["plan_in_many"], "≤ 1.1", LAYERS
        ),
    ]
    if blocks.get("plan_big"):
        big_row = block_ratio(
            "no-op plan_layer, realistic uv.lock ÷ one S3 HEAD", blocks["plan_big"], blocks["head"], "≤ 1.5"
        )
        subject = f"uv.lock of {packages} packages from PyPI, moto server on loopback"
        rows.insert(1, dataclasses.replace(big_row, subject=subject))
        local_row = block_ratio(
            "local fingerprint of the realistic uv.lock (cached) ÷ one S3 HEAD", blocks["local_big"], blocks["head"], ""
        )
        rows.insert(2, dataclasses.replace(local_row, subject=subject))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="blocks; each gives one ratio per measure")
    parser.add_argument("--samples", type=int, default=30, help="samples of each single measure per block")
    args = parser.parse_args()
    rows = measure(rounds=args.rounds, samples=args.samples)
    print(f"Machine: {machine()}\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
