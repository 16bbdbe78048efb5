"""``alab terraform install``: make this virtualenv's provider visible to the ``terraform`` binary.

Terraform runs a provider as an executable found through its CLI configuration. We write a tiny
executable whose shebang is this virtualenv's Python (so the provider runs with the exact package and
dependencies installed here) into an unpacked filesystem-mirror layout, and the ``provider_installation``
block that points Terraform at it. The mirror is what lets ``terraform init`` resolve our provider next to
registry providers (Terraform cannot init a provider that exists only as a dev override); the optional
``dev_overrides`` block then makes every command run the executable in place, without lock-file hashes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import platform
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import LayerError
from . import PROVIDER_SOURCE, PROVIDER_TYPE

_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def terraform_platform() -> str:
    """Terraform's name for this machine, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    return f"{sys.platform.rstrip('0123456789')}_{_MACHINES.get(machine, machine)}"


def default_mirror_dir() -> Path:
    """Inside the current virtualenv, so each virtualenv has its own provider."""
    return Path(sys.prefix) / "share" / "aws-lambda-artifact-builder" / "terraform-mirror"


@dataclasses.dataclass(frozen=True)
class TerraformInstall:
    """Where the provider executable went and the CLI configuration that uses it."""

    path_executable: Path
    dir_mirror: Path
    cli_config: str

    @property
    def required_providers(self) -> str:
        return f'terraform {{\n  required_providers {{\n    alab = {{ source = "{PROVIDER_SOURCE}" }}\n  }}\n}}\n'


def _hcl_string(value: str | Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_cli_config(
    *, dir_mirror: Path, dir_executable: Path, dev_overrides: bool, offline_mirror: Path | None
) -> str:
    """The ``provider_installation`` block for a Terraform CLI configuration file."""
    ours = _hcl_string(PROVIDER_SOURCE)
    lines = ["provider_installation {"]
    if dev_overrides:
        lines += ["  dev_overrides {", f"    {ours} = {_hcl_string(dir_executable)}", "  }"]
    lines += ["  filesystem_mirror {", f"    path    = {_hcl_string(dir_mirror)}", f"    include = [{ours}]", "  }"]
    if offline_mirror is not None:
        path = _hcl_string(offline_mirror)
        lines += ["  filesystem_mirror {", f"    path    = {path}", f"    exclude = [{ours}]", "  }"]
    else:
        lines += ["  direct {", f"    exclude = [{ours}]", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def install_terraform_provider(
    *,
    dir_mirror: Path | None = None,
    dev_overrides: bool = False,
    offline_mirror: Path | None = None,
    path_cli_config: Path | None = None,
) -> TerraformInstall:
    """Write the provider executable (and, if asked, the CLI configuration file); return both.

    ``offline_mirror`` names a filesystem mirror that supplies every other provider (air-gapped
    machines); without it, other providers come from their registries as usual.
    """
    if importlib.util.find_spec("tf") is None:
        raise LayerError(
            "the Terraform provider needs the `tf` package: pip install 'tf>=1.2,<1.3' msgpack (the package's [terraform] extra)"
        )
    dir_mirror = (dir_mirror or default_mirror_dir()).resolve()
    dir_executable = dir_mirror / PROVIDER_SOURCE / __version__ / terraform_platform()
    dir_executable.mkdir(parents=True, exist_ok=True)
    path_executable = dir_executable / f"terraform-provider-{PROVIDER_TYPE}_v{__version__}"
    path_executable.write_text(
        f"#!{sys.executable}\n"
        "# Terraform provider of aws-lambda-artifact-builder, written by `alab terraform install`.\n"
        "from aws_lambda_artifact_builder.terraform_provider.provider import main\n"
        "\n"
        "main()\n"
    )
    path_executable.chmod(0o755)
    cli_config = render_cli_config(
        dir_mirror=dir_mirror,
        dir_executable=dir_executable,
        dev_overrides=dev_overrides,
        offline_mirror=offline_mirror.resolve() if offline_mirror else None,
    )
    if path_cli_config is not None:
        path_cli_config.parent.mkdir(parents=True, exist_ok=True)
        path_cli_config.write_text(cli_config)
    return TerraformInstall(path_executable=path_executable, dir_mirror=dir_mirror, cli_config=cli_config)


def describe_install(install: TerraformInstall, path_cli_config: Path | None) -> str:
    """What ``alab terraform install`` prints: where things are and the two snippets to use."""
    parts = [f"Provider executable: {install.path_executable}", ""]
    if path_cli_config is not None:
        parts += [
            f"CLI configuration written to {path_cli_config}; use it with:",
            f"  export TF_CLI_CONFIG_FILE={path_cli_config}",
        ]
    else:
        parts += [
            "Add this to your Terraform CLI configuration (~/.terraformrc or the file $TF_CLI_CONFIG_FILE names):",
            "",
            install.cli_config.rstrip(),
        ]
    parts += ["", "and declare the provider in your configuration:", "", install.required_providers.rstrip()]
    return "\n".join(parts) + "\n"


def cmd_terraform_install(args: argparse.Namespace, out: Any, err: Any) -> int:
    """``alab terraform install``: write the executable, print (or write) the CLI configuration."""
    path_cli_config = Path(args.cli_config).expanduser().resolve() if args.cli_config else None
    install = install_terraform_provider(
        dir_mirror=Path(args.dir).expanduser() if args.dir else None,
        dev_overrides=args.dev_overrides,
        offline_mirror=Path(args.offline_mirror).expanduser() if args.offline_mirror else None,
        path_cli_config=path_cli_config,
    )
    print(describe_install(install, path_cli_config), file=out, end="")
    return 0


def add_terraform_commands(commands: Any) -> None:
    """Register ``terraform install`` on the ``alab`` parser's sub-commands."""
    terraform = commands.add_parser("terraform", help="use the alab provider from Terraform")
    actions = terraform.add_subparsers(dest="terraform_command", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install", help="write this virtualenv's Terraform provider and the CLI configuration that finds it"
    )
    install.add_argument("--dir", help=f"filesystem mirror to write into (default: {default_mirror_dir()})")
    install.add_argument(
        "--dev-overrides", action="store_true", help="also add a dev_overrides entry (no lock-file hashes for alab)"
    )
    install.add_argument(
        "--offline-mirror", metavar="DIR", help="take every other provider from this filesystem mirror, not registries"
    )
    install.add_argument("--cli-config", metavar="PATH", help="write the CLI configuration file here")
    install.set_defaults(handler=cmd_terraform_install)
