"""What a user sees from ``alab``, run as a process: the stage story, ``-v``, a terminal's bars,
AWS failures as one line naming the fix, and the warning for a Python newer than the known runtimes."""

from __future__ import annotations

import http.client
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
from support.layers import layer_versions
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
    assert line.startswith("error: no AWS region set: set AWS_REGION or AWS_DEFAULT_REGION, pass --region"), line


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_aws_region_alone_is_the_region(configured, credentials, command):
    # botocore reads AWS_DEFAULT_REGION but not AWS_REGION; the advice names AWS_REGION first, so it must work.
    env = {k: v for k, v in _env(credentials).items() if k not in ("AWS_DEFAULT_REGION", "AWS_PROFILE")}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_REGION="us-east-1")
    result = alab("layer", command, "--project", str(configured.parent), env=env)
    assert result.returncode == 0, result.stderr
    assert "region" not in result.stderr, result.stderr


def test_expired_token_names_the_fix(configured, refusing_aws):
    refusing_aws.code, refusing_aws.status = "ExpiredToken", 400
    line = _plan_error(configured, AWS_ENDPOINT_URL=refusing_aws.endpoint_url)
    assert "the AWS credentials have expired: refresh them (`aws sso login`" in line


def test_access_denied_names_the_action_and_the_bucket(configured, refusing_aws, bucket):
    refusing_aws.code, refusing_aws.status = "AccessDenied", 403
    line = _plan_error(configured, AWS_ENDPOINT_URL=refusing_aws.endpoint_url)
    assert f"could not read the layer record; AWS denied s3:GetObject on bucket '{bucket}'" in line
    assert line.endswith("allow it for the AWS identity in use")


