"""What a user sees from ``alab``, run as a process: the stage story, ``-v``, a terminal's bars,
AWS failures as one line naming the fix, and the warning for a Python newer than the known runtimes."""

from __future__ import annotations

import http.server
import json
import os
import pty
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import ALAB, alab, configure
from support.projects import lock, set_pin

STAGES = ("plan", "fetch", "install", "package", "upload", "publish", "record", "grants", "retain")
#: A stage line: its name, its time, what it did.
STAGE_LINE = re.compile(r"^(?P<stage>[a-z]+) +(?P<elapsed>\d+\.\ds|\d+m\d\ds)  (?P<what>\S.*)$")


@pytest.fixture()
def configured(project_copy, bucket: str, credentials) -> Path:
    return configure(
        project_copy("uv"), layer_name="story-deps", s3dir=f"s3://{bucket}/apps/story/", credentials=credentials
    )


def _env(credentials, **extra: str) -> dict[str, str]:
    return {**os.environ, "ALAB_INDEX_PASSWORD": credentials.password, **extra}


def _stages(stderr: str) -> list[str]:
    """The stage of each line of stderr; a line that is no stage line fails the test with stderr shown."""
    found = []
    for line in stderr.splitlines():
        match = STAGE_LINE.match(line)
        assert match and match["stage"] in STAGES, f"not a stage line: {line!r}\n{stderr}"
        found.append(match["stage"])
    return found


def test_default_output_is_one_line_per_stage_and_v_adds_the_installer_detail(
    configured, credentials, private_index, dir_tool_cache
):
    project = str(configured.parent)
    first = alab("layer", "deploy", "--project", project, env=_env(credentials))
    assert first.returncode == 0, first.stderr
    assert _stages(first.stderr) == ["plan", "install", "package", "upload", "publish", "record"]
    lines = dict(line.split(None, 1) for line in first.stderr.splitlines())
    assert re.search(r"\b\d+ packages for python3\.12 x86_64 \(local\)$", lines["install"])
    assert re.search(r"layer\.zip \d+\.\d (kB|MB) \(\d+\.\d (kB|MB) unzipped, \d+ files\)$", lines["package"])
    assert re.search(r"\d+\.\d (kB|MB) to s3://", lines["upload"])
    for noise in ("\x1b[", "--- ", "Copy ", "Using CPython", "pip install", "%"):
        assert noise not in first.stderr

    set_pin(configured, "alab-demo-core", "1.1.0")
    lock("uv", configured.parent, private_index, dir_tool_cache)
    verbose = alab("layer", "deploy", "--project", project, "-v", env=_env(credentials))
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"^--- uv pip install of \d+ pinned distributions .*: \S*uv pip install ", verbose.stderr, re.M)
    assert re.search(r"^Copy \S+/pyproject\.toml to ", verbose.stderr, re.M)
    stage_lines = [line.split()[0] for line in verbose.stderr.splitlines() if STAGE_LINE.match(line)]
    assert stage_lines[:1] == ["plan"] and "upload" in stage_lines
    # Sizes carry their unit in the detail too (the package report's per-distribution sizes).
    sizes = re.findall(r"^ +(\S+ \S+)  alab[-_]demo[-_]core$", verbose.stderr, re.M)
    assert sizes and all(re.fullmatch(r"\d+(\.\d)? (B|kB|MB)", size) for size in sizes), verbose.stderr
    assert credentials.password not in verbose.stdout + verbose.stderr


def test_quiet_shows_no_story_and_json_keeps_stdout_clean(configured, credentials):
    result = alab("layer", "deploy", "--project", str(configured.parent), "--quiet", "--json", env=_env(credentials))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout)["published"] is True


def _run_in_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Everything a terminal of 120 columns shows of the run (stdout and stderr), escapes included."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "COLUMNS": "120", "TERM": "xterm"}
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_on_a_terminal_stages_are_checked_off_with_rich(configured, credentials):
    shown = _run_in_terminal([str(ALAB), "layer", "deploy", "--project", str(configured.parent)], _env(credentials))
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    for stage in ("plan", "install", "package", "upload", "publish", "record"):
        assert re.search(rf"✓ {stage} +\d+\.\ds  \S", plain), shown
    assert "\x1b[" in shown  # drawn by rich (colour, cursor moves for the bars), not plain lines
    assert "Published: story-deps version 1" in plain


