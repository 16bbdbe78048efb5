"""The real `pulumi` CLI for the tests: found, given an offline environment, and driven like a user does.

scripts/install-pulumi.sh builds the pinned CLI into .tools/pulumi/bin (``.ci/run`` runs it). The Python
language host `pulumi-language-python` is not served by the Go module proxy, so programs run as Automation API
*inline programs*: the CLI (`pulumi preview --diff`, `pulumi up`, ...) drives the real engine and starts the
real dynamic provider plugin; only the program itself runs in the test's process. Commands that do not run a
program (`stack init`, `config set`, `stack export`, `cancel`, `stack rm`) are run as plain CLI commands.
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DIR_REPO = Path(__file__).resolve().parent.parent.parent
DIR_TOOLS_BIN = DIR_REPO / ".tools" / "pulumi" / "bin"
EXAMPLE_PROGRAM = DIR_REPO / "examples" / "pulumi" / "__main__.py"
PLUGIN = "pulumi-resource-pulumi-python"
SKIP_REASON = (
    "no `pulumi` CLI: run scripts/install-pulumi.sh (builds the pinned CLI from Go modules into .tools/pulumi/bin; "
    ".ci/run does), or set ALAB_PULUMI_BIN to a `pulumi` binary"
)
PASSPHRASE = "alab-test-passphrase"


def find_pulumi() -> Path | None:
    """ALAB_PULUMI_BIN, else the repository's .tools/pulumi/bin/pulumi, else `pulumi` on PATH."""
    for candidate in (os.environ.get("ALAB_PULUMI_BIN"), DIR_TOOLS_BIN / "pulumi", shutil.which("pulumi")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate).resolve()
    return None


def plugin_dir(pulumi_bin: Path) -> Path:
    """Where our dynamic-provider plugin script is: beside the CLI, else the repository's install folder."""
    return pulumi_bin.parent if (pulumi_bin.parent / PLUGIN).exists() else DIR_TOOLS_BIN


@dataclasses.dataclass
class PulumiProject:
    """A hand-written Pulumi.yaml in its own folder, a file:// backend, and the environment a user sets."""

    pulumi_bin: Path
    dir_work: Path
    env: dict[str, str]
    program: Callable[[], None]
    name: str
    #: Every argv this object ran (plain CLI commands), for the secret checks.
    argvs: list[list[str]] = dataclasses.field(default_factory=list)

    @classmethod
    def create(
        cls,
        pulumi_bin: Path,
        dir_root: Path,
        *,
        name: str = "alab-example",
        program: Callable[[], None] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> PulumiProject:
        dir_work, dir_backend, dir_home = dir_root / "project", dir_root / "backend", dir_root / "pulumi-home"
        for d in (dir_work, dir_backend, dir_home):
            d.mkdir(parents=True, exist_ok=True)
        (dir_work / "Pulumi.yaml").write_text(
            f"name: {name}\n"
            "description: examples/pulumi, run by the tests with the real pulumi CLI.\n"
            "runtime:\n  name: python\n  options:\n"
            f"    virtualenv: {Path(sys.executable).parent.parent}\n"
        )
        # The dynamic provider plugin must find the virtualenv through Pulumi.yaml (pulumi/pulumi#7061), not
        # through an activated one.
        drop = (
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "PULUMI_ACCESS_TOKEN",
            "PULUMI_PYTHON_CMD",
            "VIRTUAL_ENV",
        )
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            PULUMI_BACKEND_URL=f"file://{dir_backend}",
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            PULUMI_HOME=str(dir_home),
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
            PATH=os.pathsep.join([str(pulumi_bin.parent), str(plugin_dir(pulumi_bin)), env.get("PATH", "")]),
        )
        env.update(extra_env or {})
        return cls(pulumi_bin, dir_work, env, program or example_program, name)

    @property
    def dir_backend(self) -> Path:
        return Path(self.env["PULUMI_BACKEND_URL"].removeprefix("file://"))

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`pulumi <args>` in the project folder, as a user types it."""
        argv = [str(self.pulumi_bin), *args]
        self.argvs.append(argv)
        result = subprocess.run(
            argv, cwd=self.dir_work, env=self.env, input=stdin, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`pulumi {' '.join(args)}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def stack_init(self, stack: str, config: dict[str, str], secrets: dict[str, str] | None = None) -> None:
        """`pulumi stack init`, `pulumi config set` (secrets through stdin, never on a command line)."""
        self.cli("stack", "init", stack, "--non-interactive")
        for key, value in config.items():
            self.cli("config", "set", "--stack", stack, key, value)
        for key, value in (secrets or {}).items():
            self.cli("config", "set", "--stack", stack, "--secret", key, stdin=value)

    def stack(self, name: str) -> Any:
        """The Automation API's handle on an existing stack: preview/up/refresh/destroy run the CLI."""
        from pulumi import automation as auto

        return auto.select_stack(
            stack_name=name,
            project_name=self.name,
            program=self.program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(self.dir_work),
                pulumi_home=self.env["PULUMI_HOME"],
                env_vars=self.env,
                pulumi_command=auto.PulumiCommand(root=str(self.pulumi_bin.parent.parent)),  # checks `pulumi version`
            ),
        )


def example_program() -> None:
    """examples/pulumi/__main__.py as the program, exactly as the language host would run it."""
    runpy.run_path(str(EXAMPLE_PROGRAM), run_name="__main__")