class _DenyingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards every call to moto except the ones ``denied`` matches (method, path, body), which get
    AccessDenied as AWS words it for that protocol (Lambda's REST-JSON, STS's query XML)."""

    upstream = ""
    denied: tuple[str, str, bytes] = ("", "", b"")

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        method, path, needle = self.denied
        if self.command == method and re.search(path, self.path) and needle in body:
            if self.path.startswith("/20"):
                data = json.dumps({"Type": "User", "message": "denied"}).encode()
                headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}
            else:
                data = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>denied</Message>"
                data += b"</Error></ErrorResponse>"
                headers = {"Content-Type": "text/xml"}
            status = 403
        else:
            connection = http.client.HTTPConnection(*self.upstream.rsplit(":", 1), timeout=120)
            forwarded = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
            connection.request(self.command, self.path, body=body, headers=forwarded)
            response = connection.getresponse()
            data, status = response.read(), response.status
            headers = {k: v for k, v in response.getheaders() if k.lower() not in ("content-length", "connection")}
            connection.close()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def denying_aws(aws) -> Iterator[type[_DenyingProxy]]:
    upstream = aws.endpoint_url.removeprefix("http://").rstrip("/")
    handler = type("Handler", (_DenyingProxy,), {"upstream": upstream})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()


def _deploy_error(project: Path, credentials, *flags: str, endpoint_url: str) -> str:
    result = alab(
        "layer", "deploy", "--project", str(project), *flags, env=_env(credentials, AWS_ENDPOINT_URL=endpoint_url)
    )
    assert result.returncode == 6, result.stdout + result.stderr  # a failed AWS call (alab --help: exit codes)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_denied_publish_names_the_lambda_action(configured, credentials, denying_aws, lambda_client):
    denying_aws.denied = ("POST", r"^/2018-10-31/layers/story-deps/versions", b"")
    line = _deploy_error(configured.parent, credentials, endpoint_url=denying_aws.endpoint_url)
    assert "AWS denied lambda:PublishLayerVersion" in line and "allow it for the AWS identity in use" in line, line
    assert layer_versions(lambda_client, "story-deps") == []


def test_a_denied_assume_role_names_the_sts_action(configured, credentials, denying_aws):
    denying_aws.denied = ("POST", r"^/$", b"Action=AssumeRole")
    role = "arn:aws:iam::222222222222:role/deployer"
    line = _deploy_error(
        configured.parent,
        credentials,
        "--region",
        "us-east-1",
        "--role-arn",
        role,
        endpoint_url=denying_aws.endpoint_url,
    )
    assert "sts:AssumeRole" in line and "lambda:AssumeRole" not in line, line
    assert role in line, line


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


# ---------------------------------------------------------------------------- plan checks what deploy checks
BAD_DEPLOY_OPTIONS = [
    (("--keep-last", "0"), "keep_last = 0", "--keep-last 0 must be a whole number of at least 1"),
    (("--permission", "everyone"), 'permissions = ["everyone"]', "everyone"),
    (("--unzipped-size-limit", "0"), "unzipped_size_limit = 0", "--unzipped-size-limit 0 must be a size of at least"),
]


@pytest.mark.parametrize(("flags", "key", "said"), BAD_DEPLOY_OPTIONS, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("where", ["flag", "config"])
def test_plan_refuses_what_deploy_refuses(configured, credentials, flags, key, said, where):
    """A plan that says "no change" for a deploy that would fail misleads: both fail alike, as one line."""
    args: tuple[str, ...] = flags
    if where == "config":
        configured.write_text(
            configured.read_text().replace(
                "[tool.aws_lambda_artifact_builder]\n", f"[tool.aws_lambda_artifact_builder]\n{key}\n", 1
            )
        )
        args = ()
        said = said.replace("--keep-last", "keep_last").replace("--unzipped-size-limit", "unzipped_size_limit")
    seen = []
    for command in ("plan", "deploy"):
        result = alab("layer", command, "--project", str(configured.parent), *args, env=_env(credentials))
        assert result.returncode == 3, f"{command}: {result.stdout}{result.stderr}"  # a wrong input
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], f"{command}: {result.stderr}"
        seen.append(lines[0])
    assert seen[0] == seen[1]


# ---------------------------------------------------------------------------- sizes in human units
def test_size_limits_take_units_and_help_shows_mib(configured, credentials):
    help_text = alab("layer", "deploy", "--help").stdout
    assert "250 MiB" in " ".join(help_text.split()) and "262144000" not in help_text
    project = str(configured.parent)
    for value in ("250MB", "250MiB", "262144000", "1kB"):
        built = alab("layer", "build", "--project", project, "--unzipped-size-limit", value, env=_env(credentials))
        if value == "1kB":
            assert built.returncode == 1 and "1 KiB" in built.stderr, built.stderr
        else:
            assert built.returncode == 0, built.stderr
            assert "of the 250 MiB limit" in built.stdout, built.stdout
    configured.write_text(configured.read_text() + 'unzipped_size_limit = "100MiB"\n')
    built = alab("layer", "build", "--project", project, env=_env(credentials))
    assert built.returncode == 0 and "of the 100 MiB limit" in built.stdout, built.stderr
    wrong = alab("layer", "plan", "--project", project, "--unzipped-size-limit", "250 potatoes", env=_env(credentials))
    assert wrong.returncode == 1 and "write bytes (262144000) or a number and unit (250MB, 250MiB)" in wrong.stderr


# ---------------------------------------------------------------------------- bars that move
def _bulky_wheel(folder: Path, megabytes: int) -> Path:
    """A wheel carrying ``megabytes`` of random bytes (incompressible, so zipping and sending take a while)."""
    import base64
    import hashlib
    import zipfile

    files = {
        "bulky/__init__.py": b"",
        "bulky/data.bin": os.urandom(megabytes << 20),
        "bulky-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: bulky\nVersion: 1.0\n",
        "bulky-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    digest = {p: base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() for p, d in files.items()}
    record = [f"{p},sha256={digest[p]},{len(d)}" for p, d in files.items()] + ["bulky-1.0.dist-info/RECORD,,"]
    files["bulky-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / "bulky-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _amounts(plain: str, stage: str) -> set[str]:
    """Every ``done`` amount the terminal showed on the stage's bar before the stage was done."""
    found = re.findall(rf"{stage} +━[━╸╺ ]*\S* *(\d+(?:\.\d)? [kM]?B)/(\d+(?:\.\d)? [kM]?B)", plain)
    return {done for done, total in found if done != total}


