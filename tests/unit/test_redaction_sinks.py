"""One ``redact()`` behind every sink: the index password, as written and URL-encoded, never shows.

The sinks: the CLI (its console lines and its error line), Terraform (diagnostics through ``_scrub``, and its
stderr log fed by ``forward_logs``/``forward_stages``), Pulumi (its stderr lines) and stdlib ``logging``
(every record of the library's loggers, whatever handler the application attached).
"""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

from aws_lambda_artifact_builder.cli import _one_line
from aws_lambda_artifact_builder.console import ConsoleOutput
from aws_lambda_artifact_builder.layer.foundation import Credentials
from aws_lambda_artifact_builder.progress import Stage, forward_logs, forward_stages, get_logger, secrets
from aws_lambda_artifact_builder.pulumi_provider import _log as pulumi_log
from aws_lambda_artifact_builder.terraform_provider.resource import _scrub, _stderr_printer

PASSWORD = "s3cr/t:p@ss"
ENCODED = quote(PASSWORD, safe="")  # s3cr%2Ft%3Ap%40ss: how it sits in an index URL
LINE = f"GET https://pypi.example/simple/?token={ENCODED} and https://alice:{ENCODED}@pypi.example/simple/"


def _clean(text: str) -> bool:
    return bool(text) and ENCODED not in text and PASSWORD not in text and "alice:" not in text


def test_the_encoded_password_is_url_encoded_differently_from_the_raw_one():
    assert ENCODED != PASSWORD and PASSWORD not in LINE and ENCODED in LINE


def test_logging_records_are_redacted_before_any_handler(caplog):
    with caplog.at_level(logging.DEBUG, logger="aws_lambda_artifact_builder"), secrets(PASSWORD):
        get_logger("install").debug("%s", LINE)
    (record,) = caplog.records
    assert _clean(record.getMessage()) and "****" in record.getMessage(), record.getMessage()


def test_the_seed_printer_gets_redacted_lines():
    lines: list[str] = []
    with secrets(PASSWORD), forward_logs(True, lines.append):
        get_logger("install").debug(LINE)
    assert len(lines) == 1 and _clean(lines[0]), lines


def test_pulumi_lines_are_redacted(capsys):
    with secrets(PASSWORD):
        pulumi_log(f"error: layer 'deps' was not deployed: {LINE}")
        with forward_stages(pulumi_log, prefix="[deps] "), Stage("install") as stage:
            stage.finish(LINE)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(_clean(line) for line in err), err


def test_terraform_diagnostics_and_log_lines_are_redacted(capsys):
    credentials = Credentials(index_name="private", index_url="https://pypi.example/simple/", username="alice",
                              password=PASSWORD)  # fmt: skip
    assert _clean(_scrub(LINE, credentials))
    with secrets(PASSWORD), forward_logs(True, _stderr_printer), forward_stages(_stderr_printer):
        get_logger("install").info(LINE)
        with Stage("install") as stage:
            stage.finish(LINE)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(_clean(line) for line in err), err


def test_cli_lines_are_redacted():
    assert _clean(_one_line(f"could not install\n{LINE}", PASSWORD))
    stream = io.StringIO()
    with ConsoleOutput(stream, verbose=True, secrets=lambda: [PASSWORD]):
        get_logger("install").debug(LINE)  # the CLI's own secret, without a progress.secrets block
        with Stage("install") as stage:
            stage.finish(LINE)
    text = stream.getvalue()
    assert text.count("pypi.example") == 4 and _clean(text), text  # two lines of two URLs each
