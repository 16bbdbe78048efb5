"""The Lambda runtime a layer is built for: Python version and architecture.

Pure validation and the facts derived from a target (marker environment, wheel platform
tags), shared by the manifest readers, the builders and every front end's input check.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

from ..constants import (
    ARCHITECTURE_MACHINE,
    DEFAULT_ARCHITECTURE,
    DEFAULT_PYTHON_VERSION,
    SUPPORTED_PYTHON_VERSIONS,
    ArchitectureEnum,
    glibc_version,
)
from ..errors import LayerError


def validate_python_version(python_version: object) -> str:
    """``"3.12"`` from ``"3.12"`` or ``"python3.12"``; a newer 3.x than Lambda offers today warns."""
    text = str(python_version).strip()
    if text.startswith("python"):
        text = text[len("python") :]
    m = re.fullmatch(r"3\.(\d{1,2})", text)
    if not isinstance(python_version, str) or not m:
        raise LayerError(f"python_version {python_version!r} is not of the form '3.12'")
    if text in SUPPORTED_PYTHON_VERSIONS:
        return text
    if int(m.group(1)) > int(SUPPORTED_PYTHON_VERSIONS[-1].split(".")[1]):
        warnings.warn(
            f"python_version {text} is newer than the Lambda runtimes known to this tool "
            f"({', '.join(SUPPORTED_PYTHON_VERSIONS)}); building for it anyway",
            stacklevel=2,
        )
        return text
    raise LayerError(
        f"python_version {text} is not a Lambda Python runtime; use one of: {', '.join(SUPPORTED_PYTHON_VERSIONS)}"
    )


def validate_architecture(architecture: object) -> str:
    try:
        return ArchitectureEnum(architecture).value
    except ValueError:
        allowed = ", ".join(a.value for a in ArchitectureEnum)
        raise LayerError(f"architecture {architecture!r} is not a Lambda architecture; use one of: {allowed}") from None


@dataclasses.dataclass(frozen=True)
class LayerTarget:
    """A Lambda Python runtime on one architecture, validated on construction."""

    python_version: str = DEFAULT_PYTHON_VERSION
    architecture: str = DEFAULT_ARCHITECTURE

    def __post_init__(self) -> None:
        object.__setattr__(self, "python_version", validate_python_version(self.python_version))
        object.__setattr__(self, "architecture", validate_architecture(self.architecture))

    @property
    def runtime(self) -> str:
        """Lambda's runtime identifier, e.g. ``python3.12``."""
        return f"python{self.python_version}"

    @property
    def machine(self) -> str:
        """``x86_64`` or ``aarch64``: the CPU name in wheel tags and ``platform_machine``."""
        return ARCHITECTURE_MACHINE[self.architecture]

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def glibc(self) -> tuple[int, int]:
        return glibc_version(self.python_version)

    @property
    def manylinux_platform(self) -> str:
        """The newest manylinux tag the runtime's glibc accepts; installers accept older ones too."""
        major, minor = self.glibc
        return f"manylinux_{major}_{minor}_{self.machine}"

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values of the Lambda runtime, to evaluate lock file markers for it."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python_version}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python_version}.0",
            "python_version": self.python_version,
            "sys_platform": "linux",
            "extra": "",
        }
