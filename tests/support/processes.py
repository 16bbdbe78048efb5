"""Watch every process started during a test, to prove a secret never reaches a command line.

Two independent nets: a wrapper around ``subprocess.Popen`` records the argv and environment
of every child this Python process starts, and a poller reads ``/proc/*/cmdline`` of every
process on the machine (grandchildren too: pip's and uv's own helpers) until stopped.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@dataclasses.dataclass
class SpawnRecord:
    argv: list[str]
    env: dict[str, str] | None


@dataclasses.dataclass
class ProcessWatch:
    spawned: list[SpawnRecord] = dataclasses.field(default_factory=list)
    #: Every distinct command line seen in /proc while watching.
    cmdlines: set[str] = dataclasses.field(default_factory=set)
    polls: int = 0


def _poll_cmdlines(watch: ProcessWatch, stop: threading.Event) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                watch.cmdlines.add(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
        watch.polls += 1
        stop.wait(0.002)


@contextmanager
def watch_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessWatch]:
    """Record every spawn through ``subprocess.Popen`` and every command line visible in /proc."""
    watch = ProcessWatch()
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *a: Any, **kw: Any) -> None:
            argv = [str(args)] if isinstance(args, (str, bytes, os.PathLike)) else [str(x) for x in args]
            env = kw.get("env")
            watch.spawned.append(SpawnRecord(argv=argv, env=dict(env) if env is not None else None))
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    stop = threading.Event()
    poller = threading.Thread(target=_poll_cmdlines, args=(watch, stop), daemon=True)
    poller.start()
    try:
        yield watch
    finally:
        stop.set()
        poller.join()
        monkeypatch.setattr(subprocess, "Popen", real_popen)


def files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    """Every file below ``root`` whose bytes contain one of ``needles``."""
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(path)
    return hits
