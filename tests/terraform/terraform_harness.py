"""A terraform working directory driven as a user drives it, keeping everything Terraform printed or wrote."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

DIR_REPO = Path(__file__).resolve().parents[2]
DIR_EXAMPLE = DIR_REPO / "examples" / "terraform"
DIR_LAYER_ONLY = Path(__file__).resolve().parent / "layer_only"
DIR_REGIONS = Path(__file__).resolve().parent / "regions"
DIR_ACCOUNTS = Path(__file__).resolve().parent / "accounts"
DIR_SAMPLE_CODE = DIR_REPO / "examples" / "sample_app_pypi" / "sample_app_pypi"
#: Where hashicorp/aws 5.100 is mirrored on this project's machines.
AWS_PROVIDER_MIRROR = Path(os.environ.get("ALAB_TERRAFORM_PLUGIN_MIRROR", "/opt/tf-plugins"))

#: Commands whose human output the tests read: without colour codes.
_COLOURED = ("init", "plan", "apply", "destroy", "validate")


@dataclasses.dataclass
class Terraform:
    """One working directory and everything Terraform wrote or printed in it."""

    binary: str
    workdir: Path
    env: dict[str, str]
    transcript: list[str] = dataclasses.field(default_factory=list)

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        command, *rest = args
        argv = [self.binary, command, *(["-no-color"] if command in _COLOURED else []), *rest]
        started = time.monotonic()
        result = subprocess.run(argv, cwd=self.workdir, env=self.env, capture_output=True, text=True)
        took = time.monotonic() - started
        self.transcript.append(f"$ terraform {' '.join(args)}  # {took:.1f}s\n{result.stdout}\n{result.stderr}")
        if result.returncode not in ok_codes:
            raise AssertionError(
                f"terraform {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def apply(self, plan_file: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-input=false", plan_file)

    def plan(self, plan_file: str) -> subprocess.CompletedProcess[str]:
        """``plan -detailed-exitcode``: exit 0 means no changes, 2 means changes."""
        return self.run("plan", "-input=false", "-detailed-exitcode", f"-out={plan_file}", ok_codes=(0, 2))

    def artifacts(self) -> dict[str, bytes]:
        """Every byte Terraform left behind: outputs, trace log, state files and saved plans (unzipped)."""
        found = {"transcript": "\n".join(self.transcript).encode()}
        for path in sorted(self.workdir.rglob("*")):
            if not path.is_file() or ".terraform/providers" in path.as_posix():
                continue
            found[str(path.relative_to(self.workdir))] = path.read_bytes()
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    for name in zf.namelist():
                        found[f"{path.name}!{name}"] = zf.read(name)
        return found

    def outputs(self) -> dict[str, Any]:
        result = self.run("output", "-json")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}


def run_alab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aws_lambda_artifact_builder", *args], capture_output=True, text=True, check=False
    )


def working_dir(source: Path, binary: str, cli_config: Path, workdir: Path) -> Terraform:
    """A copy of a configuration directory, run with the given CLI configuration and a trace log."""
    shutil.copytree(source, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "build"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_LOG": "TRACE",
            "TF_LOG_PATH": str(workdir / "terraform-trace.log"),
            # Terraform core and our provider trace everything; the Go SDKs inside hashicorp/aws (which never
            # see our credentials) would add megabytes and seconds per command.
            **{f"TF_LOG_SDK{part}": "off" for part in ("", "_PROTO", "_FRAMEWORK", "_MUX", "_HELPER_RESOURCE")},
        }
    )
    return Terraform(binary=binary, workdir=workdir, env=env)
