"""``python -m support.deploy_child SPEC_JSON``: deploy_layer in a separate process.

For crash and concurrency tests: the spec holds deploy_layer's keyword arguments, plus
``credentials_file`` (a ``Credentials.dump`` file) and ``die_after`` (a progress-line prefix:
the process SIGKILLs itself right after printing it, i.e. exactly at that step boundary). Each
finished stage (a progress event) is printed as ``stage NAME done``, so a stage's end is a boundary too.
The result is printed as one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_lambda_artifact_builder.api import Credentials, deploy_layer
from aws_lambda_artifact_builder.progress import ProgressEvent, observe

DIR_TESTS = Path(__file__).resolve().parent.parent


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    die_after = spec.pop("die_after", None)
    path_credentials = spec.pop("credentials_file", None)
    credentials = Credentials.load(path_credentials) if path_credentials else None

    def printer(line: str) -> None:
        print(line, flush=True)
        if die_after and line.startswith(die_after):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_event(event: ProgressEvent) -> None:
        if event.state == "done":
            printer(f"stage {event.stage} done")

    with observe(on_event):
        result = deploy_layer(credentials=credentials, printer=printer, **spec)
    print("RESULT " + json.dumps(result.to_dict()), flush=True)


def start(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """Start a child deploy (the AWS endpoint comes from the inherited environment)."""
    env = dict(os.environ, PYTHONPATH=str(DIR_TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "support.deploy_child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def result_of(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if len(lines) != 1:
        raise AssertionError(f"child printed no result:\n{output}")
    return json.loads(lines[0][len("RESULT ") :])


if __name__ == "__main__":
    main()
