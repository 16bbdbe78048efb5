"""The public surface: import from here, not from the stage modules."""

from .constants import (
    DEFAULT_EXCLUDED_PACKAGES,
    LAYER_UNZIPPED_SIZE_LIMIT,
    LAYER_ZIPPED_DIRECT_UPLOAD_LIMIT,
    SUPPORTED_PYTHON_VERSIONS,
    ArchitectureEnum,
    LayerBuildToolEnum,
)
from .errors import (
    AwsError,
    BuildError,
    ConflictError,
    LayerError,
    LayerInputError,
    ManifestError,
    ManifestInputError,
    redact,
)
from .layer.build import (
    InstallStep,
    LockedPin,
    build_layer_artifacts_in_local,
    build_layer_artifacts_using_pip_in_local,
    build_layer_artifacts_using_poetry_in_local,
    build_layer_artifacts_using_uv_in_local,
    plan_install_steps,
)
from .layer.build_container import (
    build_layer_artifacts_in_container,
    build_layer_artifacts_using_pip_in_container,
    build_layer_artifacts_using_poetry_in_container,
    build_layer_artifacts_using_uv_in_container,
)
from .layer.clients import make_clients
from .layer.foundation import (
    BaseLogger,
    Credentials,
    LayerManifestManager,
    LayerPathLayout,
    LayerS3Layout,
)
from .layer.inputs import check_spec, local_fingerprint, validate_layer_inputs
from .layer.manifest import (
    LocalManifest,
    PackageChanges,
    compute_fingerprint,
    diff_dependencies,
    read_local_manifest,
    runtime_dependencies,
)
from .layer.package import LayerZipInfo, PackagingOptions, create_layer_zip_file
from .layer.publish import LayerDeployment, delete_layer_versions, publish_layer_version
from .layer.record import LayerRecord
from .layer.spec import DeployOptions, LayerSpec, make_spec

# artifact store, many regions and accounts (layer/store.py, layer/targets.py)
from .layer.store import ArtifactMissing, ArtifactStore, StoredArtifact
from .layer.target import LayerTarget
from .layer.targets import DeployTarget, MultiDeployment, TargetOutcome, deploy_layer_to_targets, push_layer_artifact
from .layer.upload import upload_layer_zip_to_s3
from .layer.workflow import LayerPlan, deploy, deploy_layer, plan, plan_layer, read_layer_record

__all__ = [
    "LayerDeployment",
    "LayerPlan",
    "LayerRecord",
    "check_spec",
    "delete_layer_versions",
    "deploy",
    "deploy_layer",
    "local_fingerprint",
    "make_clients",
    "make_spec",
    "plan",
    "plan_layer",
    "publish_layer_version",
    "read_layer_record",
    "upload_layer_zip_to_s3",
    "validate_layer_inputs",
    "DEFAULT_EXCLUDED_PACKAGES",
    "LAYER_UNZIPPED_SIZE_LIMIT",
    "LAYER_ZIPPED_DIRECT_UPLOAD_LIMIT",
    "SUPPORTED_PYTHON_VERSIONS",
    "ArchitectureEnum",
    "BaseLogger",
    "Credentials",
    "InstallStep",
    "LayerBuildToolEnum",
    "LayerError",
    "LayerInputError",
    "AwsError",
    "BuildError",
    "ConflictError",
    "LayerSpec",
    "DeployOptions",
    "redact",
    "LayerManifestManager",
    "LayerPathLayout",
    "LayerS3Layout",
    "LayerTarget",
    "LayerZipInfo",
    "LockedPin",
    "LocalManifest",
    "ManifestError",
    "ManifestInputError",
    "PackagingOptions",
    "PackageChanges",
    "build_layer_artifacts_in_container",
    "build_layer_artifacts_in_local",
    "build_layer_artifacts_using_pip_in_container",
    "build_layer_artifacts_using_pip_in_local",
    "build_layer_artifacts_using_poetry_in_container",
    "build_layer_artifacts_using_poetry_in_local",
    "build_layer_artifacts_using_uv_in_container",
    "build_layer_artifacts_using_uv_in_local",
    "compute_fingerprint",
    "create_layer_zip_file",
    "diff_dependencies",
    "plan_install_steps",
    "read_local_manifest",
    "runtime_dependencies",
    "ArtifactMissing",
    "ArtifactStore",
    "StoredArtifact",
    "DeployTarget",
    "MultiDeployment",
    "TargetOutcome",
    "deploy_layer_to_targets",
    "push_layer_artifact",
]
