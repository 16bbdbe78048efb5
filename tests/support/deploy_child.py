"""``python -m support.deploy_child SPEC_JSON``: deploy_layer in a separate process.

For crash and concurrency tests: the spec holds deploy_layer's keyword arguments, plus
``credentials_file`` (a ``Credentials.dump`` file) and ``die_at`` (a progress event: ``[stage, state]`` or
``[stage, state, done]``, e.g. ``["record", "progress", 1]``): the process SIGKILLs itself right after
writing that event, i.e. exactly at that step boundary. Every progress event the deploy sends
(``progress.observe``) is written as one ``EVENT {json}`` line; the library's log lines go to stdout
too (``logging``, for a reader of a failure); the result is one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_lambda_artifact_builder.api import Credentials, deploy_layer
from aws_lambda_artifact_builder.progress import ProgressEvent, observe

DIR_TESTS = Path(__file__).resolve().parent.parent


def event_fields(event: ProgressEvent) -> dict[str, Any]:
    return {"stage": event.stage, "state": event.state, "done": event.done}


def is_event(fields: dict[str, Any], at: list[Any]) -> bool:
    """Whether an event's fields are the boundary ``at`` (``[stage, state]`` or ``[stage, state, done]``)."""
    return [fields["stage"], fields["state"], fields["done"]][: len(at)] == list(at)


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    die_at = spec.pop("die_at", None)
    path_credentials = spec.pop("credentials_file", None)
    credentials = Credentials.load(path_credentials) if path_credentials else None
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")

    def on_event(event: ProgressEvent) -> None:
        fields = event_fields(event)
        print("EVENT " + json.dumps(fields), flush=True)
        if die_at and is_event(fields, die_at):
            os.kill(os.getpid(), signal.SIGKILL)

    with observe(on_event):
        result = deploy_layer(credentials=credentials, **spec)
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


def events_of(output: str) -> list[dict[str, Any]]:
    """The progress events a child wrote, in order."""
    return [json.loads(line[len("EVENT ") :]) for line in output.splitlines() if line.startswith("EVENT ")]


def result_of(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if len(lines) != 1:
        raise AssertionError(f"child printed no result:\n{output}")
    return json.loads(lines[0][len("RESULT ") :])


if __name__ == "__main__":
    main()
