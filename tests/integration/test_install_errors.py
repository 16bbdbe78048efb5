"""An install that fails because of the index says so in one line; the installer's output goes to the log.

Against the private index (pypiserver behind basic auth), for pip and uv: a wrong password, an index that
is down, a version the index does not have. None of them is "no wheel for the target": the message must
not send the user to a container build.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerError,
    build_layer_artifacts_using_pip_in_local,
    build_layer_artifacts_using_uv_in_local,
)
from support.servers import free_port

BUILDERS = {"pip": build_layer_artifacts_using_pip_in_local, "uv": build_layer_artifacts_using_uv_in_local}


def _replace_in(path: Path, old: str, new: str) -> None:
    for name in ("pyproject.toml", "uv.lock", "requirements.txt"):
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


def _missing_version(path: Path, credentials: Credentials) -> tuple[Credentials, str]:
    _replace_in(path, "alab-demo-core==1.0.0", "alab-demo-core==9.9.9")
    _replace_in(path, 'name = "alab-demo-core"\nversion = "1.0.0"', 'name = "alab-demo-core"\nversion = "9.9.9"')
    _replace_in(path, "alab_demo_core-1.0.0-", "alab_demo_core-9.9.9-")
    _replace_in(
        path, '{ name = "alab-demo-core", specifier = "==1.0.0" }', '{ name = "alab-demo-core", specifier = "==9.9.9" }'
    )
    return credentials, "alab-demo-core"


CAUSES = {"wrong password": _wrong_password, "index down": _index_down, "missing version": _missing_version}


@pytest.mark.parametrize("tool", ["pip", "uv"])
@pytest.mark.parametrize("cause", list(CAUSES))
def test_an_index_failure_is_one_line_naming_the_cause(tool, cause, project_copy, credentials):
    path = project_copy(tool)
    creds, named = CAUSES[cause](path, credentials)
    host = re.search(r"//([^/]+)/", creds.index_url).group(1)
    log: list[str] = []
    with pytest.raises(LayerError) as raised:
        BUILDERS[tool](path_pyproject_toml=path, credentials=creds, skip_prompt=True, printer=log.append)
    message = str(raised.value)
    assert "\n" not in message.strip() and len(message) < 400, message
    assert named in message and (host in message or cause == "missing version"), message
    assert "container" not in message, message
    assert credentials.password not in message and credentials.password not in "\n".join(log)
    assert len("\n".join(log)) > len(message), "the installer's own output belongs in the verbose log"
