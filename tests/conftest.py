"""Session fixtures shared by every test: real servers on loopback and locked fixture projects."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_artifact_builder.api import Credentials
from support.projects import make_project
from support.servers import MotoServer, PrivateIndex
from support.wheels import build_all_fixture_wheels

DIR_TESTS = Path(__file__).resolve().parent

#: A password with characters that need URL-encoding, to prove every tool gets it right.
INDEX_PASSWORD = "c4nary-Pa55@w/rd%" + uuid.uuid4().hex[:8]
INDEX_USERNAME = "alab-user"


@pytest.fixture(scope="session")
def dir_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def moto_server(dir_session: Path) -> Iterator[MotoServer]:
    server = MotoServer.start(dir_session / "moto.log")
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_REGION", "us-east-1")
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.delenv("AWS_PROFILE", raising=False)
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    try:
        yield server
    finally:
        mp.undo()
        server.stop()


@pytest.fixture()
def aws(moto_server: MotoServer) -> MotoServer:
    """An empty moto account for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture()
def s3_client(aws: MotoServer):
    return boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="us-east-1")


@pytest.fixture()
def lambda_client(aws: MotoServer):
    return boto3.client("lambda", endpoint_url=aws.endpoint_url, region_name="us-east-1")


@pytest.fixture()
def bucket(s3_client) -> str:
    name = f"alab-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def private_index(dir_session: Path) -> Iterator[PrivateIndex]:
    dir_packages = dir_session / "index-packages"
    build_all_fixture_wheels(DIR_TESTS / "fixtures" / "packages", dir_packages)
    index = PrivateIndex.start(dir_packages, dir_session / "index", INDEX_USERNAME, INDEX_PASSWORD)
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="session")
def credentials(private_index: PrivateIndex) -> Credentials:
    return Credentials(
        index_name="private",
        index_url=private_index.url,
        username=private_index.username,
        password=private_index.password,
    )


@pytest.fixture(scope="session")
def dir_tool_cache(dir_session: Path) -> Path:
    return dir_session / "tool-cache"


@pytest.fixture(scope="session")
def locked_projects(dir_session: Path, private_index: PrivateIndex, dir_tool_cache: Path) -> dict[str, Path]:
    """One locked fixture project per tool, shared read-only; copy it before changing it."""
    return {
        tool: make_project(tool, dir_session / "projects" / tool, private_index, dir_tool_cache)
        for tool in ("pip", "poetry", "uv")
    }


@pytest.fixture()
def project_copy(tmp_path: Path, locked_projects: dict[str, Path]):
    """Copy a locked fixture project into this test's folder: ``project_copy("uv")`` → pyproject.toml."""

    def copy(tool: str) -> Path:
        dest = tmp_path / f"project-{tool}"
        shutil.copytree(locked_projects[tool].parent, dest, ignore=shutil.ignore_patterns("build", ".venv"))
        return dest / "pyproject.toml"

    return copy
