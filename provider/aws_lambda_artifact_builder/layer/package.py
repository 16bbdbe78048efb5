"""Package stage: turn ``artifacts/python`` into a deterministic ``layer.zip``."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..constants import LAYER_UNZIPPED_SIZE_LIMIT


@dataclasses.dataclass(frozen=True)
class PackagingOptions:
    """How the installed tree becomes a zip; the options that change the zip's bytes enter the fingerprint."""

    #: Precompile ``.pyc`` with hash-based invalidation (only when the build Python equals the target).
    compile_bytecode: bool = False
    #: Refuse to package when the unzipped layer is larger than this (Lambda's limit by default).
    unzipped_size_limit: int = LAYER_UNZIPPED_SIZE_LIMIT

    def fingerprint_fields(self) -> dict[str, Any]:
        """The options that change the layer's bytes (the size limit does not)."""
        return {"compile_bytecode": self.compile_bytecode}
