"""Names and limits shared by every pipeline stage."""

from __future__ import annotations

import enum

#: Width of the zero-padded layer version folder in S3 (``layer/000001/``).
ZFILL = 6


class LayerBuildToolEnum(str, enum.Enum):
    """The dependency tools a layer can be built with; the value names the manifest reader."""

    pip = "pip"
    poetry = "poetry"
    uv = "uv"

    @property
    def manifest_name(self) -> str:
        """The file next to ``pyproject.toml`` that pins this tool's dependencies."""
        return {"pip": "requirements.txt", "poetry": "poetry.lock", "uv": "uv.lock"}[self.value]

    @property
    def lock_hint(self) -> str:
        """What to do when this tool's manifest is missing or stale (ends an error message)."""
        return {"pip": "pin your runtime dependencies in it", "poetry": "run `poetry lock`", "uv": "run `uv lock`"}[
            self.value
        ]


#: Python versions Lambda offers as managed runtimes today; a newer one is accepted with a warning.
SUPPORTED_PYTHON_VERSIONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13", "3.14")


class ArchitectureEnum(str, enum.Enum):
    """Lambda's instruction set architectures, by the name Lambda's API uses."""

    x86_64 = "x86_64"
    arm64 = "arm64"


#: The target a layer gets when none is given: the newest runtime most users deploy, on Intel.
DEFAULT_PYTHON_VERSION = "3.12"
DEFAULT_ARCHITECTURE = ArchitectureEnum.x86_64.value


class BuildInEnum(str, enum.Enum):
    """Where a layer is built: on this machine, or in a container of the target's image."""

    local = "local"
    container = "container"


DEFAULT_BUILD_IN = BuildInEnum.local.value

#: The CPU name a wheel tag and ``platform_machine`` use for each Lambda architecture.
ARCHITECTURE_MACHINE: dict[str, str] = {
    ArchitectureEnum.x86_64.value: "x86_64",
    ArchitectureEnum.arm64.value: "aarch64",
}


#: The glibc version of each runtime's Amazon Linux: 2.26 on AL2 (3.10, 3.11), 2.34 on AL2023 (3.12+).
def glibc_version(python_version: str) -> tuple[int, int]:
    """Highest manylinux glibc the target runtime accepts."""
    major, minor = (int(p) for p in python_version.split(".")[:2])
    return (2, 26) if (major, minor) <= (3, 11) else (2, 34)


#: Lambda's limit on the unzipped size of a function plus all its layers.
LAYER_UNZIPPED_SIZE_LIMIT = 262_144_000
#: Lambda's limit on a zip uploaded directly with the API. Kept as the seed's public value (``api.py``) only:
#: every zip goes through S3, a server-side copy per target (README "Many regions, accounts and runners").
LAYER_ZIPPED_DIRECT_UPLOAD_LIMIT = 52_428_800

#: Excluded from a layer by default: every Lambda Python runtime ships the AWS SDK, and the
#: installers themselves have no business at run time. Users replace this list.
DEFAULT_EXCLUDED_PACKAGES: tuple[str, ...] = ("boto3", "botocore", "s3transfer", "pip", "setuptools", "wheel")
