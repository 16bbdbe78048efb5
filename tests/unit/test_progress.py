"""The one way the library reports: logging per stage, progress events, and the seed's printer adapter."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from aws_lambda_artifact_builder.layer.foundation import BaseLogger
from aws_lambda_artifact_builder.layer.workflow import _in_background
from aws_lambda_artifact_builder.progress import (
    ProgressEvent,
    Stage,
    count_installer_line,
    forward_logs,
    forward_stages,
    get_logger,
    human_size,
    labelled,
    observe,
)


def test_the_seed_logger_prints_nothing_by_default_and_logs_each_line_once(capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="aws_lambda_artifact_builder")
    BaseLogger().log("built")
    BaseLogger(stage="package").debug("detail")
    assert capsys.readouterr() == ("", "")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("aws_lambda_artifact_builder.build", logging.INFO, "built"),
        ("aws_lambda_artifact_builder.package", logging.DEBUG, "detail"),
    ]


def test_a_given_printer_still_gets_every_line_unless_not_verbose(caplog):
    caplog.set_level(logging.DEBUG, logger="aws_lambda_artifact_builder")
    lines: list[str] = []
    BaseLogger(printer=lines.append).debug("one")
    BaseLogger(verbose=False, printer=lines.append).log("two")
    assert lines == ["one"]
    assert [r.getMessage() for r in caplog.records] == ["one", "two"]


def test_forward_logs_sends_every_line_of_its_block_to_the_printer_and_nothing_else():
    """The seed's verbose/printer at its API: DEBUG and up of the block, not the stage lines (events),
    nothing when not verbose or when the printer is the builtin print; the logger's level is restored."""
    package = logging.getLogger("aws_lambda_artifact_builder")
    level = package.level
    lines: list[str] = []
    with forward_logs(True, lines.append):
        get_logger("build").debug("Copy a to b")
        get_logger("publish").info("[publish] published")
        with Stage("record") as stage:
            stage.finish("version 3")
        with forward_logs(True, lines.append):  # an inner adapter of the same printer: each line once
            get_logger("store").warning("[store] warning: x")
    with forward_logs(False, lines.append), forward_logs(True, print):
        get_logger("build").warning("not forwarded")
    get_logger("build").warning("outside any block")
    assert lines == ["Copy a to b", "[publish] published", "[store] warning: x"]
    assert package.level == level


def test_a_printer_that_logs_is_not_fed_its_own_line_again():
    lines: list[str] = []

    def logging_printer(msg: str) -> None:
        lines.append(msg)
        get_logger("deploy").info("again: %s", msg)

    with forward_logs(True, logging_printer):
        get_logger("plan").info("one")
    assert lines == ["one"]


def test_a_seed_logger_inside_a_block_of_its_printer_forwards_once():
    lines: list[str] = []
    with forward_logs(True, lines.append):
        BaseLogger(printer=lines.append).log("built")
    assert lines == ["built"]


def test_a_stage_reports_started_progress_done_and_failed_with_its_detail():
    events: list[ProgressEvent] = []
    with observe(events.append):
        with Stage("upload", total=10, unit="bytes") as stage:
            stage.advance(4)
            stage.advance(6)
            stage.finish("10 B to s3://b/k")
        with pytest.raises(ValueError), Stage("publish"):
            raise ValueError("refused\nmore")
    assert [(e.stage, e.state, e.done) for e in events] == [
        ("upload", "started", 0),
        ("upload", "progress", 4),
        ("upload", "progress", 10),
        ("upload", "done", 10),
        ("publish", "started", 0),
        ("publish", "failed", 0),
    ]
    assert events[3].line().split() == ["upload", f"{events[3].elapsed:.1f}s", "10", "B", "to", "s3://b/k"]
    assert events[-1].detail == "refused"
    with Stage("after"):  # no hook any more: nothing observes it
        pass
    assert len(events) == 6


