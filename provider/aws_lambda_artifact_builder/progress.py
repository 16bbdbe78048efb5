"""How the library says what it does: stdlib ``logging`` per stage and one progress-event hook.

- **Logs**: one logger per stage under ``aws_lambda_artifact_builder`` (``.plan``, ``.install``,
  ``.package``, ``.upload``, ``.publish``, ``.record``, …). The package installs a ``NullHandler``, so
  the library prints nothing unless the application configures logging. Installer commands and
  their output, and internal file copies, are ``DEBUG``; what a stage decided is ``INFO``; things the
  user should act on are ``WARNING``.
- **Progress**: a :class:`Stage` sends :class:`ProgressEvent` values (started, progress, done or
  failed, with items or bytes done of a total and the elapsed time) to every hook registered with
  :func:`observe`. The CLI draws them (bars on a terminal, one line per stage otherwise), Pulumi and
  Terraform forward them as log lines, tests collect them.
- **Seed API**: internal functions take no ``printer`` or ``verbose``: they log and send events. The
  seed's public functions keep both as an adapter, :func:`forward_logs`: for the duration of the call,
  every log line of the library goes to ``printer`` when ``verbose`` and ``printer`` is not the builtin
  ``print`` (the seed's default, which no longer writes to stdout).
- **Redaction**: every record of the library's loggers passes :func:`errors.redact` with the secrets of
  the running deploy (:func:`secrets`) before any handler sees it, and every sink of events here does
  the same, so the CLI, Pulumi, Terraform and an application's own logging show the same masked text.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

from .errors import redact
from .typehint import T_PRINTER

LOGGER_NAME = "aws_lambda_artifact_builder"

#: Set on the log record of a finished stage: a sink that draws the events skips it (said once).
STAGE_RECORD = "alab_stage_done"

State = Literal["started", "progress", "done", "failed"]
Unit = Literal["items", "bytes"]


#: The secrets of the running deploy or build (the index password): masked in every line of this context.
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("alab_secrets", default=())


@contextlib.contextmanager
def secrets(*values: str | None) -> Iterator[None]:
    """Mask ``values`` (as written and URL-encoded) in every log line and event line of this block."""
    token = _secrets.set(_secrets.get() + tuple(v for v in values if v))
    try:
        yield
    finally:
        _secrets.reset(token)


_label: contextvars.ContextVar[str] = contextvars.ContextVar("alab_label", default="")


@contextlib.contextmanager
def labelled(label: str) -> Iterator[None]:
    """Name every log line of this block ``[label] …``: one target's lines among several deployed at once."""
    token = _label.set(label)
    try:
        yield
    finally:
        _label.reset(token)


def redact_line(text: str) -> str:
    """``errors.redact`` with the secrets of the running block: what every sink shows."""
    return redact(text, _secrets.get())


