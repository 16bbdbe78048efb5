"""What every benchmark reports: ratios of two things measured side by side in the same run.

A measure is taken over several rounds; each round times both sides back to back (alternating which
goes first, so load from other processes hits both alike) and yields one ratio. A row shows the median
ratio and its min-max over the rounds, plus the median absolute figures it came from. Nothing here
asserts a timing: the goals are printed for a reader to compare.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Ratio:
    """One row of a benchmark table."""

    measure: str
    #: What it was measured on (a project, an engine).
    subject: str
    #: One ratio per round.
    samples: tuple[float, ...]
    goal: str = ""
    #: The absolute medians the ratio divides, e.g. ``"12.1 s ÷ 10.4 s"``.
    detail: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def cells(self) -> list[str]:
        low, high = min(self.samples), max(self.samples)
        spread = f"{low:.2f}–{high:.2f}" if len(self.samples) > 1 else "—"
        return [
            self.measure,
            self.subject,
            f"{self.median:.2f}",
            spread,
            str(len(self.samples)),
            self.goal,
            self.detail,
        ]


HEADER = ["measure", "on", "ratio (median)", "min–max", "rounds", "goal", "medians"]


def markdown_table(rows: Sequence[Ratio]) -> str:
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", "---:", "---", "---"]) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def paired(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    rounds: int,
    *,
    before: Callable[[], object] | None = None,
    warm: bool = True,
) -> tuple[list[float], list[float]]:
    """Seconds of each side per round, the two alternating which runs first.

    ``before`` runs untimed ahead of every timed call (e.g. emptying a cache for a cold measure);
    ``warm`` runs each side once, untimed, first.
    """
    if warm:
        ours()
        theirs()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds):
        order = ((ours, times[0]), (theirs, times[1]))
        for fn, out in order if i % 2 == 0 else order[::-1]:
            if before is not None:
                before()
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return times


def time_ratio(measure: str, subject: str, ours: list[float], theirs: list[float], goal: str = "") -> Ratio:
    samples = tuple(a / b for a, b in zip(ours, theirs, strict=True))
    detail = f"{seconds(statistics.median(ours))} ÷ {seconds(statistics.median(theirs))}"
    return Ratio(measure, subject, samples, goal, detail)


def size(value: int) -> str:
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"


def size_ratio(measure: str, subject: str, ours: int, theirs: int, goal: str = "") -> Ratio:
    """A ratio of two sizes: deterministic, so one sample."""
    return Ratio(measure, subject, (ours / theirs,), goal, f"{size(ours)} ÷ {size(theirs)}")


def machine() -> str:
    """Cores, memory and load: the figures a reader needs to weigh the ratios."""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores{mem}{load}, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
