"""The projects the benchmarks build: the test suite's fixture projects behind a private index on
loopback, and one realistic project with compiled dependencies locked from real PyPI.

Both come locked for pip (requirements.txt), poetry (poetry.lock) and uv (uv.lock). The realistic
one pins numpy, pydantic-core and orjson (compiled) plus pure-Python packages; poetry reaches PyPI
here only through the simple index (its JSON API is not served), so the poetry project names
PyPI's ``/simple/`` as its source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

DIR_REPO = Path(__file__).resolve().parent.parent
if str(DIR_REPO / "tests") not in sys.path:
    sys.path.insert(0, str(DIR_REPO / "tests"))

from aws_lambda_artifact_builder.api import Credentials  # noqa: E402
from aws_lambda_artifact_builder.layer.install_plan import KEEP_ENV  # noqa: E402
from support.projects import make_project  # noqa: E402
from support.servers import PrivateIndex  # noqa: E402
from support.wheels import build_all_fixture_wheels  # noqa: E402

TOOLS = ("pip", "poetry", "uv")
PINS = [
    "annotated-types==0.7.0",
    "certifi==2024.8.30",
    "charset-normalizer==3.4.0",
    "idna==3.10",
    "numpy==2.1.3",
    "orjson==3.10.18",
    "pydantic==2.9.2",
    "pydantic-core==2.23.4",
    "requests==2.32.3",
    "typing-extensions==4.12.2",
    "urllib3==2.2.3",
]
REALISTIC = "realistic project (PyPI)"
REALISTIC_NOTE = (
    f"The realistic project pins {len(PINS)} wheels from PyPI, numpy, pydantic-core and orjson compiled: "
    + ", ".join(PINS)
    + "."
)
FIXTURE = "fixture project (private index)"


def tool_path(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} is not installed (pip install {name})")
    return found


def clean_env(work: Path) -> dict[str, str]:
    """The caller's environment without installer settings or user config (transport settings kept)."""
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or not k.startswith(("PIP_", "UV_", "POETRY_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "POETRY_CONFIG_DIR": str(work / "poetry-config")})
    return env


def make_realistic_projects(work: Path, tools: tuple[str, ...] = TOOLS) -> dict[str, Path]:
    """One folder per tool under ``work``, locked from PyPI; returns each pyproject.toml."""
    deps = ",\n".join(f'    "{p}"' for p in PINS)
    pyproject = f'[project]\nname = "bench-app"\nversion = "0.1.0"\nrequires-python = ">=3.10,<4"\ndependencies = [\n{deps},\n]\n'
    poetry_source = (
        '\n[[tool.poetry.source]]\nname = "pypi-simple"\nurl = "https://pypi.org/simple/"\npriority = "primary"\n'
    )
    env = clean_env(work)
    projects = {}
    for tool in tools:
        folder = work / tool
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(pyproject + (poetry_source if tool == "poetry" else ""))
        projects[tool] = folder / "pyproject.toml"
        if tool == "pip":
            (folder / "requirements.txt").write_text("\n".join(PINS) + "\n")
        elif tool == "uv":
            subprocess.run([tool_path("uv"), "lock"], cwd=folder, env=env, check=True, capture_output=True)
        else:
            subprocess.run(
                [tool_path("poetry"), "lock", "--no-interaction"], cwd=folder, env=env, check=True, capture_output=True
            )
    return projects


@dataclasses.dataclass(frozen=True)
class FixtureProjects:
    index: PrivateIndex
    credentials: Credentials
    projects: dict[str, Path]


@contextlib.contextmanager
def fixture_projects(work: Path, tools: tuple[str, ...] = TOOLS) -> Iterator[FixtureProjects]:
    """The tests' fixture projects, locked against a private index (basic auth) that runs meanwhile."""
    build_all_fixture_wheels(DIR_REPO / "tests" / "fixtures" / "packages", work / "wheels")
    index = PrivateIndex.start(work / "wheels", work / "index", "bench", "bench-Pa55@w/rd%")
    try:
        credentials = Credentials(
            index_name="private", index_url=index.url, username=index.username, password=index.password
        )
        projects = {tool: make_project(tool, work / "fixture" / tool, index, work / "lock-cache") for tool in tools}
        yield FixtureProjects(index=index, credentials=credentials, projects=projects)
    finally:
        index.stop()
