"""The README's "Using with Pulumi" commands, run as written on a copy of the examples: the default app,
examples/sample_app_pypi, takes its dependencies from PyPI.

The commands come from the README itself. What differs: `make install` and `scripts/install-pulumi.sh` are
skipped (the virtualenv and the CLI exist), the `export AWS_…` line gives way to the stack's `aws:region`
and `alab:endpointUrl` (a moto server of this module's own), the bucket is the test's, `function` is false
(the pulumi-aws plugin cannot be fetched here), and `pulumi preview`/`pulumi up` run the example as an
Automation API inline program (the Python language host is not on the Go module proxy; see pulumi_cli.py):
the CLI, the engine and the provider plugin are the real ones.
"""

from __future__ import annotations

import re
import runpy
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi_cli import DIR_REPO, PulumiProject
from support.servers import MotoServer
from test_pulumi_cli import AWS_ENV, aws_clients, layer_versions

SECTION = "\n## Using with Pulumi\n"


def readme_commands() -> list[str]:
    text = (DIR_REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "the Pulumi section has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def readme_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def test_the_readme_commands_deploy_the_pypi_app(pulumi_bin: Path, tmp_path: Path, readme_moto: MotoServer) -> None:
    commands = readme_commands()
    assert not any("index" in c.lower() for c in commands), "the default app needs no private index"
    clone = tmp_path / "clone"
    for name in ("pulumi", "sample_app_pypi"):
        shutil.copytree(
            DIR_REPO / "examples" / name,
            clone / "examples" / name,
            ignore=shutil.ignore_patterns("build", "__pycache__"),
        )
    program = clone / "examples" / "pulumi" / "__main__.py"
    project = PulumiProject.create(
        pulumi_bin, tmp_path, program=lambda: runpy.run_path(str(program), run_name="__main__"), extra_env=AWS_ENV
    )
    s3, lam = aws_clients(readme_moto)
    bucket = f"alab-readme-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    results = {}
    for command in commands:
        words = command.split()
        if command in ("make install", "scripts/install-pulumi.sh") or command.startswith("export AWS_"):
            continue
        assert words[0] == "pulumi", f"a README command this test does not know: {command}"
        if words[1:3] == ["stack", "init"]:
            project.cli(*words[1:], "--non-interactive")
            stack_name = words[3]
            local = {"aws:region": "us-east-1", "alab:endpointUrl": readme_moto.endpoint_url, "function": "false"}
            for key, value in local.items():
                project.cli("config", "set", "--stack", stack_name, key, value)
        elif words[1:3] == ["config", "set"]:
            project.cli(*[bucket if w == "my-artifacts-bucket" else w for w in words[1:]], "--stack", stack_name)
        elif words[1] in ("preview", "up"):
            stack = project.stack(stack_name)
            results[words[1]] = getattr(stack, words[1])(diff="--diff" in words)
        else:
            raise AssertionError(f"a README command this test does not know: {command}")
    assert set(results) == {"preview", "up"}
    assert re.search(r'packages *: \{[^}]*requests *: "2\.32\.3"', results["preview"].stdout), results["preview"].stdout
    outputs = {k: v.value for k, v in results["up"].outputs.items()}
    assert layer_versions(lam, "sample-app-deps") == [1]
    assert outputs["layer_version"] == 1 and outputs["packages"]["requests"] == "2.32.3"
    assert (clone / "examples" / "sample_app_pypi" / "build").is_dir()
