"""One unique index password, used through every path, must appear nowhere it could leak.

This module starts its own private index whose password is a fresh canary, so a hit anywhere on the
machine can only come from these tests. Each path (local builds with pip, poetry and uv; container
builds with each; the CLI; the Pulumi engine harness; Terraform) deploys and also fails once, and then
everything it exposed is scanned for the password raw, URL-encoded and inside a basic-auth header:
every spawned command line (this process's children and every /proc entry seen while it ran),
stdout/stderr and progress, exception messages, the local zip (members decompressed), every S3 object
and its metadata, every Lambda layer version, Pulumi responses, state and provider logs, Terraform's
plans, state, outputs and trace log, the project folder, and files written meanwhile in the temp
folder and the home folder (caches included).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import platform
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_artifact_builder.api import Credentials, LayerError, LayerPathLayout, deploy_layer
from aws_lambda_artifact_builder.layer.build_container import ContainerEngine, detect_container_engine
from pulumi.runtime.proto import provider_pb2
from pulumi_engine_harness import CheckFailed, ProviderError, Registration, Stack, from_struct, to_struct
from reliability_helpers import Canary, Exposure, alab, need
from support.processes import watch_processes
from support.projects import make_project, set_pin
from support.servers import PrivateIndex
from terraform_harness import DIR_LAYER_ONLY, working_dir

TOOLS = ("pip", "poetry", "uv")
CONTAINER_PYTHON = os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11")
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


@pytest.fixture(scope="module")
def canary_index(private_index: PrivateIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    """The fixture wheels behind a password used nowhere else: special characters, unique per run."""
    password = f"Rel-c4nary@{uuid.uuid4().hex[:10]}/p%w"
    index = PrivateIndex.start(
        private_index.dir_packages, tmp_path_factory.mktemp("canary-index"), "canary-user", password
    )
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="module")
def canary(canary_index: PrivateIndex) -> Canary:
    return Canary(username=canary_index.username, password=canary_index.password)


@pytest.fixture(scope="module")
def canary_credentials(canary_index: PrivateIndex) -> Credentials:
    return Credentials(
        index_name="private", index_url=canary_index.url, username=canary_index.username, password=canary_index.password
    )


@pytest.fixture(scope="module")
def canary_templates(canary_index: PrivateIndex, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture projects locked against the canary index (the lock step is test set-up, not scanned)."""
    root = tmp_path_factory.mktemp("canary-projects")
    return {tool: make_project(tool, root / tool, canary_index, root / "lock-cache") for tool in TOOLS}


