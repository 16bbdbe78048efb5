"""The README's "Use it in your project" quick start, run command by command as a new user would.

The commands are read from the README itself, so the README cannot drift from what works. Only the
environment differs: the package is installed from this checkout into a fresh virtualenv (it is the
same install line with the checkout's path for its documented placeholder), the bucket is the test's, AWS is the moto
server, and the fixture project's dependencies come from the tests' private index (whose login is
appended to the README's table, as a user of a private index would).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.layers import layer_versions

DIR_REPO = Path(__file__).resolve().parents[2]
#: The README's placeholder for the user's checkout (the name on PyPI is another project's).
CHECKOUT = "path/to/aws-lambda-artifact-builder"


def quickstart_blocks() -> list[tuple[str, str]]:
    """The fenced blocks (language, body) of the README's quick start section, in order."""
    text = (DIR_REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Use it in your project\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def quickstart_commands() -> list[str]:
    commands = []
    for language, body in quickstart_blocks():
        if language == "bash":
            commands += [line.split("  #")[0].strip() for line in body.splitlines() if line.strip()]
    return commands


def test_the_readme_names_install_config_plan_deploy_and_gitignore():
    commands = quickstart_commands()
    assert commands[0] == f"pip install {CHECKOUT}"
    section = (DIR_REPO / "README.md").read_text(encoding="utf-8").split("\n## Use it in your project\n", 1)[1]
    assert "Not on PyPI under this name yet" in section.split("```", 1)[0]
    assert "alab layer plan" in commands and "alab layer deploy" in commands
    assert any(".gitignore" in c for c in commands)
    assert [lang for lang, _ in quickstart_blocks()].count("toml") == 1


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the package installed by the README's install line (the checkout for its placeholder)."""
    venv = tmp_path_factory.mktemp("quickstart") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = quickstart_commands()[0].replace(CHECKOUT, str(DIR_REPO), 1)
    env = dict(os.environ, PATH=f"{venv / 'bin'}:/usr/bin:/bin", PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run(["bash", "-c", install], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv


def test_the_quick_start_runs_as_written(fresh_venv, project_copy, bucket, credentials, lambda_client):
    assert (fresh_venv / "bin" / "uv").is_file(), "uv comes with the package"
    path = project_copy("uv")
    [(_, table)] = [block for block in quickstart_blocks() if block[0] == "toml"]
    table = table.replace("s3://my-bucket/", f"s3://{bucket}/")
    login = f'index_url = "{credentials.index_url}"\nindex_username = "{credentials.username}"\n'
    path.write_text(path.read_text() + "\n" + table + login)
    subprocess.run(["git", "init", "-q", str(path.parent)], check=True)
    env = dict(
        os.environ,
        PATH=f"{fresh_venv / 'bin'}:/usr/bin:/bin",  # only what the install line brought, no uv of ours
        ALAB_INDEX_PASSWORD=credentials.password,
    )
    seen = {}
    for command in quickstart_commands()[1:]:
        result = subprocess.run(
            ["bash", "-c", command], cwd=path.parent, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        seen[" ".join(command.split()[:3])] = result
    plan = seen["alab layer plan"]
    assert "Layer my-app-deps: CHANGE: no earlier version is recorded" in plan.stdout
    deploy = seen["alab layer deploy"]
    assert "Published: my-app-deps version 1" in deploy.stdout
    assert layer_versions(lambda_client, "my-app-deps") == [1]
    assert (path.parent / "build" / "lambda" / "runtime-set-cache").is_dir()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "build/" not in status.stdout, status.stdout


def test_a_poetry_lock_without_the_poetry_extra_names_the_install_command(
    fresh_venv, project_copy, bucket, credentials
):
    path = project_copy("poetry")
    env = dict(os.environ, PATH=f"{fresh_venv / 'bin'}:/usr/bin:/bin", ALAB_INDEX_PASSWORD=credentials.password)
    result = subprocess.run(
        ["alab", "layer", "plan", "--layer-name", "poetry-deps", "--s3dir", f"s3://{bucket}/poetry/"],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 4  # an unusable lock file (it cannot be read without poetry)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "poetry.lock: poetry is not installed" in lines[0]
    assert "pip install 'poetry>=2.5' poetry-plugin-export" in lines[0]
