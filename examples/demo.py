"""`make demo`: the whole product on loopback, in about half a minute, with nothing to configure.

1. Builds the alab-demo-* wheels and serves them from a tiny PEP 503 index on loopback.
2. Starts a local AWS endpoint (moto server) on a free loopback port and creates a bucket.
3. Copies examples/sample_app to a temporary folder and locks it with uv against that index.
4. Runs the real `alab` CLI, as a user would:
   plan -> deploy (version 1) -> deploy again (no change: no build) -> change a pin ->
   plan (shows the package diff) -> deploy (version 2),
   then prints a summary, and stops the endpoint and the index.

Run it with `make demo` (creates .venv first) or `.venv/bin/python examples/demo.py`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DIR_REPO / "tests"))  # the loopback servers and wheel builder of the test suite

import boto3  # noqa: E402
from support.servers import MotoServer  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402

BUCKET = "alab-demo"
LAYER = "sample-app-deps"
BIN = Path(sys.executable).parent


class DemoFailed(Exception):
    pass


def aws(service: str, endpoint_url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    )


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def write_simple_index(dir_wheels: Path, dir_index: Path) -> None:
    """A static PEP 503 index: /simple/<project>/ lists the project's wheels with their sha256."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(dir_wheels.glob("*.whl")):
        projects.setdefault(wheel.name.split("-")[0].replace("_", "-").lower(), []).append(wheel)
    (dir_index / "packages").mkdir(parents=True)
    root_links = []
    for project, wheels in projects.items():
        links = []
        for wheel in wheels:
            shutil.copy(wheel, dir_index / "packages" / wheel.name)
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            links.append(f'<a href="../../packages/{html.escape(wheel.name)}#sha256={digest}">{wheel.name}</a><br>')
        (dir_index / "simple" / project).mkdir(parents=True)
        (dir_index / "simple" / project / "index.html").write_text(
            "<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
        root_links.append(f'<a href="{project}/">{project}</a><br>')
    (dir_index / "simple" / "index.html").write_text("<html><body>\n" + "\n".join(root_links) + "\n</body></html>\n")


@contextmanager
def serve_index(dir_index: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(dir_index)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def run(argv: list[str], *, env: dict[str, str], cwd: Path, expect: int = 0) -> tuple[str, float]:
    """Run a command the way a user would, echoing it and its output; returns (stdout, seconds)."""
    shown = [Path(argv[0]).name, *argv[1:]]
    print(f"$ {' '.join(shown)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.monotonic() - started
    if result.stdout.strip():
        print(result.stdout.rstrip(), flush=True)
    print(f"  (exit {result.returncode}, {elapsed:.1f}s)", flush=True)
    if result.returncode != expect:
        raise DemoFailed(f"{' '.join(shown)} exited {result.returncode}, expected {expect}")
    return result.stdout, elapsed


def uv_lock(dir_project: Path, env: dict[str, str]) -> None:
    run([str(BIN / "uv"), "lock", "--quiet"], env=env, cwd=dir_project)


def demo(dir_tmp: Path) -> None:
    say("A tiny package index on loopback with the alab-demo-* wheels")
    build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", dir_tmp / "wheels")
    write_simple_index(dir_tmp / "wheels", dir_tmp / "index")
    with serve_index(dir_tmp / "index") as index_url:
        print(f"index: {index_url}")
        say("A local AWS endpoint (moto server) and a bucket")
        moto = MotoServer.start(dir_tmp / "moto.log")
        try:
            print(f"endpoint: {moto.endpoint_url}")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UV_", "PIP_"))}
            env.update(
                AWS_ENDPOINT_URL=moto.endpoint_url,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="demo",
                AWS_SECRET_ACCESS_KEY="demo",
                UV_CACHE_DIR=str(dir_tmp / "uv-cache"),
                UV_PYTHON=sys.executable,
                UV_PYTHON_DOWNLOADS="never",
                PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            )
            aws("s3", moto.endpoint_url).create_bucket(Bucket=BUCKET)
            print(f"bucket: s3://{BUCKET}/")
            steps(dir_tmp, index_url, env, moto.endpoint_url)
        finally:
            moto.stop()
            print("\nStopped the local AWS endpoint and the index.")


def steps(dir_tmp: Path, index_url: str, env: dict[str, str], endpoint_url: str) -> None:
    say("Copy examples/sample_app and lock it with uv")
    app = dir_tmp / "sample_app"
    shutil.copytree(
        DIR_REPO / "examples" / "sample_app", app, ignore=shutil.ignore_patterns("build", ".venv", "uv.lock")
    )
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("http://127.0.0.1:8765/simple/", index_url))
    uv_lock(app, env)
    print(f"project: {app}")
    alab = [str(BIN / "alab"), "layer"]

    say("1. Plan: nothing is recorded in S3 yet")
    run([*alab, "plan", "--detailed-exitcode"], env=env, cwd=app, expect=2)

    say("2. Deploy: build, package, upload, publish version 1, record the fingerprint in S3")
    _, t_first = run([*alab, "deploy"], env=env, cwd=app)

    say("3. Deploy again: the S3 record matches, so nothing is built or published")
    shutil.rmtree(app / "build")
    out, t_noop = run([*alab, "deploy"], env=env, cwd=app)
    if "Unchanged" not in out or (app / "build" / "lambda" / "layer").exists():  # only the lock-reading cache
        raise DemoFailed("the second deploy should have changed nothing")

    say("4. Change a pin: alab-demo-core 1.0.0 -> 1.1.0, and lock")
    pyproject.write_text(pyproject.read_text().replace("alab-demo-core==1.0.0", "alab-demo-core==1.1.0"))
    uv_lock(app, env)

    say("5. Plan: the package-level diff against the manifest recorded in S3")
    out, _ = run([*alab, "plan", "--detailed-exitcode"], env=env, cwd=app, expect=2)
    if "~ alab-demo-core 1.0.0 -> 1.1.0" not in out:
        raise DemoFailed("the plan should show alab-demo-core 1.0.0 -> 1.1.0")

    say("6. Deploy: version 2")
    out, t_second = run([*alab, "deploy"], env=env, cwd=app)
    if "Published: sample-app-deps version 2" not in out:
        raise DemoFailed("the third deploy should publish version 2")

    say("Summary")
    lam = aws("lambda", endpoint_url)
    s3 = aws("s3", endpoint_url)
    versions = lam.list_layer_versions(LayerName=LAYER)["LayerVersions"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    print(f"Lambda layer {LAYER}: versions {sorted(v['Version'] for v in versions)}")
    print(f"S3 record in s3://{BUCKET}/sample-app/:")
    for key in sorted(keys):
        print(f"  {key}")
    print(f"deploy v1 {t_first:.1f}s | unchanged deploy {t_noop:.1f}s (no build) | deploy v2 {t_second:.1f}s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="alab-demo-") as tmp:
        try:
            demo(Path(tmp))
        except DemoFailed as e:
            print(f"\ndemo failed: {e}", file=sys.stderr)
            return 1
    print("\nDemo finished.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