@pytest.fixture()
def canary_project(canary_templates: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def copy(tool: str, name: str | None = None) -> Path:
        dest = tmp_path / (name or f"project-{tool}")
        shutil.copytree(canary_templates[tool].parent, dest, ignore=shutil.ignore_patterns("build", ".venv"))
        return dest / "pyproject.toml"

    return copy


@contextmanager
def exposed(
    canary: Canary,
    monkeypatch: pytest.MonkeyPatch,
    *,
    bucket: str,
    s3_client: Any,
    lambda_client: Any,
    projects: list[Path],
    extra_roots: tuple[Path, ...] = (),
) -> Iterator[Exposure]:
    """Watch every process while the body runs, then scan everything the run could have left the password in."""
    exposure = Exposure(canary)
    started = time.time() - 1  # file times have coarse resolution on some filesystems
    with watch_processes(monkeypatch) as watch:
        yield exposure
    assert watch.spawned and watch.polls > 0
    exposure.cmdlines = sorted(watch.cmdlines)
    for record in watch.spawned:
        exposure.scan(f"argv {record.argv[:3]}", "\0".join(record.argv))
    for cmdline in watch.cmdlines:
        exposure.scan(f"/proc cmdline {cmdline[:80]!r}", cmdline)
    exposure.scan_bucket(s3_client, bucket)
    exposure.scan_lambda(lambda_client)
    for path in projects:
        exposure.scan_files(path.parent)  # everything in the project, the build folder and layer.zip included
    for root in (Path(tempfile.gettempdir()), Path.home(), *extra_roots):
        exposure.scan_files(root, since=started)
    exposure.assert_clean()


def failing_pip_project(canary_project: Callable[..., Path]) -> Path:
    """A pip project pinning a version the index does not have: the installer fails talking to the index."""
    path = canary_project("pip", "project-missing-version")
    set_pin(path, "alab-demo-core", "9.9.9")
    return path


def engines_with_image() -> tuple[ContainerEngine, str]:
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    need(bool(image), "ALAB_CONTAINER_TEST_IMAGE names no build image (scripts/setup-container-engine.sh makes one)")
    problems = []
    for runtime in ("docker", "podman"):
        try:
            return detect_container_engine(runtime), str(image)
        except LayerError as e:
            problems.append(str(e))
    need(False, f"no container engine answers: {problems}")
    raise AssertionError("unreachable")


def test_the_scanner_finds_the_password_in_every_form_it_looks_for(canary, tmp_path):
    """The net must catch: raw text, a URL with the login, a basic-auth header, a compressed zip member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("python/leak.py", f"PASSWORD = {canary.password!r}\n" * 50)
    planted = {
        "raw.txt": canary.password.encode(),
        "url.log": f"https://{canary.username}:{quote(canary.password, safe='')}@host/simple/".encode(),
        "header.txt": b"Authorization: Basic " + base64.b64encode(f"{canary.username}:{canary.password}".encode()),
        "layer.zip": buf.getvalue(),
    }
    assert canary.password.encode() not in planted["layer.zip"]  # compressed: only the unzipping scan can see it
    for name, data in planted.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "clean.txt").write_text("nothing to see")
    exposure = Exposure(canary)
    exposure.scan_files(tmp_path)
    assert sorted(Path(leak.split("!")[0]).name for leak in exposure.leaks) == sorted(planted)
    with pytest.raises(AssertionError, match="leaked"):
        exposure.assert_clean()


# ---------------------------------------------------------------------------- API: local and container builds
def test_local_deploys_with_every_tool_leak_nothing(
    canary,
    canary_credentials,
    canary_project,
    monkeypatch,
    bucket,
    s3_client,
    lambda_client,
):
    projects = [canary_project(tool) for tool in TOOLS]
    failing = failing_pip_project(canary_project)
    with exposed(
        canary,
        monkeypatch,
        bucket=bucket,
        s3_client=s3_client,
        lambda_client=lambda_client,
        projects=[*projects, failing],
    ) as exposure:
        for tool, path in zip(TOOLS, projects, strict=True):
            lines: list[str] = []
            deployment = deploy_layer(
                layer_name=f"canary-{tool}",
                path_pyproject_toml=path,
                s3dir_lambda=f"s3://{bucket}/local/{tool}/",
                tool=tool,
                credentials=canary_credentials,
                printer=lines.append,
            )
            assert deployment.published
            assert LayerPathLayout(path_pyproject_toml=path).path_build_lambda_layer_zip.is_file()
            exposure.scan(f"{tool} progress", "\n".join(lines))
            exposure.scan(f"{tool} result", repr(deployment.to_dict()))
        with pytest.raises(LayerError) as raised:
            deploy_layer(
                layer_name="canary-fails",
                path_pyproject_toml=failing,
                s3dir_lambda=f"s3://{bucket}/local/fails/",
                tool="pip",
                credentials=canary_credentials,
                printer=lambda line: exposure.scan("failing progress", line),
            )
        assert "alab-demo-core" in str(raised.value)
        exposure.scan("exception", f"{raised.value!s}\n{raised.value!r}")
    assert any(" -m pip install " in c for c in exposure.cmdlines), "the watch saw pip run"
    assert any(" pip install " in c and "/uv " in c for c in exposure.cmdlines), "the watch saw uv run"


def test_container_deploys_with_every_tool_leak_nothing(
    canary,
    canary_credentials,
    canary_project,
    monkeypatch,
    bucket,
    s3_client,
    lambda_client,
):
    engine, image = engines_with_image()
    projects = [canary_project(tool) for tool in TOOLS]
    failing = failing_pip_project(canary_project)
    common = dict(
        build_in="container",
        image=image,
        container_runtime=engine.runtime,
        python_version=CONTAINER_PYTHON,
        architecture=HOST_ARCH,
        credentials=canary_credentials,
    )
    with exposed(
        canary,
        monkeypatch,
        bucket=bucket,
        s3_client=s3_client,
        lambda_client=lambda_client,
        projects=[*projects, failing],
    ) as exposure:
        for tool, path in zip(TOOLS, projects, strict=True):
            lines: list[str] = []
            deployment = deploy_layer(
                layer_name=f"canary-c-{tool}",
                path_pyproject_toml=path,
                s3dir_lambda=f"s3://{bucket}/container/{tool}/",
                tool=tool,
                printer=lines.append,
                **common,
            )
            assert deployment.published
            exposure.scan(f"container {tool} progress", "\n".join(lines))
        with pytest.raises(LayerError) as raised:
            deploy_layer(
                layer_name="canary-c-fails",
                path_pyproject_toml=failing,
                s3dir_lambda=f"s3://{bucket}/container/fails/",
                tool="pip",
                printer=lambda line: exposure.scan("failing container progress", line),
                **common,
            )
        assert "alab-demo-core" in str(raised.value)
        exposure.scan("container exception", f"{raised.value!s}\n{raised.value!r}")
    assert any(c.startswith(f"{engine.executable} run ") for c in exposure.cmdlines), "the watch saw the engine run"
    assert any("/var/task/" in c for c in exposure.cmdlines), "the watch saw the processes inside the container"


# ---------------------------------------------------------------------------- CLI
def test_cli_plan_deploy_and_failure_leak_nothing(
    canary,
    canary_credentials,
    canary_project,
    monkeypatch,
    bucket,
    s3_client,
    lambda_client,
):
    path = canary_project("uv")
    failing = failing_pip_project(canary_project)
    env = dict(os.environ, ALAB_INDEX_PASSWORD=canary.password)
    login = ("--index-url", canary_credentials.index_url, "--index-username", canary_credentials.username)
    with exposed(
        canary, monkeypatch, bucket=bucket, s3_client=s3_client, lambda_client=lambda_client, projects=[path, failing]
    ) as exposure:
        runs = {
            "plan": alab(
                "layer",
                "plan",
                "--project",
                str(path),
                "--layer-name",
                "canary-cli",
                "--s3dir",
                f"s3://{bucket}/cli/",
                env=env,
            ),
            "deploy": alab(
                "layer",
                "deploy",
                "--project",
                str(path),
                "--layer-name",
                "canary-cli",
                "--s3dir",
                f"s3://{bucket}/cli/",
                *login,
                env=env,
            ),
            "deploy --json": alab(
                "layer",
                "deploy",
                "--project",
                str(path),
                "--layer-name",
                "canary-cli",
                "--s3dir",
                f"s3://{bucket}/cli/",
                *login,
                "--json",
                env=env,
            ),
            "failing deploy": alab(
                "layer",
                "deploy",
                "--project",
                str(failing),
                "--layer-name",
                "canary-cli-fails",
                "--s3dir",
                f"s3://{bucket}/cli-fails/",
                "--tool",
                "pip",
                *login,
                env=env,
            ),
            "failing deploy --debug": alab(
                "--debug",
                "layer",
                "deploy",
                "--project",
                str(failing),
                "--layer-name",
                "canary-cli-fails",
                "--s3dir",
                f"s3://{bucket}/cli-fails/",
                "--tool",
                "pip",
                *login,
                env=env,
            ),
        }
        # The failing deploy ends with 5, a failed build (alab --help: exit codes); with --debug, Python's own 1
        # and the traceback.
        assert [r.returncode for r in runs.values()] == [0, 0, 0, 5, 1], {k: r.stderr for k, r in runs.items()}
        assert "Published: canary-cli version 1" in runs["deploy"].stdout
        assert "Traceback" in runs["failing deploy --debug"].stderr  # the traceback too must be clean
        for name, result in runs.items():
            exposure.scan(f"alab {name} stdout", result.stdout)
            exposure.scan(f"alab {name} stderr", result.stderr)
    assert any(" layer deploy " in c for c in exposure.cmdlines), "the watch saw the CLI run"


# ---------------------------------------------------------------------------- Pulumi
def test_pulumi_lifecycle_and_failure_leak_nothing(
    canary,
    canary_credentials,
    canary_project,
    monkeypatch,
    bucket,
    s3_client,
    lambda_client,
    open_stack: Callable[[], Stack],
    declare_layer: Callable[..., Registration],
):
    path = canary_project("poetry")
    failing = failing_pip_project(canary_project)
    args = dict(
        layer_name="canary-pulumi",
        path_pyproject_toml=str(path),
        s3dir_lambda=f"s3://{bucket}/pulumi/",
        tool="poetry",
        credentials=canary_credentials,
    )
    with exposed(
        canary, monkeypatch, bucket=bucket, s3_client=s3_client, lambda_client=lambda_client, projects=[path, failing]
    ) as exposure:
        stack = open_stack()
        checkpoints = []
        goal = declare_layer(**args)
        exposure.scan("registered inputs (pickled provider)", goal.pickled_provider)
        assert stack.preview(goal).op == "create"
        stack.up(goal)
        checkpoints.append(stack.state.checkpoint_json())
        assert stack.preview(declare_layer(**args)).op == "same"
        stack.up(declare_layer(keep_last=3, **args))
        checkpoints.append(stack.state.checkpoint_json())
        stack.refresh()
        checkpoints.append(stack.state.checkpoint_json())
        stack.destroy()
        broken = open_stack()
        with pytest.raises(ProviderError) as raised:
            broken.up(
                declare_layer(
                    **dict(
                        args,
                        layer_name="canary-pulumi-fails",
                        path_pyproject_toml=str(failing),
                        tool="pip",
                        s3dir_lambda=f"s3://{bucket}/pulumi-fails/",
                    )
                )
            )
        assert raised.value.method == "Create" and "alab-demo-core" in raised.value.details
        with pytest.raises(CheckFailed) as check_failed:
            broken.preview(declare_layer(**dict(args, python_version="2.7")))

        exposure.scan("Create error", f"{raised.value}\n{raised.value.details}")
        exposure.scan("Check failures", repr(check_failed.value.failures))
        methods = set()
        for server in (stack.server, broken.server):
            for exchange in server.transcript:
                methods.add(exchange.method)
                payload = exchange.response_bytes()
                if exchange.method == "Check" and exchange.response is not None:
                    # Check hands the inputs back to the engine, which marks `credentials` secret again
                    # (annotateSecrets): only there may the password be; everything else must be clean.
                    inputs = from_struct(exchange.response.inputs)
                    assert inputs.pop("credentials")["password"] == canary.password
                    payload = provider_pb2.CheckResponse(
                        inputs=to_struct(inputs), failures=exchange.response.failures
                    ).SerializeToString()
                exposure.scan(f"Pulumi {exchange.method} response", payload)
            exposure.scan("Pulumi provider log", server.log_text())
        assert methods == {"Configure", "Check", "Diff", "Create", "Update", "Read", "Delete"}
        for i, checkpoint in enumerate(checkpoints):
            exposure.scan(f"Pulumi state #{i}", checkpoint)
    assert any(" -m pulumi.dynamic " in c for c in exposure.cmdlines), "the watch saw the provider process"


# ---------------------------------------------------------------------------- Terraform
def test_terraform_lifecycle_and_failure_leak_nothing(
    canary,
    canary_credentials,
    canary_project,
    monkeypatch,
    bucket,
    s3_client,
    lambda_client,
    aws,
    terraform_cli_config: Path,
    tmp_path: Path,
):
    path = canary_project("uv")
    failing = failing_pip_project(canary_project)
    terraform = shutil.which("terraform")
    assert terraform is not None
    variables = {
        "bucket": bucket,
        "aws_endpoint_url": aws.endpoint_url,
        "index_name": canary_credentials.index_name,
        "index_url": canary_credentials.index_url,
        "index_username": canary_credentials.username,
        "index_password": canary.password,
    }
    ok = working_dir(DIR_LAYER_ONLY, terraform, terraform_cli_config, tmp_path / "tf-ok")
    ok.env.update(
        {
            f"TF_VAR_{k}": v
            for k, v in dict(variables, app_name="canary-tf", tool="uv", path_pyproject_toml=str(path)).items()
        }
    )
    bad = working_dir(DIR_LAYER_ONLY, terraform, terraform_cli_config, tmp_path / "tf-fails")
    bad.env.update(
        {
            f"TF_VAR_{k}": v
            for k, v in dict(
                variables, app_name="canary-tf-fails", tool="pip", path_pyproject_toml=str(failing)
            ).items()
        }
    )
    with exposed(
        canary, monkeypatch, bucket=bucket, s3_client=s3_client, lambda_client=lambda_client, projects=[path, failing]
    ) as exposure:
        ok.run("init", "-input=false")
        assert ok.plan("create.tfplan").returncode == 2
        ok.apply("create.tfplan")
        assert ok.outputs()["layer_version"] == 1
        assert ok.plan("noop.tfplan").returncode == 0
        ok.run("show", "-json", "create.tfplan")
        ok.run("destroy", "-auto-approve", "-input=false")
        bad.run("init", "-input=false")
        failed = bad.run("apply", "-auto-approve", "-input=false", ok_codes=(1,))
        assert "alab-demo-core" in failed.stderr
        for tf in (ok, bad):
            for name, content in tf.artifacts().items():
                exposure.scan(f"terraform {tf.workdir.name}/{name}", content)
    assert any("terraform-provider-alab" in c for c in exposure.cmdlines), "the watch saw our Terraform provider run"


# ---------------------------------------------------------------------------- a login inside requirements.txt
@dataclasses.dataclass(frozen=True)
class SplitCanary(Canary):
    """Also the password's tail after its last ``@``: a login split at the first ``@`` leaks that part."""

    def forms(self) -> list[bytes]:
        tail = self.password.rsplit("@", 1)[-1]
        return [*super().forms(), tail.encode(), quote(tail, safe="").encode()]


#: How a user writes the index login into requirements.txt: inline with a raw ``@`` in the password,
#: or as variables pip expands from the environment.
LOGIN_FORMS = ("raw @ in the password", "ALAB_ variables")


def login_in_requirements(path: Path, index: PrivateIndex, form: str) -> dict[str, str]:
    """Write the login into the project's requirements.txt; the environment the build needs for it."""
    env = dict(os.environ)
    if form == LOGIN_FORMS[0]:
        secret = quote(index.password, safe="@")
        assert "@" in secret
        url = index.url.replace("://", f"://{index.username}:{secret}@")
    else:
        env.update(ALAB_CANARY_INDEX_USER=index.username, ALAB_CANARY_INDEX_TOKEN=quote(index.password, safe=""))
        url = index.url.replace("://", "://${ALAB_CANARY_INDEX_USER}:${ALAB_CANARY_INDEX_TOKEN}@")
    req = path.parent / "requirements.txt"
    req.write_text(f"--index-url {url}\n" + req.read_text())
    return env


def forget_login(path: Path) -> None:
    """The user's own requirements.txt holds the login they wrote: drop it before the folder is scanned
    (a copy of it anywhere else, the build folder included, is a leak)."""
    req = path.parent / "requirements.txt"
    req.write_text("".join(line for line in req.read_text().splitlines(True) if not line.startswith("--index-url")))


@pytest.mark.parametrize("form", LOGIN_FORMS)
def test_a_login_inside_requirements_leaks_nowhere_locally_or_through_the_cli(
    form, canary_index, canary_project, monkeypatch, bucket, s3_client, lambda_client
):
    canary = SplitCanary(username=canary_index.username, password=canary_index.password)
    path, cli_path = canary_project("pip", "project-api"), canary_project("pip", "project-cli")
    env = login_in_requirements(path, canary_index, form)
    login_in_requirements(cli_path, canary_index, form)
    for name in ("ALAB_CANARY_INDEX_USER", "ALAB_CANARY_INDEX_TOKEN"):
        if name in env:
            monkeypatch.setenv(name, env[name])
    with exposed(
        canary,
        monkeypatch,
        bucket=bucket,
        s3_client=s3_client,
        lambda_client=lambda_client,
        projects=[path, cli_path],
    ) as exposure:
        lines: list[str] = []
        deployment = deploy_layer(
            layer_name="canary-req-api",
            path_pyproject_toml=path,
            s3dir_lambda=f"s3://{bucket}/req-login/api/",
            tool="pip",
            printer=lines.append,
        )
        assert deployment.published
        exposure.scan("requirements login progress", "\n".join(lines))
        exposure.scan("requirements login result", repr(deployment.to_dict()))
        cli = ("layer", "deploy", "--project", str(cli_path), "--layer-name", "canary-req-cli", "--tool", "pip")
        result = alab("-v", *cli, "--s3dir", f"s3://{bucket}/req-login/cli/", env=env)
        assert result.returncode == 0 and "Published: canary-req-cli version 1" in result.stdout, result.stderr
        exposure.scan("alab -v stdout", result.stdout)
        exposure.scan("alab -v stderr", result.stderr)
        forget_login(path)
        forget_login(cli_path)
    assert any(" -m pip install " in c for c in exposure.cmdlines), "the watch saw pip run"


@pytest.mark.parametrize("form", LOGIN_FORMS)
def test_a_login_inside_requirements_leaks_nowhere_in_a_container_build(
    form, canary_index, canary_project, monkeypatch, bucket, s3_client, lambda_client
):
    engine, image = engines_with_image()
    canary = SplitCanary(username=canary_index.username, password=canary_index.password)
    path = canary_project("pip", "project-container")
    env = login_in_requirements(path, canary_index, form)
    for name in ("ALAB_CANARY_INDEX_USER", "ALAB_CANARY_INDEX_TOKEN"):
        if name in env:
            monkeypatch.setenv(name, env[name])
    with exposed(
        canary, monkeypatch, bucket=bucket, s3_client=s3_client, lambda_client=lambda_client, projects=[path]
    ) as exposure:
        lines: list[str] = []
        deployment = deploy_layer(
            layer_name="canary-req-container",
            path_pyproject_toml=path,
            s3dir_lambda=f"s3://{bucket}/req-login/container/",
            tool="pip",
            build_in="container",
            image=image,
            container_runtime=engine.runtime,
            python_version=CONTAINER_PYTHON,
            architecture=HOST_ARCH,
            verbose=True,
            printer=lines.append,
        )
        assert deployment.published
        exposure.scan("container requirements login progress", "\n".join(lines))
        forget_login(path)
    assert any(c.startswith(f"{engine.executable} run ") for c in exposure.cmdlines), "the watch saw the engine run"
