"""docs/terminal-deploy.txt (written by scripts/capture-terminal-deploy.sh) still shows what the CLI shows:
its stage lines are the stages the pipeline has, in the line format of ``ProgressEvent.line``, and the
wording of the plan and record stages is today's. Cheap: reads the file, no network."""

from __future__ import annotations

import re
from pathlib import Path

from aws_lambda_artifact_builder.progress import ProgressEvent

DIR_REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = DIR_REPO / "docs" / "terminal-deploy.txt"
STAGES = ("plan", "fetch", "install", "package", "upload", "publish", "record", "grants", "retain")
#: A finished stage as the terminal shows it: the check mark, then the line a pipe would get.
DONE = re.compile(r"^✓ (?P<line>(?P<stage>[a-z]+) +(?P<elapsed>\d+\.\d)s  (?P<detail>\S.*))$")


def _done_lines() -> list[re.Match[str]]:
    return [m for m in map(DONE.match, SNAPSHOT.read_text(encoding="utf-8").splitlines()) if m]


def test_every_stage_line_names_a_stage_of_the_pipeline_in_todays_format():
    lines = _done_lines()
    assert {m["stage"] for m in lines} >= {"plan", "install", "package", "upload", "publish", "record"}
    for match in lines:
        assert match["stage"] in STAGES, match[0]
        elapsed, detail = float(match["elapsed"]), match["detail"]
        event = ProgressEvent(stage=match["stage"], state="done", elapsed=elapsed, detail=detail)
        assert event.line() == match["line"], (event.line(), match["line"])


def test_the_wording_is_todays():
    text = SNAPSHOT.read_text(encoding="utf-8")
    assert "change: no earlier version is recorded; a deploy publishes the first version" in text
    assert "version 1 recorded in S3 as the current one" in text and "names version" not in text
    assert re.search(r"^✓ install +\d+\.\ds  \d+ packages for python3\.12 x86_64 \(local\)$", text, re.M)
    assert "Written by scripts/capture-terminal-deploy.sh" in text
    assert (DIR_REPO / "scripts" / "capture-terminal-deploy.sh").is_file()


def test_the_running_stages_were_captured_mid_way():
    text = SNAPSHOT.read_text(encoding="utf-8")
    for stage in ("package", "upload"):
        amounts = re.search(rf"^\S {stage} +\S+ (\d+\.\d) MB/(\d+\.\d) MB", text, re.M)
        assert amounts and 0 < float(amounts[1]) < float(amounts[2]), f"no {stage} bar mid-way"
