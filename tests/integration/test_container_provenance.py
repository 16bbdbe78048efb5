"""A container deploy's provenance says what ran in the container: the installer's version as it answered
there (not the host's), and the image, its digest and the ID of the image the container ran.

Needs the engine and image of scripts/setup-container-engine.sh (DOCKER_HOST, ALAB_CONTAINER_TEST_IMAGE);
elsewhere it skips, with CI=true it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aws_lambda_artifact_builder.layer.build_container import detect_container_engine
from aws_lambda_artifact_builder.layer.build_container_plan import DIR_CACHE_IN_CONTAINER
from support.ci import IN_CI
from support.cli import alab, configure

PYTHON = os.environ.get("ALAB_CONTAINER_TEST_PYTHON", "3.11")


def test_a_container_deploys_provenance_has_the_containers_installer_version_and_image(
    aws, bucket, s3_client, project_copy, credentials
):
    image = os.environ.get("ALAB_CONTAINER_TEST_IMAGE")
    if not image or not os.environ.get("DOCKER_HOST"):
        reason = 'no container engine set up (eval "$(scripts/setup-container-engine.sh)")'
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    path = configure(
        project_copy("pip"), layer_name="in-container", s3dir=f"s3://{bucket}/apps/", credentials=credentials
    )
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    deploy = alab(
        "layer", "deploy", "--project", str(path.parent), "--build-in", "container", "--image", image,
        "--python-version", PYTHON, "--json", env=env,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stderr
    version = json.loads(deploy.stdout)["layer_version"]
    key = f"apps/layer/{version:06d}/provenance.json"
    provenance = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    tool = provenance["tool"]
    # pip's --version names where it runs from: the pinned pip of the container's tools venv, not the host's.
    assert tool["version"].startswith("pip ") and f" from {DIR_CACHE_IN_CONTAINER}/tools/" in tool["version"], tool
    assert sys.prefix not in tool["version"] and tool["note"] == "reported in the build container"
    container = provenance["build"]["container"]
    engine = detect_container_engine(None)
    inspected = subprocess.run(
        [engine.executable, "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True
    ).stdout.strip()
    assert container["image"] == image and "sha256:" in (container["digest"] or ""), container
    assert container["image_id"] == (inspected if inspected.startswith("sha256:") else f"sha256:{inspected}")


def test_with_strip_debug_symbols_the_provenance_names_the_strip_that_ran(
    aws, bucket, s3_client, project_copy, credentials
):
    """Another binutils release may write other bytes: the provenance says which strip slimmed the zip."""
    from aws_lambda_artifact_builder.layer.slim import find_strip

    machine = {"x86_64": "x86_64", "amd64": "x86_64"}.get(os.uname().machine, "aarch64")
    exe = find_strip(machine)
    if exe is None:
        reason = "no strip for this machine (apt-get install binutils)"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    path = configure(project_copy("pip"), layer_name="stripped", s3dir=f"s3://{bucket}/apps/", credentials=credentials)
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    deploy = alab("layer", "deploy", "--project", str(path.parent), "--strip-debug-symbols", "--json", env=env)
    assert deploy.returncode == 0, deploy.stderr
    key = f"apps/layer/{json.loads(deploy.stdout)['layer_version']:06d}/provenance.json"
    packaging = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())["packaging"]
    answer = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    assert packaging["strip_debug_symbols"] is True and packaging["strip_version"] == answer, packaging