@pytest.fixture()
def bulky_index(tmp_path: Path) -> Iterator[str]:
    """A static PEP 503 index on loopback serving one wheel of 48 MB of random bytes; its /simple/ URL."""
    import functools
    import hashlib

    root = tmp_path / "bulky-index"
    (root / "simple" / "bulky").mkdir(parents=True)
    wheel = _bulky_wheel(root, 48)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "simple" / "index.html").write_text('<a href="bulky/">bulky</a>\n')
    (root / "simple" / "bulky" / "index.html").write_text(
        f'<a href="../../{wheel.name}#sha256={digest}">{wheel.name}</a>\n'
    )
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *args: None})
    handler = functools.partial(quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()


def test_on_a_terminal_the_package_and_upload_bars_move(tmp_path, bucket, bulky_index, private_index, dir_tool_cache):
    app = tmp_path / "bulky-app"
    app.mkdir()
    (app / "pyproject.toml").write_text(
        '[project]\nname = "bulky-app"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = ["bulky==1.0"]\n\n'
        f'[[tool.uv.index]]\nname = "bulky"\nurl = "{bulky_index}"\ndefault = true\n\n'
        f'[tool.aws_lambda_artifact_builder]\nlayer_name = "bulky-deps"\ns3dir_lambda = "s3://{bucket}/bulky/"\n'
        f'index_url = "{bulky_index}"\nindex_username = "anyone"\n'  # a static index: any login does
    )
    lock("uv", app, private_index, dir_tool_cache)
    env = {**os.environ, "ALAB_INDEX_PASSWORD": "unused"}
    shown = _run_in_terminal([str(ALAB), "layer", "deploy", "--project", str(app)], env)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "Published: bulky-deps version 1" in plain, plain[-3000:]
    assert re.search(r"✓ install +\d+\.\ds  1 package for ", plain), plain[-3000:]
    for stage in ("package", "upload"):
        assert len(_amounts(plain, stage)) >= 2, f"{stage}: {_amounts(plain, stage)}\n{plain[-3000:]}"


# ---------------------------------------------------------------------------- --help
def _help(*command: str) -> str:
    result = alab(*command, "--help")
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())  # argparse wraps at the terminal's width


def test_help_shows_each_command_the_flags_it_uses_with_a_description():
    layer = _help("layer")
    for action in ("plan", "deploy", "build", "push", "list", "diff", "sbom", "clean"):
        assert re.search(rf"\b{action}\b", layer.split("positional arguments")[0]), f"{action} not described: {layer}"
    for command in ("deploy", "list", "sbom", "clean", "push", "diff", "build", "plan"):
        text = _help("layer", command)
        description = text.split("options:")[0].split("] ")[-1]
        assert len(description) > 40, f"{command} has no description: {text[:300]}"
    for command in ("list", "diff", "sbom"):
        text = _help("layer", command)
        assert "--layer-name" in text and "--s3dir" in text and "--region" in text
        for build_flag in ("--keep-last", "--index-url", "--drop-docs", "--build-in", "--unzipped-size-limit"):
            assert build_flag not in text, f"{command} lists {build_flag}"
    push = _help("layer", "push")
    assert "--index-url" in push and "--build-in" in push and "--keep-last" not in push
    deploy = _help("layer", "deploy")
    assert "--keep-last N keep only this many of the newest versions this tool published (default: keep every" in deploy
    assert "--credentials-file FILE JSON file with the private index's login" in deploy
    for title in ("the layer and its record:", "how the layer is built and packaged:", "a private package index:"):
        assert title in deploy
    assert "--layer-name LAYER_NAME Lambda layer name " in deploy  # a proper noun keeps its capital, no full stop
    assert "--tool {pip,poetry,uv} pip, poetry or uv" in deploy


def test_a_bucket_name_s3_refuses_says_why(configured, credentials):
    result = alab("layer", "plan", "--project", str(configured.parent), "--s3dir", "s3://b/x/", env=_env(credentials))
    assert result.returncode == 3  # a wrong input
    assert result.stderr.strip() == (
        "error: --s3dir 's3://b/x/': 'b' is not a valid bucket name (S3 bucket names are 3 to 63 lowercase "
        "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
    ), result.stderr
