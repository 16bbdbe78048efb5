"""What a no-op plan costs, in S3 round trips, and whether planning many layers adds overhead.

Starts a private index and moto servers on loopback, locks the uv fixture project, records 20
layers (each its own s3dir_lambda and layer name) and then measures, in the same run and with the
same boto3 clients, in blocks of interleaved samples (one ratio per block: the median of the
block's samples of each side):
- one S3 HEAD of a layer record (the unit),
- a no-op ``plan_layer`` of one layer (the S3 GET of the record, overlapped with the Lambda
  listing that proves the recorded version still exists, plus reading and fingerprinting the
  local lock: after the first read, a stat-checked cache hit under ``build/lambda``) ÷ one HEAD,
  goal <= 1.5, on the fixture project and on a realistic uv lock of 100+ packages locked from PyPI
  at bench time (skipped, with a note on stderr, when PyPI is not reachable),
- the same with the default clients (``make_clients``, what the CLI and Pulumi use),
- planning the 20 layers one after the other ÷ 20 x one plan of the same block, goal <= 1.1,
- the Lambda listing alone ÷ one HEAD: with the record's GET overlapped, the slower of the two is
  the plan's floor.

Each is measured in three layouts: with S3 and Lambda on **one** moto server, which answers the
plan's two overlapped requests one after the other (a floor of about 1.8 HEADs that no client can
beat); with S3 and Lambda on **two** moto servers, as AWS serves them (separate endpoints that
answer concurrently; boto3 reaches them through ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL_LAMBDA``),
where the ratio still counts the client's CPU for two requests against one; and with each of the two
servers **10 ms away** (``latency_proxy.py``), as an endpoint in the same region is, where the ratio
counts round trips. moto's Lambda reads a layer's zip from its own S3, so with two servers the
staged zip is also put on the Lambda server before each publish (setup only; nothing measured reads it).

Prints a markdown table of ratios (median, min-max over the blocks). Not a test: no timing is asserted.

Usage: .venv/bin/python benchmarks/bench_plan.py [--rounds N] [--samples N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DIR_REPO / "tests"))

import boto3  # noqa: E402
from aws_lambda_artifact_builder.api import (  # noqa: E402
    plan_layer,
    publish_layer_version,
    upload_layer_zip_to_s3,
)
from aws_lambda_artifact_builder.layer.inputs import local_fingerprint  # noqa: E402
from ratios import Ratio, machine, markdown_table, seconds  # noqa: E402
from support.layers import write_test_zip  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import MotoServer, PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402

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


def block_ratio(
    measure: str, ours: list[list[float]], unit: list[list[float]], goal: str, subject: str, scale: float = 1.0
) -> Ratio:
    """One ratio per block: median of the block's ``ours`` ÷ (``scale`` x median of its ``unit``)."""
    samples = tuple(statistics.median(o) / (scale * statistics.median(u)) for o, u in zip(ours, unit, strict=True))
    flat_ours = statistics.median([x for block in ours for x in block])
    flat_unit = statistics.median([x for block in unit for x in block])
    detail = f"{seconds(flat_ours)} ÷ {f'{scale:g} × ' if scale != 1 else ''}{seconds(flat_unit)}"
    return Ratio(measure, subject, samples, goal, detail)


@dataclasses.dataclass
class Aws:
    """The S3 and Lambda endpoints of one layout: one moto server for both, or one each."""

    layout: str
    s3: Any
    lam: Any
    #: The Lambda server's own S3, where moto's Lambda looks for a layer's zip (None: the same server).
    lambda_s3: Any = None

    def record(self, **kwargs: Any) -> None:
        """Upload, publish and record one layer version, as a first deploy leaves it."""
        upload_layer_zip_to_s3(
            s3dir_lambda=kwargs["s3dir_lambda"], path_pyproject_toml=kwargs["path_pyproject_toml"], s3_client=self.s3
        )
        if self.lambda_s3 is not None:  # the staged zip where the Lambda server can read it
            bucket, prefix = kwargs["s3dir_lambda"].removeprefix("s3://").split("/", 1)
            for item in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                self.lambda_s3.put_object(Bucket=bucket, Key=item["Key"], Body=body)
        publish_layer_version(**kwargs, s3_client=self.s3, lambda_client=self.lam, verbose=False)
        assert not plan_layer(**kwargs, s3_client=self.s3, lambda_client=self.lam).changed


