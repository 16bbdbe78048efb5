"""The README's "Using with Terraform" commands, run as written on a copy of a fresh clone's examples.

The commands come from the README itself, and deploy its default app, examples/sample_app_pypi, whose
dependencies come from PyPI. What differs, because this machine reaches no Terraform registry and AWS
is the moto server: `make install` is skipped (the virtualenv exists), `alab terraform install` also
gets `--offline-mirror` (hashicorp/aws from the preinstalled mirror), the exported bucket is the test's,
`TF_VAR_aws_endpoint_url` points at moto, and `terraform apply` is answered "yes" on stdin. HOME is a
scratch folder, so `~/.terraform.d/alab.rc` is written there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from support.servers import MotoServer
from terraform_harness import AWS_PROVIDER_MIRROR, DIR_REPO

SECTION = "\n## Using with Terraform\n"


def readme_commands() -> list[str]:
    text = (DIR_REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "the Terraform section has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def as_run_here(commands: list[str], *, bucket: str, endpoint_url: str) -> list[str]:
    """The README's commands with this machine's values; anything else is left exactly as written."""
    values = {"TF_VAR_bucket": bucket}
    script = []
    for command in commands:
        if command == "make install":
            continue
        if command.startswith(".venv/bin/alab terraform install"):
            command += f" --offline-mirror {AWS_PROVIDER_MIRROR}"
        if command.startswith("export TF_VAR_"):
            for name, value in values.items():
                command = re.sub(rf"{name}=\S+", lambda _m, n=name, v=value: f"{n}='{v}'", command)
        if command == "cd examples/terraform":
            script.append(command)
            script.append(f"export TF_VAR_aws_endpoint_url={endpoint_url}")
            continue
        script.append(command)
    return script


def test_the_readme_commands_deploy_the_example_from_a_fresh_copy(
    terraform_bin: str, aws: MotoServer, bucket: str, lambda_client: Any, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    for name in ("terraform", "sample_app_pypi"):
        shutil.copytree(
            DIR_REPO / "examples" / name,
            clone / "examples" / name,
            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "build", "__pycache__"),
        )
    (clone / ".venv").symlink_to(DIR_REPO / ".venv")
    home = tmp_path / "home"
    home.mkdir()
    commands = readme_commands()
    assert any(c.startswith("mkdir -p examples/terraform/build") for c in commands)
    script = "set -eu\n" + "\n".join(as_run_here(commands, bucket=bucket, endpoint_url=aws.endpoint_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(HOME=str(home), CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    result = subprocess.run(
        ["bash", "-c", script], cwd=clone, env=env, input="yes\n", capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{script}\n---\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    assert "Apply complete!" in result.stdout
    assert (home / ".terraform.d" / "alab.rc").is_file()
    assert not any(c.startswith("export TF_VAR_index") for c in commands), "the default app needs no index"
    versions = lambda_client.list_layer_versions(LayerName="sample-app-deps")["LayerVersions"]
    assert [v["Version"] for v in versions] == [1]
    function = lambda_client.get_function(FunctionName="sample-app")["Configuration"]
    assert function["Handler"] == "sample_app_pypi.handler.lambda_handler"
    assert [layer["Arn"] for layer in function["Layers"]] == [versions[0]["LayerVersionArn"]]
    outputs = subprocess.run(
        [terraform_bin, "output", "-raw", "publish_reason"],
        cwd=clone / "examples" / "terraform",
        env=dict(env, TF_CLI_CONFIG_FILE=str(home / ".terraform.d" / "alab.rc")),
        capture_output=True,
        text=True,
    )
    assert outputs.returncode == 0, outputs.stderr
    # In words true after the apply (resource.py _publish_reason), as test_terraform_lifecycle expects too.
    assert outputs.stdout.startswith("the first version recorded at ") and "yet" not in outputs.stdout
