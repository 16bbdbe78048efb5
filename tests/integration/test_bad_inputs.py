"""A table of bad inputs: each gives a clear error naming the input, and nothing is written to S3 or Lambda."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerError,
    PackagingOptions,
    deploy_layer,
    plan_layer,
    validate_layer_inputs,
)
from support.layers import all_layer_versions, s3_snapshot


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    #: Changes the deploy arguments (and may change the project) before the deploy.
    setup: Callable[[dict[str, Any], Path], None]
    #: A regex the error message must match: it names the input.
    error: str
    #: The property ``validate_layer_inputs`` blames, when the problem is visible without AWS.
    prop: str | None = None


def _set(**values: Any) -> Callable[[dict[str, Any], Path], None]:
    return lambda kwargs, _path: kwargs.update(values)


def _edit(name: str, old: str, new: str) -> Callable[[dict[str, Any], Path], None]:
    def setup(kwargs: dict[str, Any], path: Path) -> None:
        target = path.parent / name
        target.write_text(target.read_text().replace(old, new))

    return setup


def _remove(name: str) -> Callable[[dict[str, Any], Path], None]:
    return lambda kwargs, path: (path.parent / name).unlink()


def _wrong_password(kwargs: dict[str, Any], _path: Path) -> None:
    kwargs["credentials"] = dataclasses.replace(kwargs["credentials"], password="not-the-password")


def _foreign_record(kwargs: dict[str, Any], path: Path) -> None:
    deploy_layer(**dict(kwargs, layer_name="someone-elses-layer"), verbose=False)


CASES = [
    Case("unknown tool", _set(tool="npm"), r"unknown layer build tool 'npm'", "tool"),
    Case(
        "python too old",
        _set(python_version="3.9"),
        r"python_version 3\.9 is not a Lambda Python runtime",
        "python_version",
    ),
    Case("python not a version", _set(python_version="latest"), r"python_version 'latest'", "python_version"),
    Case("python as a float", _set(python_version=3.12), r"python_version 3\.12 is not of the form", "python_version"),
    Case(
        "architecture amd64",
        _set(architecture="amd64"),
        r"architecture 'amd64' is not a Lambda architecture",
        "architecture",
    ),
    Case("architecture aarch64", _set(architecture="aarch64"), r"architecture 'aarch64'", "architecture"),
    Case(
        "s3dir without scheme",
        _set(s3dir_lambda="my-bucket/prefix/"),
        r"s3dir_lambda 'my-bucket/prefix/' is not an S3 URI",
        "s3dir_lambda",
    ),
    Case(
        "s3dir not a folder",
        _set(s3dir_lambda="s3://my-bucket/prefix"),
        r"s3dir_lambda .* is not a directory",
        "s3dir_lambda",
    ),
    Case(
        "s3dir bad bucket name",
        _set(s3dir_lambda="s3://Bad_Bucket/x/"),
        r"s3dir_lambda .* is not a valid bucket name \(S3 bucket names are",
        "s3dir_lambda",
    ),
    Case(
        "s3dir missing bucket",
        _set(s3dir_lambda="s3://alab-no-such-bucket/x/"),
        r"s3dir_lambda names bucket 'alab-no-such-bucket', which does not exist",
    ),
    Case(
        "layer name with spaces",
        _set(layer_name="bad name!"),
        r"layer_name 'bad name!' is not a Lambda layer name",
        "layer_name",
    ),
    Case("empty layer name", _set(layer_name=""), r"layer_name '' is not", "layer_name"),
    Case("layer name too long", _set(layer_name="x" * 65), r"layer_name 'x{65}' is not", "layer_name"),
    Case(
        "missing pyproject",
        _set(path_pyproject_toml="/nonexistent/pyproject.toml"),
        r"path_pyproject_toml '/nonexistent/pyproject.toml' is not a file",
        "path_pyproject_toml",
    ),
    Case("missing lock", _remove("uv.lock"), r"uv\.lock not found at .*; run `uv lock`", "path_pyproject_toml"),
    Case(
        "stale lock",
        _edit("pyproject.toml", "alab-demo-core==1.0.0", "alab-demo-core==1.1.0"),
        r"uv\.lock is stale",
        "path_pyproject_toml",
    ),
    Case("lock of another tool", _set(tool="poetry"), r"poetry\.lock not found", "path_pyproject_toml"),
    Case("keep_last zero", _set(keep_last=0), r"keep_last 0 must be a whole number of at least 1", "keep_last"),
    Case("keep_last string", _set(keep_last="3"), r"keep_last '3' must be a whole number", "keep_last"),
    Case(
        "bad account id",
        _set(permissions=["12345"]),
        r"permissions entry '12345' is not a 12-digit account id",
        "permissions",
    ),
    Case("permissions as a string", _set(permissions="public"), r"permissions must be a list", "permissions"),
    Case(
        "ignore_packages as a string",
        _set(ignore_packages="boto3"),
        r"ignore_packages must be a list",
        "ignore_packages",
    ),
    Case(
        "unknown build place",
        _set(build_in="lambda"),
        r"build_in 'lambda' must be one of: local, container",
        "build_in",
    ),
    Case(
        "credentials of the wrong type",
        _set(credentials="hunter2"),
        r"credentials must be a Credentials object",
        "credentials",
    ),
    Case("wrong index password", _wrong_password, r"(?i)(401|unauthori[sz]ed|credentials|password)"),
    Case(
        "layer over the size limit",
        _set(packaging_options=PackagingOptions(unzipped_size_limit=100)),
        r"over the limit of 100 bytes",
    ),
    Case(
        "s3dir recording another layer",
        _foreign_record,
        r"s3dir_lambda .* already records layer 'someone-elses-layer', not 'sample-deps'",
    ),
]


def test_the_table_has_at_least_twenty_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_a_clear_error_and_writes_nothing(
    case: Case, project_copy, bucket, s3_client, lambda_client, credentials
):
    path = project_copy("uv")
    kwargs: dict[str, Any] = dict(
        layer_name="sample-deps",
        path_pyproject_toml=path,
        s3dir_lambda=f"s3://{bucket}/apps/sample/",
        tool="uv",
        credentials=credentials,
        s3_client=s3_client,
        lambda_client=lambda_client,
    )
    case.setup(kwargs, path)
    before_s3, before_lambda = s3_snapshot(s3_client, bucket), all_layer_versions(lambda_client)

    with pytest.raises(LayerError, match=case.error) as raised:
        deploy_layer(**kwargs, verbose=False)

    assert "\n" not in str(raised.value).strip() or case.id == "wrong index password"
    assert credentials.password not in str(raised.value)
    assert s3_snapshot(s3_client, bucket) == before_s3
    assert all_layer_versions(lambda_client) == before_lambda
    if case.prop is not None:
        problems = validate_layer_inputs(
            **{k: v for k, v in kwargs.items() if k not in ("s3_client", "lambda_client", "packaging_options")}
        )
        assert case.prop in [prop for prop, _ in problems], problems
        plan_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("credentials", "keep_last", "permissions", "build_in")
        }
        if case.prop not in ("keep_last", "permissions", "build_in", "credentials"):
            with pytest.raises(LayerError, match=case.error):
                plan_layer(**plan_kwargs)


def test_validate_lists_every_bad_input_at_once(project_copy):
    problems = validate_layer_inputs(
        layer_name="bad name",
        path_pyproject_toml=project_copy("uv"),
        s3dir_lambda="bucket/prefix",
        tool="uv",
        python_version="2.7",
        architecture="sparc",
        keep_last=-1,
        permissions=["nobody"],
    )
    assert [p for p, _ in problems] == [
        "layer_name",
        "s3dir_lambda",
        "python_version",
        "architecture",
        "keep_last",
        "permissions",
    ]


def test_good_inputs_validate_clean(project_copy, credentials):
    assert (
        validate_layer_inputs(
            layer_name="sample-deps",
            path_pyproject_toml=project_copy("uv"),
            s3dir_lambda="s3://bucket/prefix/",
            tool="uv",
            keep_last=3,
            permissions=["111122223333", "o-abcdefghij", "public"],
            credentials=credentials,
        )
        == []
    )


def test_credentials_repr_never_shows_the_password(credentials):
    assert credentials.password not in repr(Credentials(**credentials.to_dict()))
