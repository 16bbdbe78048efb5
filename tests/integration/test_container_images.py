"""Build images that are not Lambda's: one with only ``python3`` builds, one without Python says so.

The images are made from the CI image (ALAB_CONTAINER_TEST_IMAGE, see scripts/setup-container-engine.sh)
by removing interpreters, with podman, and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from aws_lambda_artifact_builder.api import LayerError, build_layer_artifacts_using_uv_in_container
from aws_lambda_artifact_builder.layer.build_container import close_build_containers, detect_container_engine
from aws_lambda_artifact_builder.layer.build_container_runner import _probe_engine_cached
from support.ci import IN_CI

PYTHON = os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11")


def _need(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def derived_images() -> Iterator[dict[str, str]]:
    base = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not base or shutil.which("podman") is None:
        _need("ALAB_CONTAINER_TEST_IMAGE and podman are needed (scripts/setup-container-engine.sh)")
    try:
        detect_container_engine("podman")
    except LayerError as e:
        _need(str(e))
    suffix = uuid.uuid4().hex[:8]
    removals = {
        "only python3": "rm -f /usr/bin/python /usr/local/bin/python",
        "no python": "rm -f /usr/bin/python /usr/bin/python3 /usr/bin/python3.* /usr/local/bin/python*",
    }
    images = {}
    for name, command in removals.items():
        tag = f"localhost/alab-test-{name.replace(' ', '-')}:{suffix}"
        containerfile = f"FROM {base}\nRUN {command}\n"
        result = subprocess.run(
            ["podman", "build", "--quiet", "-t", tag, "-f", "-", "."],
            input=containerfile,
            capture_output=True,
            text=True,
            cwd="/",
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        images[name] = tag
    yield images
    close_build_containers()  # the containers kept on these images go before them
    for tag in images.values():
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True)


def test_an_image_with_only_python3_builds(derived_images, project_copy, credentials, tmp_path):
    path = project_copy("uv")
    lines: list[str] = []
    build_layer_artifacts_using_uv_in_container(
        path_pyproject_toml=path,
        python_version=PYTHON,
        credentials=credentials,
        image=derived_images["only python3"],
        container_runtime="podman",
        dir_cache=tmp_path / "cache",
        printer=lines.append,
    )
    assert (path.parent / "build/lambda/layer/artifacts/python/alab_demo_core/__init__.py").exists(), lines


def test_an_image_without_python_says_so(derived_images, project_copy, credentials, tmp_path):
    path = project_copy("uv")
    image = derived_images["no python"]
    with pytest.raises(LayerError) as raised:
        build_layer_artifacts_using_uv_in_container(
            path_pyproject_toml=path,
            python_version=PYTHON,
            credentials=credentials,
            image=image,
            container_runtime="podman",
            dir_cache=tmp_path / "cache",
            verbose=False,
        )
    first = str(raised.value).splitlines()[0]
    assert f"the image {image} has neither python3 nor python on PATH" in first, raised.value


def test_the_engine_probe_is_asked_once_per_process_and_remembered_on_disk(monkeypatch, tmp_path):
    if shutil.which("podman") is None:
        _need("podman is not installed")
    calls: list[str] = []
    import aws_lambda_artifact_builder.layer.build_container_runner as bc

    real = bc._probe_engine
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(bc, "_probed_engines", {})
    monkeypatch.setattr(
        bc, "_probe_engine", lambda runtime, executable: calls.append(runtime) or real(runtime, executable)
    )
    first = detect_container_engine("podman")
    second = detect_container_engine("podman")
    assert first == second and calls == ["podman"]
    assert _probe_engine_cached("podman", shutil.which("podman")) == first and calls == ["podman"]
    # A later process (nothing remembered in memory) reads the probe from the user's cache folder.
    assert (tmp_path / "cache" / "aws-lambda-artifact-builder" / "engines.json").is_file()
    monkeypatch.setattr(bc, "_probed_engines", {})
    assert detect_container_engine("podman") == first and calls == ["podman"]
    # A cache file that is not ours to read (damaged, or from another version) is asked around.
    (tmp_path / "cache" / "aws-lambda-artifact-builder" / "engines.json").write_text('{"x": [1, 2]}')
    monkeypatch.setattr(bc, "_probed_engines", {})
    assert detect_container_engine("podman") == first and calls == ["podman", "podman"]
