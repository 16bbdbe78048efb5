"""``alab terraform install``: an executable for this virtualenv, and CLI configuration Terraform accepts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from aws_lambda_artifact_builder import __version__
from aws_lambda_artifact_builder.terraform_provider import PROVIDER_SOURCE
from aws_lambda_artifact_builder.terraform_provider.install import install_terraform_provider, render_cli_config
from support.servers import stop_process
from terraform_harness import AWS_PROVIDER_MIRROR, DIR_LAYER_ONLY, run_alab, working_dir


def test_the_executable_runs_this_virtualenv_and_answers_the_plugin_handshake(tmp_path: Path) -> None:
    install = install_terraform_provider(dir_mirror=tmp_path / "mirror")
    relative = install.path_executable.relative_to(tmp_path / "mirror")
    assert relative.parts[:4] == ("terraform.local", "alab", "alab", __version__)
    assert re.fullmatch(r"(linux|darwin)_(amd64|arm64)", relative.parts[4])
    assert relative.name == f"terraform-provider-alab_v{__version__}"
    assert install.path_executable.read_text().splitlines()[0] == f"#!{sys.executable}"
    assert os.access(install.path_executable, os.X_OK)

    proc = subprocess.Popen([install.path_executable], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        handshake = proc.stdout.readline().strip() if proc.stdout else ""
        # go-plugin: core protocol 1, Terraform plugin protocol 6, a unix socket, gRPC, the server's certificate.
        found = re.fullmatch(r"1\|6\|unix\|(?P<socket>[^|]+)\|grpc\|[A-Za-z0-9+/]+", handshake)
        assert found, handshake
        assert Path(found["socket"]).is_socket()
    finally:
        stop_process(proc)


def test_cli_configuration_per_mode(tmp_path: Path) -> None:
    mirror, executable, offline = tmp_path / "m", tmp_path / "m" / "x", tmp_path / "offline"
    plain = render_cli_config(dir_mirror=mirror, dir_executable=executable, dev_overrides=False, offline_mirror=None)
    assert "dev_overrides" not in plain
    assert f'path    = "{mirror}"\n    include = ["{PROVIDER_SOURCE}"]' in plain
    assert f'direct {{\n    exclude = ["{PROVIDER_SOURCE}"]' in plain

    dev = render_cli_config(dir_mirror=mirror, dir_executable=executable, dev_overrides=True, offline_mirror=offline)
    assert f'dev_overrides {{\n    "{PROVIDER_SOURCE}" = "{executable}"' in dev
    assert f'path    = "{offline}"\n    exclude = ["{PROVIDER_SOURCE}"]' in dev
    assert "direct" not in dev  # offline: no registry is ever asked


def test_mirror_install_lets_terraform_init_and_shows_credentials_write_only(
    terraform_bin: str, tmp_path: Path
) -> None:
    path_config = tmp_path / "terraform.rc"
    result = run_alab(
        "terraform",
        "install",
        "--dir",
        str(tmp_path / "mirror"),
        "--offline-mirror",
        str(AWS_PROVIDER_MIRROR),
        "--cli-config",
        str(path_config),
    )
    assert result.returncode == 0, result.stderr
    assert "dev_overrides" not in path_config.read_text()
    tf = working_dir(DIR_LAYER_ONLY, terraform_bin, path_config, tmp_path / "work")
    tf.run("init", "-input=false")
    lock_file = (tf.workdir / ".terraform.lock.hcl").read_text()
    assert f'provider "{PROVIDER_SOURCE}" {{\n  version = "{__version__}"' in lock_file

    schemas = json.loads(tf.run("providers", "schema", "-json").stdout)["provider_schemas"]
    attributes = schemas[PROVIDER_SOURCE]["resource_schemas"]["alab_layer"]["block"]["attributes"]
    assert attributes["credentials"]["write_only"] is True and attributes["credentials"]["sensitive"] is True
    assert attributes["layer_version_arn"]["computed"] is True
    assert attributes["layer_name"]["required"] is True
