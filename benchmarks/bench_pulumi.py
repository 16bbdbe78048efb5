"""What a no-op `pulumi preview` of a LambdaLayer costs, in S3 round trips.

Starts a moto server and a private index on loopback, publishes one layer through the real
dynamic provider server (``python -m pulumi.dynamic``), then times, in the same run, in blocks of
interleaved samples (one ratio per block, from the medians of the block's samples):
- one S3 HEAD of the layer record against the same endpoint (the unit), and
- the engine's no-op preview of the resource: Check + Diff over gRPC, with the SDK's serialisation,
  and each of the two calls alone.
Prints the ratios (goal: a no-op preview costs about one S3 request, <= 2.0).

Then, with the real `pulumi` CLI (scripts/install-pulumi.sh; rows left out with a note when it is absent):
`pulumi preview` of a program with 1 and with 20 published, unchanged layers ÷ `pulumi preview` of the same
program without the layers (the engine's own floor: CLI start, program). Goal <= 1.3. And 1 layer ÷ one
trivial dynamic resource (tests/pulumi/noop_provider.py): the floor of any Python dynamic provider, whose
plugin process must start and import `pulumi`.

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
from collections.abc import Callable
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(DIR_REPO / "tests"), str(DIR_REPO / "tests" / "pulumi")]

import boto3  # noqa: E402
import pulumi  # noqa: E402
from aws_lambda_artifact_builder.api import Credentials  # noqa: E402
from aws_lambda_artifact_builder.layer.clients import make_clients  # noqa: E402
from aws_lambda_artifact_builder.layer.workflow import plan_layer  # noqa: E402
from aws_lambda_artifact_builder.pulumi_provider import LambdaLayer  # noqa: E402
from pulumi_cli import PulumiProject, find_pulumi  # noqa: E402
from pulumi_engine_harness import DIFF_NONE, DynamicProviderServer, Stack, run_program  # noqa: E402
from ratios import Ratio, machine, markdown_table, seconds  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import MotoServer, PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402


def block_ratio(measure: str, ours: list[list[float]], unit: list[list[float]], goal: str = "") -> Ratio:
    samples = tuple(statistics.median(o) / statistics.median(u) for o, u in zip(ours, unit, strict=True))
    flat = [statistics.median([x for block in side for x in block]) for side in (ours, unit)]
    return Ratio(
        measure,
        "fixture uv project, provider process over gRPC",
        samples,
        goal,
        f"{seconds(flat[0])} ÷ {seconds(flat[1])}",
    )


def measure(*, rounds: int = 7, samples: int = 15) -> list[Ratio]:
    """The harness rows, then the real CLI's rows (fewer samples: one preview takes seconds)."""
    rows = measure_harness(rounds=rounds, samples=samples)
    pulumi_bin = find_pulumi()
    if pulumi_bin is None:
        print("bench_pulumi: no `pulumi` CLI (scripts/install-pulumi.sh): real-engine rows left out", file=sys.stderr)
        return rows
    return rows + measure_cli(pulumi_bin, rounds=max(3, rounds // 2), samples=3)


def measure_cli(pulumi_bin: Path, *, rounds: int, samples: int) -> list[Ratio]:
    """`pulumi preview` no-ops of 0, 1 and 20 layers, interleaved, one ratio per round from the medians."""
    from noop_provider import Noop
    from pulumi import automation as auto

    counts = (0, 1, 20, -1)  # -1: one trivial dynamic resource instead of the layers
    with tempfile.TemporaryDirectory(prefix="bench-pulumi-cli-") as tmp:
        dir_tmp = Path(tmp)
        moto = MotoServer.start(dir_tmp / "moto.log")
        build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", dir_tmp / "wheels")
        index = PrivateIndex.start(dir_tmp / "wheels", dir_tmp / "index", "bench", "bench-Pa55@w/rd%")
        try:
            s3 = boto3.client(
                "s3",
                endpoint_url=moto.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            s3.create_bucket(Bucket=bucket)
            path_pyproject = make_project("uv", dir_tmp / "app", index, dir_tmp / "tool-cache")
            credentials = Credentials(
                index_name="private", index_url=index.url, username=index.username, password=index.password
            )

            def program_of(n: int) -> Callable[[], None]:
                def program() -> None:
                    if n < 0:
                        Noop("noop")
                    for i in range(n):
                        LambdaLayer(
                            f"deps-{i}",
                            layer_name=f"{bucket}-deps-{i}",
                            path_pyproject_toml=str(path_pyproject),
                            s3dir_lambda=f"s3://{bucket}/lambda/app-{i}/",
                            tool="uv",
                            credentials=credentials,
                        )
                    pulumi.export("layers", n)

                return program

            stacks = {}
            for n in counts:
                project = PulumiProject.create(
                    pulumi_bin,
                    dir_tmp / f"stack-{n}",
                    program=program_of(n),
                    extra_env={
                        "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "PYTHONPATH": str(DIR_REPO / "tests" / "pulumi"),
                    },
                )
                project.stack_init("bench", {"aws:region": "us-east-1", "alab:endpointUrl": moto.endpoint_url})
                stacks[n] = project.stack("bench")
                stacks[n].up(parallel=4)  # publishes every layer once; each preview below is a no-op
                stacks[n].preview()  # warm
            blocks: dict[int, list[list[float]]] = {n: [] for n in counts}
            for r in range(rounds):
                block: dict[int, list[float]] = {n: [] for n in counts}
                for k in range(samples):
                    order = counts if (r + k) % 2 == 0 else counts[::-1]
                    for n in order:
                        started = time.perf_counter()
                        preview = stacks[n].preview()
                        block[n].append(time.perf_counter() - started)
                        assert set(preview.change_summary) == {auto.OpType.SAME}, "the preview must be a no-op"
                for n in counts:
                    blocks[n].append(block[n])
        finally:
            index.stop()
            moto.stop()

    def row(measure: str, ours: int, unit: int, goal: str) -> Ratio:
        ratios = tuple(
            statistics.median(o) / statistics.median(u) for o, u in zip(blocks[ours], blocks[unit], strict=True)
        )
        flat = [statistics.median([x for block in blocks[m] for x in block]) for m in (ours, unit)]
        return Ratio(
            measure,
            "fixture uv project, pulumi CLI v3.274.1, file backend",
            ratios,
            goal,
            f"{seconds(flat[0])} ÷ {seconds(flat[1])}",
        )

    return [
        row("real `pulumi preview` no-op, 1 layer ÷ the program without it", 1, 0, "≤ 1.3"),
        row("real `pulumi preview` no-op, 20 layers ÷ the program without them", 20, 0, "≤ 1.3"),
        row("real `pulumi preview` no-op, 1 layer ÷ 1 trivial dynamic resource", 1, -1, ""),
    ]


def measure_harness(*, rounds: int = 7, samples: int = 15) -> list[Ratio]:
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

            key_record = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if "/last-" in o["Key"])
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