def test_a_stage_known_only_once_done_counts_its_time_from_when_its_work_began():
    events: list[ProgressEvent] = []
    with observe(events.append), Stage("fetch", started=time.monotonic() - 2.0) as stage:
        stage.finish("from the store")
    assert [e.state for e in events] == ["started", "done"] and events[-1].elapsed >= 2.0


def test_installer_lines_count_toward_the_install_stage_only():
    with Stage("install", total=2) as install:
        for line in ("Collecting six==1.16.0", "  Downloading six.whl", " + idna==3.7", " + extra==1", "Resolved 2"):
            count_installer_line(line)
    assert install.done == 2  # never past the total
    with Stage("package") as package:
        count_installer_line("Collecting six==1.16.0")
    assert package.done == 0


def test_forwarded_stage_lines_name_the_layer():
    lines: list[str] = []
    with forward_stages(lines.append, prefix="[deps] "), Stage("plan") as stage:
        stage.finish("no change")
    assert len(lines) == 1 and lines[0].startswith("[deps] plan ") and lines[0].endswith("  no change")


def test_resources_deployed_at_once_forward_only_their_own_lines():
    """A provider process deploys several resources at once, each in a thread with its own prefix."""
    lines: list[str] = []
    both_in = threading.Barrier(2)

    def deploy(name: str) -> None:
        with forward_stages(lines.append, prefix=f"[{name}] ", warnings=lambda m: lines.append(f"[{name}] {m}")):
            both_in.wait()  # both blocks forward at the same time
            with Stage("install") as stage:
                stage.finish(f"built {name}")
            get_logger("build").info("detail of %s", name)  # INFO: not forwarded
            get_logger("build").warning("warning of %s", name)
            # work handed to the plan's worker threads belongs to the block that handed it over
            _in_background(lambda: get_logger("store").warning("from a worker of %s", name)).result()
            both_in.wait()

    threads = [threading.Thread(target=deploy, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("a", "b"):
        own = sorted(line.split("] ", 1)[1] for line in lines if line.startswith(f"[{name}] "))
        assert [line.split()[0] for line in own] == ["from", "install", "warning"], lines
        assert all(name in line.rsplit(" ", 1)[1] for line in own), lines
    assert len(lines) == 6 and not any("detail" in line for line in lines)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1_500, "1.5 kB"), (63_600_000, "63.6 MB"), (2_500_000_000, "2.50 GB")],
)
def test_sizes_read_in_human_units(size, text):
    assert human_size(size) == text


def test_a_failed_command_is_one_short_cli_line_pointing_at_v():
    from aws_lambda_artifact_builder.cli import _short_build_error

    message = "build numpy 2.5.5 from its sdist failed with exit code 1\ncommand: pip wheel …\n" + "x\n" * 40
    message += "ERROR: No matching distribution found for numpy==2.5.5"
    assert _short_build_error(message, verbose=False) == (
        "build numpy 2.5.5 from its sdist failed with exit code 1 | ERROR: No matching distribution found for "
        "numpy==2.5.5 (rerun with -v for the command and its output)"
    )
    assert _short_build_error(message, verbose=True).endswith("numpy==2.5.5")
    assert (
        _short_build_error("uv could not install the pins: refused", verbose=False)
        == "uv could not install the pins: refused"
    )


def test_a_labelled_block_names_each_of_its_log_lines_once(caplog):
    """Targets deployed side by side: each line says which target it is of (not the caller's other lines)."""
    caplog.set_level(logging.INFO, logger="aws_lambda_artifact_builder")
    with labelled("eu-west-1/111111111111"):
        get_logger("publish").info("published version %d", 3)
        get_logger("publish").info("[eu-west-1/111111111111] already named")
    get_logger("publish").info("outside")
    assert [r.getMessage() for r in caplog.records] == [
        "[eu-west-1/111111111111] published version 3",
        "[eu-west-1/111111111111] already named",
        "outside",
    ]