# ---------------------------------------------------------------------------- AWS failures
class _RefusingAws(http.server.BaseHTTPRequestHandler):
    """Answers every S3 and Lambda call with one error code, as AWS words it for each protocol."""

    code = "AccessDenied"
    status = 403

    def _answer(self) -> None:
        if self.path.startswith("/20"):  # Lambda's REST-JSON paths (/2015-03-31/..., /2018-10-31/...)
            body = json.dumps({"Type": "User", "message": "refused"}).encode()
            code = (
                self.code if self.code.endswith("Exception") or self.code == "ExpiredToken" else self.code + "Exception"
            )
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        else:
            body = f"<Error><Code>{self.code}</Code><Message>refused</Message></Error>".encode()
            headers = {"Content-Type": "application/xml"}
        self.send_response(self.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def refusing_aws() -> Iterator[type[_RefusingAws]]:
    handler = type("Handler", (_RefusingAws,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()


def _plan_error(project: Path, **env: str) -> str:
    """``alab layer plan``'s one error line under ``env`` (over the moto defaults)."""
    full = {**os.environ, **env}
    for name in [n for n, v in env.items() if v == "<unset>"]:
        del full[name]
    result = alab("layer", "plan", "--project", str(project), env=full)
    assert result.returncode == 6  # a failed AWS call (alab --help: exit codes)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "botocore" not in result.stderr
    return lines[0]


NO_AWS_CONFIG = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_PROFILE": "<unset>",
}


def test_no_credentials_names_the_fix(configured):
    line = _plan_error(
        configured,
        **NO_AWS_CONFIG,
        AWS_ACCESS_KEY_ID="<unset>",
        AWS_SECRET_ACCESS_KEY="<unset>",
        AWS_SESSION_TOKEN="<unset>",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONTAINER_CREDENTIALS_FULL_URI="<unset>",
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="<unset>",
    )
    assert "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in line


def test_no_region_names_the_fix(configured):
    line = _plan_error(configured, **NO_AWS_CONFIG, AWS_REGION="<unset>", AWS_DEFAULT_REGION="<unset>")
    assert "no AWS region set: set AWS_REGION (or AWS_DEFAULT_REGION), pass --region" in line


def test_expired_token_names_the_fix(configured, refusing_aws):
    refusing_aws.code, refusing_aws.status = "ExpiredToken", 400
    line = _plan_error(configured, AWS_ENDPOINT_URL=refusing_aws.endpoint_url)
    assert "the AWS credentials have expired: refresh them (`aws sso login`" in line


def test_access_denied_names_the_action_and_the_bucket(configured, refusing_aws, bucket):
    refusing_aws.code, refusing_aws.status = "AccessDenied", 403
    line = _plan_error(configured, AWS_ENDPOINT_URL=refusing_aws.endpoint_url)
    assert f"could not read the layer record; AWS denied s3:GetObject on bucket '{bucket}'" in line
    assert line.endswith("allow it for the AWS identity in use")


# ---------------------------------------------------------------------------- warnings and wording
def test_a_python_newer_than_the_known_runtimes_is_a_one_line_warning(configured):
    result = alab("layer", "plan", "--project", str(configured), "--python-version", "3.19")
    warning = [line for line in result.stderr.splitlines() if "3.19" in line]
    assert warning == [warning[0]] and warning[0].startswith(
        "warning: python_version 3.19 is newer than the Lambda runtimes known"
    ), result.stderr
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr and ".py:" not in result.stderr


def test_a_wrong_flag_value_is_named_as_the_flag(configured, credentials):
    result = alab("layer", "deploy", "--project", str(configured), "--keep-last", "0", env=_env(credentials))
    assert result.returncode == 3  # a wrong input
    assert result.stderr.startswith("error: --keep-last 0 must be a whole number of at least 1"), result.stderr
    assert "None" not in result.stderr
