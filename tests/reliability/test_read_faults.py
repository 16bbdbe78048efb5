"""``alab layer list``, ``sbom``, ``diff`` and ``push`` when AWS cannot be used: no credentials, a refusal, a
connection refused, a read timeout. Each ends with one ``error:`` line naming the fix and exit code 6 (a failed
AWS call), never botocore's class or text, nor a traceback.

The CLI runs in this process (``cli.main``) against the moto server, refusals and slow answers coming from the
fault proxy in front of it; no case needs a recorded version, as the first S3 call of each command fails. The
read timeout is the CLI's own clients with a 1 s read timeout instead of 60 s (``clients.Config``), so a table
of four commands stays quick.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.cli import main
from aws_lambda_artifact_builder.layer import clients
from botocore.config import Config
from fault_proxy import FaultProxy, Rule
from support.cli import configure

#: The argv of each reading command after ``layer`` (``{p}``: the project folder).
COMMANDS = {
    "list": ["list", "--project", "{p}"],
    "sbom": ["sbom", "1", "--project", "{p}"],
    "diff": ["diff", "1", "local", "--project", "{p}"],
    "push": ["push", "--project", "{p}"],
}
#: What the one line says, per fault: the fix a user acts on.
FIXES = {
    "no credentials": "no AWS credentials found: set AWS_PROFILE",
    "denied": "AWS denied s3:",
    "connection refused": "check the network and the AWS endpoint",
    "read timeout": "check the network and the AWS endpoint",
}
BOTOCORE_WORDS = ("botocore", "Traceback", "unexpected", "NoCredentialsError", "ClientError", "Unable to locate")


@pytest.fixture()
def project(
    project_copy: Callable[[str], Path], bucket: str, credentials: Any, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("ALAB_INDEX_PASSWORD", credentials.password)
    path = configure(project_copy("uv"), layer_name="fault-deps", s3dir=f"s3://{bucket}/apps/", credentials=credentials)
    return path.parent


@pytest.fixture()
def proxy(aws: Any) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(aws.endpoint_url)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """The CLI's clients are cached per process: each case makes its own (with its environment and config)."""
    clients._cached_clients.cache_clear()
    yield
    clients._cached_clients.cache_clear()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed on leaving: connections are refused


def _endpoint(fault: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> str:
    """Set the fault up; the endpoint the CLI is pointed at."""
    if fault == "no credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        return proxy.url
    if fault == "connection refused":
        return _closed_port()
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        if fault == "denied":
            proxy.add(Rule(method=method, path=".", fault="deny", times=1000))
        else:
            proxy.add(Rule(method=method, path=".", fault="delay", seconds=3.0, times=1000))
    if fault == "read timeout":
        short = Config(connect_timeout=2, read_timeout=1, retries={"mode": "standard", "max_attempts": 2})
        monkeypatch.setattr(clients, "Config", lambda **_kwargs: short)
    return proxy.url


@pytest.mark.parametrize("fault", list(FIXES))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_reading_command_or_push_without_usable_aws_is_one_line_and_exit_6(
    command: str,
    fault: str,
    project: Path,
    bucket: str,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = _endpoint(fault, proxy, monkeypatch)
    argv = ["layer", *(a.format(p=project) for a in COMMANDS[command]), "--endpoint-url", endpoint]
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 6, err  # a failed AWS call (alab --help: exit codes)
    assert len(errors) == 1 and FIXES[fault] in errors[0], err
    # Mapped where the call is made (clients.aws_call), not by the CLI's last net: the line names the object.
    assert f"s3://{bucket}/apps/layer/" in errors[0], err
    for word in BOTOCORE_WORDS:
        assert word not in err, err
    assert out == "", out
    if fault in ("denied", "read timeout"):
        assert proxy.seen and all(seen[2] for seen in proxy.seen), proxy.seen  # the fault answered every call
    if command == "push":  # it stopped at the store's first read: nothing was built
        assert not (project / "build" / "lambda" / "layer" / "layer.zip").exists()
