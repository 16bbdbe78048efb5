"""What a no-op `pulumi preview` of a LambdaLayer costs, in S3 round trips.

Starts a moto server and a private index on loopback, publishes one layer through the real
dynamic provider server (``python -m pulumi.dynamic``), then times, in the same run, in blocks of
interleaved samples (one ratio per block, from the medians of the block's samples):
- one S3 HEAD of the layer record against the same endpoint (the unit), and
- the engine's no-op preview of the resource: Check + Diff over gRPC, with the SDK's serialisation,
  and each of the two calls alone.
Prints the ratios (goal: a no-op preview costs about one S3 request, <= 2.0).

Usage: .venv/bin/python benchmarks/bench_pulumi.py [--rounds N] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(DIR_REPO / "tests"), str(DIR_REPO / "tests" / "pulumi")]

import boto3  # noqa: E402

from aws_lambda_artifact_builder.api import Credentials  # noqa: E402
from aws_lambda_artifact_builder.layer.clients import make_clients  # noqa: E402
from aws_lambda_artifact_builder.layer.workflow import plan_layer  # noqa: E402
from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer  # noqa: E402
from pulumi_engine_harness import DIFF_NONE, DynamicProviderServer, Stack, run_program  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import MotoServer, PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402
from ratios import Ratio, machine, markdown_table, seconds  # noqa: E402


def block_ratio(measure: str, ours: list[list[float]], unit: list[list[float]], goal: str = "") -> Ratio:
    samples = tuple(statistics.median(o) / statistics.median(u) for o, u in zip(ours, unit))
    flat = [statistics.median([x for block in side for x in block]) for side in (ours, unit)]
    return Ratio(measure, "fixture uv project, provider process over gRPC", samples, goal,
                 f"{seconds(flat[0])} ÷ {seconds(flat[1])}")


def measure(*, rounds: int = 7, samples: int = 15) -> list[Ratio]:
    """``rounds`` blocks, each of ``samples`` interleaved HEADs and no-op previews."""
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-pulumi-") as tmp:
        dir_tmp = Path(tmp)
        moto = MotoServer.start(dir_tmp / "moto.log")
        build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", dir_tmp / "wheels")
        index = PrivateIndex.start(dir_tmp / "wheels", dir_tmp / "index", "bench", "bench-Pa55@w/rd%")
        server = None
        try:
            os.environ.update(
                AWS_ENDPOINT_URL=moto.endpoint_url,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
            )
            s3 = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name="us-east-1")
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            s3.create_bucket(Bucket=bucket)
            path_pyproject = make_project("uv", dir_tmp / "project", index, dir_tmp / "tool-cache")
            credentials = Credentials(
                index_name="private", index_url=index.url, username=index.username, password=index.password
            )

            target = {
                "layer_name": f"{bucket}-deps",
                "path_pyproject_toml": str(path_pyproject),
                "s3dir_lambda": f"s3://{bucket}/lambda/app/",
                "tool": "uv",
            }

            def program() -> None:
                LambdaLayer("deps", credentials=credentials, **target)

            (goal,) = run_program(program)
            server = DynamicProviderServer.start(dir_tmp / "provider")
            stack = Stack(server, {"aws:region": "us-east-1"})
            stack.up(goal)  # publishes version 1; every preview below is a no-op

            key_record = next(
                o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if "/last-" in o["Key"]
            )
            s3_client, lambda_client = make_clients()
            for _ in range(5):  # warm every path: connections, imports, the provider cache
                s3.head_object(Bucket=bucket, Key=key_record)
                plan_layer(**target, s3_client=s3_client, lambda_client=lambda_client)
                stack.preview(goal)

            blocks: dict[str, list[list[float]]] = {"head": [], "preview": [], "check": [], "diff": []}
            for _ in range(rounds):
                block: dict[str, list[float]] = {name: [] for name in blocks}
                for _ in range(samples):
                    started = time.perf_counter()
                    s3.head_object(Bucket=bucket, Key=key_record)
                    block["head"].append(time.perf_counter() - started)
                    n = len(server.transcript)
                    step = stack.preview(goal)
                    assert step.diff is not None and step.diff.changes == DIFF_NONE, "the preview must be a no-op"
                    block["preview"].append(step.seconds)
                    block["check"].append(server.transcript[n].seconds)
                    block["diff"].append(server.transcript[n + 1].seconds)
                for name, values in block.items():
                    blocks[name].append(values)
        finally:
            if server is not None:
                server.stop()
            index.stop()
            moto.stop()
            os.environ.clear()
            os.environ.update(saved_env)
    return [
        block_ratio("Pulumi no-op preview (Check + Diff) ÷ one S3 HEAD", blocks["preview"], blocks["head"], "≤ 2.0"),
        block_ratio("Pulumi Check alone ÷ one S3 HEAD", blocks["check"], blocks["head"]),
        block_ratio("Pulumi Diff alone (plan_layer) ÷ one S3 HEAD", blocks["diff"], blocks["head"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="blocks; each gives one ratio per measure")
    parser.add_argument("--samples", type=int, default=15, help="samples of each side per block")
    args = parser.parse_args()
    rows = measure(rounds=args.rounds, samples=args.samples)
    print(f"Machine: {machine()}\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
