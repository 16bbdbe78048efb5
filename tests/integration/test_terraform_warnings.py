"""What the user should know although a Terraform apply went on reaches `terraform apply`'s output.

The plugin's stderr reaches only Terraform's log (TF_LOG), so the library's warnings become warning
diagnostics of the resource, which Terraform prints after the apply. Driven in process against the
moto server; the real terraform binary runs the same resource in tests/terraform.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
from aws_lambda_artifact_builder.layer import package
from aws_lambda_artifact_builder.terraform_provider.provider import AlabProvider
from aws_lambda_artifact_builder.terraform_provider.resource import LayerResource
from tf.utils import Diagnostics


def test_the_librarys_warnings_are_warning_diagnostics_of_their_own_resource_only(
    aws, bucket, project_copy, credentials, monkeypatch: pytest.MonkeyPatch
):
    real = package._packaging_warnings

    def warn_for_one(content, entry_count):  # a real packaging warning's path, for the layer "odd" only
        lines = real(content, entry_count)
        if threading.current_thread().name == "odd":
            lines.append(
                f"[package] warning: odd-lib lists 1 file(s) outside the layer's python/ tree: {credentials.password}"
            )
        return lines

    monkeypatch.setattr(package, "_packaging_warnings", warn_for_one)
    provider = AlabProvider()
    provider.endpoint_url, provider.region = aws.endpoint_url, "us-east-1"
    resource = LayerResource(provider)
    results: dict[str, tuple[Diagnostics, object]] = {}
    paths = {}
    for name in ("odd", "plain"):  # one project folder each: two resources of one apply
        source = project_copy("uv").parent
        paths[name] = source.rename(source.parent / name) / "pyproject.toml"

    def apply(name: str) -> None:
        diags = Diagnostics()
        planned = {
            "layer_name": f"{name}-deps",
            "path_pyproject_toml": str(paths[name]),
            "s3dir_lambda": f"s3://{bucket}/apps/{name}/",
            "tool": "uv",
            "credentials": dataclasses.asdict(credentials),
        }
        results[name] = (diags, resource._deploy(diags, planned, prior=None))

    threads = [threading.Thread(target=apply, args=(name,), name=name) for name in ("odd", "plain")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for name, (diags, state) in results.items():
        assert state is not None and state["layer_version"] == 1, diags.diagnostics
        warnings = [d for d in diags.diagnostics if d.severity == "warning"]
        if name == "plain":
            assert warnings == [], warnings
            continue
        (warning,) = warnings
        assert warning.summary == "Layer odd-deps" and "outside the layer's python/ tree" in warning.detail
        assert credentials.password not in warning.detail  # scrubbed like the errors
