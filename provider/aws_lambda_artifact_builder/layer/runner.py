"""Starting processes on this host: the one effect the build stage and the lock reader have besides files.

``CommandRunner`` is what they are given (a ``runner`` keyword on ``read_local_manifest``, the local
builders, ``run_command``/``run_install_steps`` and the evidence probes, defaulting to ``SUBPROCESS``),
so a test hands them a fake runner and sees the exact commands a build would run without running any.
A runner only starts the command and reports what it did; what the output means (a stale lock, a
failed install), masking secrets in it and counting installer lines stay with the caller.

* ``run(argv, env=, cwd=, timeout=)`` captures stdout and stderr apart;
* ``run(..., on_line=callback)`` merges stderr into stdout and hands each line (without its newline)
  to ``callback`` as it comes: the result's ``stdout`` and ``stderr`` are then empty.

The child's stdin is always ``/dev/null`` (no tool may stop to ask), its output is read as UTF-8 with
undecodable bytes replaced, ``env=None`` inherits this process's environment. A command that cannot
start raises ``OSError`` (the caller names the tool); one that outlives ``timeout`` is killed and
reported with ``timed_out=True``.

The container build files (``build_container*.py``) still start their engine themselves; they adopt
this by taking a ``runner`` the same way (their in-container script cannot: it runs where this
package is not installed).
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["SUBPROCESS", "CommandResult", "CommandRunner", "SubprocessRunner"]


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a finished (or killed) command did."""

    argv: tuple[str, ...]
    returncode: int
    #: Captured output; both empty when the lines went to ``on_line``.
    stdout: str = ""
    stderr: str = ""
    #: Killed after ``timeout`` seconds (``returncode`` is then the kill's).
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class CommandRunner(Protocol):
    """Runs one command to its end (see the module docstring for the contract)."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """The real runner: ``subprocess`` on this host."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        args = list(argv)
        child_env = dict(env) if env is not None else None
        if on_line is None:
            try:
                done = subprocess.run(
                    args,
                    env=child_env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as e:
                return CommandResult(tuple(args), -9, _text(e.stdout), _text(e.stderr), timed_out=True)
            return CommandResult(tuple(args), done.returncode, done.stdout, done.stderr)
        return _stream(args, child_env, cwd, timeout, on_line)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def _stream(
    args: list[str],
    env: dict[str, str] | None,
    cwd: str | Path | None,
    timeout: float | None,
    on_line: Callable[[str], None],
) -> CommandResult:
    """Run with stderr merged into stdout, each line to ``on_line`` as it comes; a watchdog kills
    the process at ``timeout`` (reading the pipe cannot itself time out)."""
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    watchdog = threading.Timer(timeout, kill) if timeout is not None else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
    assert proc.stdout is not None
    try:
        with proc:
            for raw in proc.stdout:
                on_line(raw.rstrip("\n"))
    finally:
        if watchdog is not None:
            watchdog.cancel()
    return CommandResult(tuple(args), proc.returncode, timed_out=killed.is_set())


#: The runner every caller gets unless it is given another.
SUBPROCESS: CommandRunner = SubprocessRunner()
