"""The SBOM's pieces: which locked wheel was installed, licences from the dist-info, determinism and validity."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from aws_lambda_artifact_builder.constants import LayerBuildToolEnum
from aws_lambda_artifact_builder.layer.evidence import (
    ZippedDistribution,
    installed_wheel,
    lock_file_hashes,
    make_sbom,
    zipped_distributions,
)
from aws_lambda_artifact_builder.layer.manifest import LocalManifest, RuntimePackage, RuntimeSet
from aws_lambda_artifact_builder.layer.target import LayerTarget
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

NUMPY_WHEELS = {
    "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": "sha256:" + "a" * 64,
    "numpy-2.1.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl": "sha256:" + "b" * 64,
    "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": "sha256:" + "c" * 64,
    "numpy-2.1.3.tar.gz": "sha256:" + "d" * 64,
}

UV_LOCK = """version = 1
requires-python = ">=3.11"

[[package]]
name = "numpy"
version = "2.1.3"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.example/numpy-2.1.3.tar.gz", hash = "%(d)s" }
wheels = [
    { url = "https://files.example/numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "%(a)s" },
    { url = "https://files.example/numpy-2.1.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", hash = "%(b)s" },
    { url = "https://files.example/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "%(c)s" },
]
""" % {k: "sha256:" + k * 64 for k in "abcd"}


def _manifest(tmp_path: Path, tool: LayerBuildToolEnum, text: str, runtime_set: RuntimeSet) -> LocalManifest:
    path = tmp_path / tool.manifest_name
    path.write_text(text)
    return LocalManifest(tool=tool, path=path, dependencies={}, runtime_set_digest="", _load=lambda: runtime_set)


def _numpy_set() -> RuntimeSet:
    return RuntimeSet(
        packages=(
            RuntimePackage(
                name="numpy",
                version="2.1.3",
                hashes=tuple(sorted(NUMPY_WHEELS.values())),
                filenames=tuple(NUMPY_WHEELS),
            ),
        )
    )


def test_the_installed_wheel_is_the_locked_file_with_the_dist_infos_tags(tmp_path: Path):
    manifest = _manifest(tmp_path, LayerBuildToolEnum.uv, UV_LOCK, _numpy_set())
    hashes = lock_file_hashes(manifest)
    assert hashes == NUMPY_WHEELS
    tags = frozenset({"cp312-cp312-manylinux_2_17_aarch64", "cp312-cp312-manylinux2014_aarch64"})
    dist = ZippedDistribution(name="numpy", version="2.1.3", licenses=(), tags=tags)
    wheel, digest = installed_wheel(dist, manifest.runtime_set, hashes)
    assert wheel == "numpy-2.1.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert digest == "sha256:" + "b" * 64
    unknown = ZippedDistribution(name="numpy", version="2.1.3", licenses=(), tags=frozenset({"cp313-cp313-win_amd64"}))
    assert installed_wheel(unknown, manifest.runtime_set, hashes) == (None, None)  # never a guess


def test_one_hash_in_requirements_txt_is_the_installed_files():
    runtime_set = RuntimeSet(packages=(RuntimePackage(name="six", version="1.16.0", hashes=("sha256:" + "e" * 64,)),))
    dist = ZippedDistribution(
        name="Six", version="1.16.0", licenses=(), tags=frozenset({"py2-none-any", "py3-none-any"})
    )
    assert installed_wheel(dist, runtime_set, {}) == (None, "sha256:" + "e" * 64)


def _layer_zip(path: Path, metadata: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in metadata.items():
            zf.writestr(f"python/{name}.dist-info/METADATA", text)
            zf.writestr(f"python/{name}.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    return path


def test_licences_come_from_the_dist_info_expression_first(tmp_path: Path):
    path = _layer_zip(
        tmp_path / "layer.zip",
        {
            "a-1": "Metadata-Version: 2.4\nName: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: ignored\n",
            "b-2": "Metadata-Version: 2.1\nName: b\nVersion: 2\nLicense: BSD-3-Clause\n",
            "c-3": "Metadata-Version: 2.1\nName: c\nVersion: 3\nLicense: " + "long text " * 30 + "\n"
            "Classifier: License :: OSI Approved :: BSD License\n",
            "d-4": "Metadata-Version: 2.1\nName: d\nVersion: 4\n",
        },
    )
    found = {d.name: d.licenses for d in zipped_distributions(path)}
    assert found == {"a": ("MIT OR Apache-2.0",), "b": ("BSD-3-Clause",), "c": ("BSD License",), "d": ()}


def test_the_sbom_is_valid_and_the_same_for_the_same_zip(tmp_path: Path):
    path = _layer_zip(
        tmp_path / "layer.zip", {"a-1": "Metadata-Version: 2.4\nName: a\nVersion: 1\nLicense-Expression: MIT\n"}
    )
    dists = zipped_distributions(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    target = LayerTarget(python_version="3.12", architecture="arm64")
    one = make_sbom(dists, runtime_set=RuntimeSet(packages=()), file_hashes={}, zip_sha256=sha, target=target)
    two = make_sbom(dists, runtime_set=RuntimeSet(packages=()), file_hashes={}, zip_sha256=sha, target=target)
    assert one == two
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(one) is None
    data = json.loads(one)
    assert "timestamp" not in data["metadata"]
    assert [c["purl"] for c in data["components"]] == ["pkg:pypi/a@1"]
    assert data["components"][0]["licenses"] == [{"license": {"id": "MIT"}}]  # an SPDX id, as the library makes it
    other = make_sbom(dists, runtime_set=RuntimeSet(packages=()), file_hashes={}, zip_sha256="0" * 64, target=target)
    assert json.loads(other)["serialNumber"] != data["serialNumber"]  # another zip, another SBOM


def test_the_provenance_names_the_container_images_digest():
    """The image digest comes from the engine (docker or podman); runs where an engine and test image are set up."""
    import os

    import pytest
    from aws_lambda_artifact_builder.layer.evidence import image_digest

    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not image or not os.environ.get("DOCKER_HOST"):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "ALAB_CONTAINER_TEST_IMAGE and DOCKER_HOST must be set in CI (scripts/setup-container-engine.sh)"
            )
        pytest.skip('no container engine set up (eval "$(scripts/setup-container-engine.sh)")')
    digest = image_digest(image, None)
    assert digest is not None and "sha256:" in digest and len(digest.rsplit("sha256:", 1)[1]) == 64
    assert image_digest("localhost/alab-no-such-image:0", None) is None
