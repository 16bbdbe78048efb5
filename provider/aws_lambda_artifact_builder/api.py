"""The public surface: import from here, not from the stage modules."""

from .constants import (
    DEFAULT_EXCLUDED_PACKAGES,
    LAYER_UNZIPPED_SIZE_LIMIT,
    LAYER_ZIPPED_DIRECT_UPLOAD_LIMIT,
    SUPPORTED_PYTHON_VERSIONS,
    ArchitectureEnum,
    LayerBuildToolEnum,
)
from .errors import LayerError, ManifestError
from .layer.foundation import (
    BaseLogger,
    Credentials,
    LayerManifestManager,
    LayerPathLayout,
    LayerS3Layout,
)
from .layer.manifest import (
    LocalManifest,
    PackageChanges,
    compute_fingerprint,
    diff_dependencies,
    read_local_manifest,
    runtime_dependencies,
)
from .layer.target import LayerTarget

__all__ = [
    "DEFAULT_EXCLUDED_PACKAGES",
    "LAYER_UNZIPPED_SIZE_LIMIT",
    "LAYER_ZIPPED_DIRECT_UPLOAD_LIMIT",
    "SUPPORTED_PYTHON_VERSIONS",
    "ArchitectureEnum",
    "BaseLogger",
    "Credentials",
    "LayerBuildToolEnum",
    "LayerError",
    "LayerManifestManager",
    "LayerPathLayout",
    "LayerS3Layout",
    "LayerTarget",
    "LocalManifest",
    "ManifestError",
    "PackageChanges",
    "compute_fingerprint",
    "diff_dependencies",
    "read_local_manifest",
    "runtime_dependencies",
]
