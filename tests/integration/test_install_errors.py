"""An install that fails because of the index says so in one line; the installer's output goes to the log.

Against the private index (pypiserver behind basic auth), for pip, poetry and uv, on the host and in a build
container: a wrong password, an index that answers 403, an index that is down, a version the index does not
have. None of them is "no wheel for the target": the message must not send the user to a container build.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerError,
    build_layer_artifacts_in_container,
    build_layer_artifacts_using_pip_in_local,
    build_layer_artifacts_using_poetry_in_local,
    build_layer_artifacts_using_uv_in_local,
)
from support.ci import IN_CI
from support.servers import free_port

BUILDERS = {
    "pip": build_layer_artifacts_using_pip_in_local,
    "poetry": build_layer_artifacts_using_poetry_in_local,
    "uv": build_layer_artifacts_using_uv_in_local,
}


def _replace_in(path: Path, old: str, new: str) -> None:
    """Edit the lock (and pyproject.toml, except poetry's: poetry.lock records its hash, so the lock
    alone carries the index and the versions)."""
    poetry = (path.parent / "poetry.lock").exists()
    for name in ((), ("pyproject.toml",))[not poetry] + ("uv.lock", "requirements.txt", "poetry.lock"):
        file = path.parent / name
        if file.exists():
            file.write_text(file.read_text().replace(old, new))


def _wrong_password(path: Path, credentials: Credentials) -> tuple[Credentials, str]:
    return dataclasses.replace(credentials, password="not-the-password"), "credentials"


def _index_down(path: Path, credentials: Credentials) -> tuple[Credentials, str]:
    host = re.search(r"//([^/]+)/", credentials.index_url).group(1)
    dead = f"127.0.0.1:{free_port()}"
    _replace_in(path, host, dead)
    return dataclasses.replace(credentials, index_url=credentials.index_url.replace(host, dead)), "down"


class _Forbidding(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(403, "Forbidden")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def forbidding_index() -> Iterator[str]:
    """An index that answers every request with 403 (a login it knows, without access)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _forbidden(path: Path, credentials: Credentials, forbidding: str) -> tuple[Credentials, str]:
    host = re.search(r"//([^/]+)/", credentials.index_url).group(1)
    _replace_in(path, host, forbidding)
    return dataclasses.replace(credentials, index_url=credentials.index_url.replace(host, forbidding)), "403"


def _missing_version(path: Path, credentials: Credentials) -> tuple[Credentials, str]:
    _replace_in(path, "alab-demo-core==1.0.0", "alab-demo-core==9.9.9")
    _replace_in(path, 'name = "alab-demo-core"\nversion = "1.0.0"', 'name = "alab-demo-core"\nversion = "9.9.9"')
    _replace_in(path, "alab_demo_core-1.0.0-", "alab_demo_core-9.9.9-")
    _replace_in(
        path,
        '{ name = "alab-demo-core", specifier = "==1.0.0" }',
        '{ name = "alab-demo-core", specifier = "==9.9.9" }',
    )
    return credentials, "alab-demo-core"


CAUSES = {
    "wrong password": _wrong_password,
    "index down": _index_down,
    "missing version": _missing_version,
    "forbidden": _forbidden,
}


def _break(cause: str, path: Path, credentials: Credentials, forbidding: str) -> tuple[Credentials, str]:
    if cause == "forbidden":
        return _forbidden(path, credentials, forbidding)
    return CAUSES[cause](path, credentials)  # type: ignore[operator]


@pytest.mark.parametrize("tool", ["pip", "poetry", "uv"])
@pytest.mark.parametrize("cause", list(CAUSES))
def test_an_index_failure_is_one_line_naming_the_cause(tool, cause, project_copy, credentials, forbidding_index):
    path = project_copy(tool)
    creds, named = _break(cause, path, credentials, forbidding_index)
    host = re.search(r"//([^/]+)/", creds.index_url).group(1)
    log: list[str] = []
    with pytest.raises(LayerError) as raised:
        BUILDERS[tool](path_pyproject_toml=path, credentials=creds, skip_prompt=True, printer=log.append)
    _check_one_line(raised.value, cause, named, host, credentials, log)


def _check_one_line(
    error: Exception, cause: str, named: str, host: str, credentials: Credentials, log: list[str]
) -> None:
    message = str(error)
    assert "\n" not in message.strip() and len(message) < 400, message
    assert named in message and (host in message or cause == "missing version"), message
    assert "container" not in message, message
    assert credentials.password not in message and credentials.password not in "\n".join(log)
    assert len("\n".join(log)) > len(message), "the installer's own output belongs in the verbose log"


@pytest.mark.parametrize("tool", ["pip", "uv"])
@pytest.mark.parametrize("cause", ["wrong password", "missing version"])
def test_an_index_failure_in_a_build_container_is_one_line_naming_the_cause(tool, cause, project_copy, credentials):
    """As on the host: the container's output goes to the verbose log, the error names the cause."""
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not image:
        reason = "ALAB_CONTAINER_TEST_IMAGE names no image (scripts/setup-container-engine.sh prints it)"
        pytest.fail(f"CI=true but {reason}") if IN_CI else pytest.skip(reason)
    path = project_copy(tool)
    creds, named = CAUSES[cause](path, credentials)  # type: ignore[operator]
    host = re.search(r"//([^/]+)/", creds.index_url).group(1)
    log: list[str] = []
    with pytest.raises(LayerError) as raised:
        build_layer_artifacts_in_container(
            tool=tool,
            path_pyproject_toml=path,
            python_version=os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11"),
            credentials=creds,
            image=image,
            printer=log.append,
        )
    _check_one_line(raised.value, cause, named, host, credentials, log)
