"""benchmarks/RELIABILITY.md counts its cases from the tests: each row's "Cases" must be the number of
test cases pytest collects for the tests that row names, so the figures cannot drift from the tables."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parents[2]
FIGURES = DIR_REPO / "benchmarks" / "RELIABILITY.md"
_REF = re.compile(r"`(test_\w+\.py)::(test_\w+)`")


def figure_rows(text: str) -> list[tuple[list[tuple[str, str]], int]]:
    """``([(file, test), ...], cases)`` of every table row that names tests."""
    rows: list[tuple[list[tuple[str, str]], int]] = []
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
            continue
        refs = _REF.findall(line)
        if refs:
            rows.append((refs, int(cells[header.index("Cases")].split()[0])))
    return rows


def collected(files: set[str]) -> Counter[tuple[str, str]]:
    """Test cases per ``(file, test function)``, as pytest collects them."""
    paths = sorted(str(p) for name in files for p in (DIR_REPO / "tests").rglob(name))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
        cwd=DIR_REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.findall(r"^tests/\S*?/(test_\w+\.py)::(test_\w+)", result.stdout, re.M)
    return Counter((file, test) for file, test in found)


def test_the_figures_parse():
    rows = figure_rows(
        "| A | Tests | Cases |\n|---|---|---|\n| x | `test_a.py::test_b`, `test_a.py::test_c` | 3 (two) |\n"
    )
    assert rows == [([("test_a.py", "test_b"), ("test_a.py", "test_c")], 3)]


def test_every_count_in_reliability_md_is_what_the_tests_collect():
    rows = figure_rows(FIGURES.read_text(encoding="utf-8"))
    assert len(rows) >= 20, "RELIABILITY.md lost its tables"
    counts = collected({file for refs, _ in rows for file, _ in refs})
    drift = []
    for refs, cases in rows:
        missing = [ref for ref in refs if ref not in counts]
        assert not missing, f"RELIABILITY.md names tests that do not exist: {missing}"
        if sum(counts[ref] for ref in refs) != cases:
            drift.append(f"{refs}: the file says {cases}, the tests collect {sum(counts[ref] for ref in refs)}")
    assert not drift, "RELIABILITY.md drifted from the tests:\n" + "\n".join(drift)