@dataclasses.dataclass
class LatencyLink:
    """``latency_proxy.py`` in its own process: ``endpoint_url`` reaches ``upstream`` with ``rtt_ms`` added."""

    proc: subprocess.Popen[str]
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, upstream: MotoServer, rtt_ms: float) -> LatencyLink:
        argv = [sys.executable, str(Path(__file__).with_name("latency_proxy.py")), str(upstream.port), str(rtt_ms)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        return cls(proc=proc, port=int(proc.stdout.readline()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


#: The round trip of the "wan" layout: S3's and Lambda's first byte within a region take 10 ms or more.
RTT_MS = 10.0
LAYOUTS = {
    "one": "one moto server for S3 and Lambda",
    "two": "S3 and Lambda on two moto servers",
    "wan": f"S3 and Lambda on two moto servers, each {RTT_MS:g} ms away",
}


def start_aws(layout: str, dir_tmp: Path, servers: list[Any]) -> Aws:
    """Moto server(s) for ``layout`` (see ``LAYOUTS``), the environment pointing at them, the bench bucket."""
    s3_server = MotoServer.start(dir_tmp / f"moto-{layout}-s3.log")
    servers.append(s3_server)
    lambda_server = s3_server
    if layout != "one":
        lambda_server = MotoServer.start(dir_tmp / f"moto-{layout}-lambda.log")
        servers.append(lambda_server)
    s3_url, lambda_url = s3_server.endpoint_url, lambda_server.endpoint_url
    if layout == "wan":
        links = [LatencyLink.start(s3_server, RTT_MS), LatencyLink.start(lambda_server, RTT_MS)]
        servers.extend(links)
        s3_url, lambda_url = links[0].endpoint_url, links[1].endpoint_url
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LAMBDA"):
        os.environ.pop(key, None)
    os.environ.update(
        AWS_ENDPOINT_URL_S3=s3_url,
        AWS_ENDPOINT_URL_LAMBDA=lambda_url,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    aws = Aws(
        layout=layout,
        s3=boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1"),
        lam=boto3.client("lambda", endpoint_url=lambda_url, region_name="us-east-1"),
    )
    aws.s3.create_bucket(Bucket="alab-bench")
    if layout != "one":
        aws.lambda_s3 = boto3.client("s3", endpoint_url=lambda_server.endpoint_url, region_name="us-east-1")
        aws.lambda_s3.create_bucket(Bucket="alab-bench")
    return aws


def record_layers(aws: Aws, path: Path, path_big: Path | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The 20 fixture layers and the realistic one, each with one recorded version."""
    layers = []
    for i in range(LAYERS):
        layer = dict(
            layer_name=f"bench-{i:02d}",
            path_pyproject_toml=path,
            s3dir_lambda=f"s3://alab-bench/layers/{i:02d}/",
            tool="uv",
        )
        aws.record(**layer)
        layers.append(layer)
    big = None
    if path_big is not None:
        big = dict(layer_name="bench-big", path_pyproject_toml=path_big, s3dir_lambda="s3://alab-bench/big/", tool="uv")
        aws.record(**big)
    return layers, big


def sample_blocks(
    aws: Aws, layers: list[dict[str, Any]], big: dict[str, Any] | None, *, rounds: int, samples: int
) -> dict[str, list[list[float]]]:
    """``rounds`` blocks of ``samples`` interleaved samples of each single measure (plus 3 of the 20-layer plan)."""
    s3, lam, one = aws.s3, aws.lam, layers[0]

    def plan_all() -> None:
        for layer in layers:
            plan_layer(**layer, s3_client=s3, lambda_client=lam)

    calls: dict[str, Callable[[], None]] = {
        "head": lambda: s3.head_object(Bucket="alab-bench", Key="layers/00/layer/last-uv.lock"),
        "plan": lambda: plan_layer(**one, s3_client=s3, lambda_client=lam),
        "plan_default": lambda: plan_layer(**one),
        "list": lambda: lam.list_layer_versions(LayerName=one["layer_name"]),
    }
    if big is not None:
        calls["plan_big"] = lambda: plan_layer(**big, s3_client=s3, lambda_client=lam)
        calls["local_big"] = lambda: local_fingerprint(path_pyproject_toml=big["path_pyproject_toml"], tool="uv")
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
                calls["plan"]()
                block["plan_in_many"].append(time.perf_counter() - started)
        for name, values in block.items():
            blocks[name].append(values)
    return blocks


def ratio_rows(blocks: dict[str, list[list[float]]], layout: str, packages: int) -> list[Ratio]:
    """The table's rows for one server layout."""
    where = LAYOUTS[layout]
    fixture = f"fixture uv project, {where}"
    realistic = f"uv.lock of {packages} packages from PyPI, {where}"
    rows = [
        block_ratio("no-op plan_layer ÷ one S3 HEAD", blocks["plan"], blocks["head"], "≤ 1.5", fixture),
        block_ratio(
            "no-op plan_layer (default clients) ÷ one S3 HEAD", blocks["plan_default"], blocks["head"], "≤ 1.5", fixture
        ),
    ]
    measure = "the plan's Lambda check alone (one ListLayerVersions) ÷ one S3 HEAD"
    rows.append(block_ratio(measure, blocks["list"], blocks["head"], "", fixture))
    if blocks.get("plan_big"):
        rows.insert(
            1, block_ratio("no-op plan_layer ÷ one S3 HEAD", blocks["plan_big"], blocks["head"], "≤ 1.5", realistic)
        )
        if layout == "one":
            measure = "local fingerprint of the realistic uv.lock (cached) ÷ one S3 HEAD"
            rows.insert(2, block_ratio(measure, blocks["local_big"], blocks["head"], "", realistic))
    if layout == "one":
        measure = f"{LAYERS}-layer plan ÷ {LAYERS} × one-layer plan"
        rows.append(block_ratio(measure, blocks["many"], blocks["plan_in_many"], "≤ 1.1", fixture, LAYERS))
    return rows


def measure(*, rounds: int = 7, samples: int = 30) -> list[Ratio]:
    """Both server layouts, one after the other, on the same projects."""
    saved_env = dict(os.environ)
    servers: list[Any] = []  # moto servers and latency links
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        dir_tmp = Path(tmp)
        build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", dir_tmp / "wheels")
        index = PrivateIndex.start(dir_tmp / "wheels", dir_tmp / "index", "bench", "bench-Pa55@w/rd%")
        try:
            path = make_project("uv", dir_tmp / "project", index, dir_tmp / "cache")
            write_test_zip(path)
            path_big = make_big_uv_project(dir_tmp / "big")
            packages = 0
            if path_big is not None:
                write_test_zip(path_big)
                packages = (path_big.parent / "uv.lock").read_text().count("[[package]]")
            rows: list[Ratio] = []
            for layout in LAYOUTS:
                aws = start_aws(layout, dir_tmp, servers)
                layers, big = record_layers(aws, path, path_big)
                rows += ratio_rows(sample_blocks(aws, layers, big, rounds=rounds, samples=samples), layout, packages)
                while servers:
                    servers.pop().stop()
        finally:
            index.stop()
            for server in servers:
                server.stop()
            os.environ.clear()
            os.environ.update(saved_env)
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
