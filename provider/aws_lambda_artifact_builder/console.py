"""What ``alab`` shows on stderr while it works: a short story, one line per stage with its time.

On a terminal the running stage has a ``rich`` spinner and elapsed time, with a bar of bytes done
for package and upload (install shows its package count: uv names the packages only at the end); otherwise (CI logs, pipes) only the stage lines are written, plainly. Log records of the
library show at ``WARNING`` and above, everything (installer commands and output, file copies)
with ``-v``; ``--quiet`` leaves warnings and errors only. Python warnings (a ``python_version``
newer than the known runtimes) are one ``warning:`` line, not a ``UserWarning`` with a source line.
Every line passes :func:`errors.redact` with the run's secret, like the CLI's error line.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .errors import redact
from .progress import LOGGER_NAME, STAGE_RECORD, ProgressEvent, human_size, observe, plural


class _AmountColumn(ProgressColumn):
    """``18.2 MB/58.2 MB`` for a stage counted in bytes; ``42 packages`` for the install.

    The install has no bar: uv reports the packages it installed all at once at the end (and
    downloads only the large wheels by name), so a count of packages done would sit at 0 and jump
    to the total. The spinner and the elapsed time say it is working; the count says how much.
    """

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            return Text("" if task.total is None else f"{human_size(task.completed)}/{human_size(task.total)}")
        count = task.fields.get("count")
        return Text("" if count is None else plural(int(count), "package"))


class _BytesBarColumn(BarColumn):
    """A bar only for stages counted in bytes (package, upload): those move as the bytes go."""

    def render(self, task: Task) -> Any:
        return super().render(task) if task.fields.get("unit") == "bytes" else Text("")


class _Handler(logging.Handler):
    def __init__(self, output: ConsoleOutput) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, STAGE_RECORD, False):
            return  # the stage's own line says it
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        self.output.write(message, style="yellow" if record.levelno >= logging.WARNING else "dim")


class ConsoleOutput:
    """Draws progress events and log records on ``stream`` for the duration of a ``with`` block."""

    def __init__(
        self, stream: IO[str], *, verbose: bool = False, quiet: bool = False, secrets: Callable[[], list[str | None]]
    ) -> None:
        self.stream = stream
        self.verbose = verbose
        self.quiet = quiet
        self.secrets = secrets
        self.console = Console(file=stream, highlight=False)
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.done: dict[str, int] = {}  # what each running task has shown done
        self._stack = contextlib.ExitStack()

    def write(self, line: str, *, style: str = "") -> None:
        """One line, secrets removed; above the bars on a terminal, plain otherwise."""
        line = redact(line, self.secrets())
        if self.live:
            self.console.print(Text(line, style=style), soft_wrap=True)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __enter__(self) -> ConsoleOutput:
        logger = logging.getLogger(LOGGER_NAME)
        handler = _Handler(self)
        handler.setLevel(logging.DEBUG if self.verbose else logging.WARNING)
        previous = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        self._stack.callback(logger.setLevel, previous)
        self._stack.callback(logger.removeHandler, handler)
        self._stack.enter_context(warnings.catch_warnings())
        warnings.showwarning = self._show_warning
        if self.live:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<8}"),
                _BytesBarColumn(),
                _AmountColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._stack.enter_context(self.progress)
        self._stack.enter_context(observe(self.on_event))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _show_warning(self, message: Warning | str, category: type[Warning], *_args: Any, **_kwargs: Any) -> None:
        logging.getLogger(LOGGER_NAME).warning("%s", message)

    def on_event(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        if self.progress is not None and event.state in ("started", "progress"):
            task = self.tasks.get(event.stage)
            total = event.total if event.unit == "bytes" else None
            count = event.total if event.stage == "install" else None  # packages; other stages count steps
            if task is None:
                task = self.progress.add_task(event.stage, total=total, unit=event.unit, count=count)
                self.tasks[event.stage] = task
            if total is not None and event.done < self.done.get(event.stage, 0):
                # Bytes counted again (botocore read the body to sign it, then rewound it to send it): a
                # task once complete stays "finished" in rich (no spinner, frozen time) unless reset.
                self.progress.reset(task, total=total)
            self.progress.update(task, completed=event.done, total=total, unit=event.unit, count=count)
            self.done[event.stage] = event.done
            return
        if event.state in ("done", "failed"):
            task = self.tasks.pop(event.stage, None)
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)
            if event.state == "done":  # a failed stage ends the story with the error's own line
                self._stage_line(event)

    def _stage_line(self, event: ProgressEvent) -> None:
        if not self.live:
            self.write(event.line())
            return
        self.console.print(f"[green]✓[/] {escape(redact(event.line(), self.secrets()))}", soft_wrap=True)