class _Redact(logging.Filter):
    """On each of the library's loggers: the record's message redacted once, before any handler (and named
    by the block's label, :func:`labelled`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        label = _label.get()
        masked = redact_line(f"[{label}] {message}" if label and not message.startswith(f"[{label}] ") else message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_REDACT = _Redact()


def get_logger(stage: str) -> logging.Logger:
    """The logger of one stage, e.g. ``aws_lambda_artifact_builder.install`` (its records redacted)."""
    logger = logging.getLogger(f"{LOGGER_NAME}.{stage}")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)
    return logger


def human_size(size: float) -> str:
    """``58.2 MB``: bytes in decimal units, as S3, Lambda's console and ``rich`` show them."""
    for unit in ("B", "kB", "MB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.2f} GB"


def limit_size(size: int) -> str:
    """A size limit as AWS documents it: ``250 MiB`` (Lambda's "250 MB" is 262,144,000 bytes), else bytes."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return human_size(size)


#: The units a size limit may be written in (``250MB`` and ``250MiB`` alike: Lambda's "MB" are MiB).
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}


def parse_size(text: str | int) -> int:
    """Bytes from ``262144000``, ``250MB``, ``250 MiB`` or ``0.25GiB``; ``ValueError`` naming the forms.

    ``MB`` counts 2**20 bytes, as AWS does for Lambda's documented 250 MB limit (262,144,000 bytes).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if match is None or match[2].upper() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: write bytes (262144000) or a number and unit (250MB, 250MiB)")
    return int(float(match[1]) * _SIZE_UNITS[match[2].upper()])


def plural(count: int, word: str, many: str = "") -> str:
    """``1 package``, ``2 packages``: a count and its noun, as a reader says it."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def human_duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """One step of one stage: ``done`` of ``total`` items or bytes, ``elapsed`` seconds since it started.

    ``detail`` says what the stage did (on ``done``) or why it stopped (on ``failed``), in one phrase.
    """

    stage: str
    state: State
    done: int = 0
    total: int | None = None
    unit: Unit = "items"
    elapsed: float = 0.0
    detail: str = ""

    def line(self) -> str:
        """The event as one plain line, e.g. ``upload     2.1s  58.2 MB to s3://b/k``."""
        what = self.detail or self.state
        if self.state == "failed":
            what = "failed"  # why is the error's own line
        elif self.state in ("started", "progress"):
            what = self._amount() or what
        return f"{self.stage:<8}{human_duration(self.elapsed):>7}  {what}"

    def _amount(self) -> str:
        if self.total is None:
            return ""
        if self.unit == "bytes":
            return f"{human_size(self.done)} of {human_size(self.total)}"
        return f"{self.done} of {self.total}"


Hook = Callable[[ProgressEvent], object]
_hooks: list[Hook] = []
_hooks_lock = threading.Lock()


@contextlib.contextmanager
def observe(hook: Hook) -> Iterator[Hook]:
    """Send every progress event to ``hook`` while the block runs (from any thread)."""
    with _hooks_lock:
        _hooks.append(hook)
    try:
        yield hook
    finally:
        with _hooks_lock:
            _hooks.remove(hook)


def emit(event: ProgressEvent) -> None:
    with _hooks_lock:
        hooks = list(_hooks)
    for hook in hooks:
        hook(event)


_current: contextvars.ContextVar[Stage | None] = contextvars.ContextVar("alab_stage", default=None)


class Stage:
    """A stage of a deploy as a context block: started on entry, done (or failed) on exit.

    ``advance`` is safe from several threads (boto3 calls an upload's callback from its workers).
    """

    def __init__(
        self, name: str, *, total: int | None = None, unit: Unit = "items", started: float | None = None
    ) -> None:
        """``started`` (``time.monotonic()``): when the stage's work began, if before the block (it was known
        to be a stage of its own only once done, as a fetch that found what it looked for)."""
        self.name = name
        self.total = total
        self.unit: Unit = unit
        self.done = 0
        self.detail = ""
        self.logger = get_logger(name)
        self._started_at = started
        self._started = time.monotonic() if started is None else started
        self._lock = threading.Lock()
        self._token: contextvars.Token[Stage | None] | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _event(self, state: State) -> ProgressEvent:
        return ProgressEvent(self.name, state, self.done, self.total, self.unit, self.elapsed, self.detail)

    def __enter__(self) -> Stage:
        self._started = time.monotonic() if self._started_at is None else self._started_at
        self._token = _current.set(self)
        emit(self._event("started"))
        return self

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.done += amount
            event = self._event("progress")
        emit(event)

    def finish(self, detail: str) -> None:
        """What the stage did, in one phrase, for its ``done`` event and its log."""
        self.detail = detail

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
        if exc is None:
            self.logger.info(
                "%s: %s (%s)",
                self.name,
                self.detail or "done",
                human_duration(self.elapsed),
                extra={STAGE_RECORD: True},
            )
            emit(self._event("done"))
        else:
            self.detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            emit(self._event("failed"))


#: The sinks of log lines of the running block (:func:`forward_logs`, ``forward_stages``'s warnings), each
#: with its lowest level. A context variable: a provider deploys several resources at once, each in its own
#: thread with its own sinks, and the plan's worker threads run in a copy of their caller's context.
_sinks: contextvars.ContextVar[tuple[tuple[int, T_PRINTER], ...]] = contextvars.ContextVar("alab_sinks", default=())


class _ToSinks(logging.Handler):
    """On the package logger, always: each record (already redacted) to the sinks of the block that logged it."""

    def emit(self, record: logging.LogRecord) -> None:
        sinks = _sinks.get()
        if not sinks or getattr(record, STAGE_RECORD, False) or _in_sink.get():  # a stage's line is its event
            return
        message = record.getMessage()
        token = _in_sink.set(True)  # a sink that logs (a printer of the seed's) is not fed its own line again
        try:
            for level, sink in sinks:
                if record.levelno >= level:
                    sink(message)
        finally:
            _in_sink.reset(token)


_in_sink: contextvars.ContextVar[bool] = contextvars.ContextVar("alab_in_sink", default=False)


class _Lowered:
    """The package logger at ``DEBUG`` while any block forwards every line, back to its level after the last.

    Counted: blocks of several threads overlap and end in any order. A record is made only if the logger
    is enabled for its level; an application's handlers also see the library's detail lines meanwhile,
    as far as their own levels let them (a handler made by ``basicConfig(level=INFO)`` does not).
    """

    lock = threading.Lock()
    count = 0
    saved = logging.NOTSET


@contextlib.contextmanager
def _forward(sink: T_PRINTER, level: int) -> Iterator[None]:
    if any(s == sink and lv <= level for lv, s in _sinks.get()):  # an outer block forwards to it already
        yield
        return
    logger = logging.getLogger(LOGGER_NAME)
    lower = level < logging.WARNING
    if lower:
        with _Lowered.lock:
            if _Lowered.count == 0:
                _Lowered.saved = logger.level
            _Lowered.count += 1
            logger.setLevel(min(level, logger.getEffectiveLevel()))
    token = _sinks.set((*_sinks.get(), (level, sink)))
    try:
        yield
    finally:
        _sinks.reset(token)
        if lower:
            with _Lowered.lock:
                _Lowered.count -= 1
                if _Lowered.count == 0:
                    logger.setLevel(_Lowered.saved)


def forward_logs(verbose: bool, printer: T_PRINTER) -> contextlib.AbstractContextManager[None]:
    """The seed's ``verbose``/``printer`` pair, for the duration of one call of the seed's API: every log
    line of the library (``DEBUG`` and up, redacted; not the stage lines, which are events) goes to
    ``printer`` when ``verbose`` and ``printer`` is not the builtin ``print`` (the seed's default, which
    leaves the lines to ``logging`` alone). Only this block's work is forwarded, from any of its threads
    that run in a copy of its context."""
    if not verbose or printer is builtins.print:
        return contextlib.nullcontext()
    return _forward(printer, logging.DEBUG)


@contextlib.contextmanager
def forward_stages(printer: T_PRINTER, prefix: str = "", *, warnings: T_PRINTER | None = None) -> Iterator[None]:
    """Each finished stage as one line to ``printer`` while the block runs (and each ``WARNING`` of the
    library to ``warnings``): how Pulumi and Terraform, whose logs are line-based, show the story the CLI
    draws. Only this block's own work is forwarded: a provider deploys several resources at once, each in
    its own thread with its own prefix."""
    owner = object()
    token = _forwarder.set(owner)

    def hook(event: ProgressEvent) -> None:
        if event.state == "done" and _forwarder.get() is owner:
            printer(prefix + redact_line(event.line()))

    try:
        with observe(hook), _forward(warnings, logging.WARNING) if warnings is not None else contextlib.nullcontext():
            yield
    finally:
        _forwarder.reset(token)


#: Which ``forward_stages`` block the running code belongs to (events reach every hook, from any thread).
_forwarder: contextvars.ContextVar[object | None] = contextvars.ContextVar("alab_forwarder", default=None)
logging.getLogger(LOGGER_NAME).addHandler(_ToSinks())
logging.getLogger(LOGGER_NAME).addFilter(_REDACT)


def details_requested() -> bool:
    """``ALAB_VERBOSE=1`` where ``pulumi up`` runs: every detail line, as ``alab -v`` shows them."""
    return os.environ.get("ALAB_VERBOSE", "").strip().lower() in ("1", "true", "yes")


def current_stage() -> Stage | None:
    """The innermost stage running in this thread (``None`` outside any)."""
    return _current.get()


def advance_current(amount: int = 1) -> None:
    """Advance the running stage, if any: for loops deep in a stage that know nothing of it."""
    stage = _current.get()
    if stage is not None:
        stage.advance(amount)


def set_current_total(total: int, unit: Unit) -> None:
    """Give the running stage its total once it is known (the package stage learns it after a scan)."""
    stage = _current.get()
    if stage is not None:
        stage.total, stage.unit = total, unit


#: An installer's line for one distribution: pip's "Collecting x==1" / "Processing ./x.whl", uv's " + x==1".
_INSTALLER_ITEM = re.compile(r"^(?:Collecting |Processing | \+ )\S")


def count_installer_line(line: str) -> None:
    """Count one line of installer output toward the running ``install`` stage when it names one
    distribution (how far an install is, without the installer's help)."""
    stage = _current.get()
    counts = stage is not None and stage.name == "install" and _INSTALLER_ITEM.match(line)
    if counts and stage is not None and (stage.total is None or stage.done < stage.total):
        stage.advance()


def forwarded_to(printer: T_PRINTER) -> bool:
    """Whether a :func:`forward_logs` block of this context sends every line to ``printer`` already."""
    return any(sink == printer for _level, sink in _sinks.get())
