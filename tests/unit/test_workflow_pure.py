"""The pure parts of plan/deploy: descriptions, retention, permissions, records, CLI settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerError, LayerRecord
from aws_lambda_artifact_builder.cli import CliError, build_parser, read_config, resolve_settings
from aws_lambda_artifact_builder.layer.inputs import parse_permission, parse_permissions, validate_layer_name
from aws_lambda_artifact_builder.layer.publish import (
    layer_description,
    parse_layer_description,
    versions_beyond_retention,
)
from aws_lambda_artifact_builder.layer.record import record_from_metadata

FP = "a" * 64
SHA = "gWaFIn7gsN1tUxfqveZB+eRF+ipqgII5veA/gzLZoHs="


def test_the_description_carries_fingerprint_and_code_sha_and_fits_lambdas_limit():
    text = layer_description(fingerprint=FP, code_sha256=SHA)
    assert len(text) <= 256
    assert parse_layer_description(text) == (FP, SHA)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "published by hand",
        f"aws-lambda-artifact-builder fingerprint={FP}",
        layer_description(fingerprint=FP[:-1], code_sha256=SHA),
    ],
)
def test_descriptions_of_other_versions_are_not_ours(text):
    assert parse_layer_description(text) is None


def _ours(version: int) -> tuple[int, str]:
    return version, layer_description(fingerprint=FP, code_sha256=SHA)


@pytest.mark.parametrize(
    "keep_last, current, expected",
    [
        (1, 6, [5, 3, 1]),
        (2, 6, [3, 1]),
        (3, 6, [1]),
        (4, 6, []),
        (2, 3, []),  # versions newer than the current one (after a rollback) are kept
        (1, 3, [1]),
    ],
)
def test_retention_deletes_only_our_versions_older_than_the_kept_ones(keep_last, current, expected):
    versions = [_ours(6), _ours(5), (4, "by hand"), _ours(3), (2, ""), _ours(1)]
    assert versions_beyond_retention(versions, keep_last=keep_last, current_version=current) == expected


@pytest.mark.parametrize(
    "value, sid, principal, org",
    [
        ("123456789012", "alab-account-123456789012", "123456789012", None),
        (" 012345678901 ", "alab-account-012345678901", "012345678901", None),
        ("o-abcdefghij", "alab-org-o-abcdefghij", "*", "o-abcdefghij"),
        ("public", "alab-public", "*", None),
        ("*", "alab-public", "*", None),
    ],
)
def test_permission_entries(value, sid, principal, org):
    perm = parse_permission(value)
    assert (perm.statement_id, perm.principal, perm.organization_id) == (sid, principal, org)


@pytest.mark.parametrize("value", ["12345", "o-short", "everyone", True, None, "arn:aws:iam::123456789012:root"])
def test_bad_permission_entries_name_themselves(value):
    with pytest.raises(LayerError, match=r"permissions entry .* is not a 12-digit account id"):
        parse_permission(value)


def test_permissions_none_means_unmanaged_and_a_string_is_an_error():
    assert parse_permissions(None) is None
    assert parse_permissions([]) == []
    with pytest.raises(LayerError, match="permissions must be a list"):
        parse_permissions("123456789012")


@pytest.mark.parametrize("name", ["a", "my-layer_2", "x" * 64])
def test_valid_layer_names(name):
    assert validate_layer_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "has space", "slash/name", "arn:aws:lambda:us-east-1:1:layer:x", None, 7]
)
def test_invalid_layer_names(name):
    with pytest.raises(LayerError, match="layer_name"):
        validate_layer_name(name)


def _record() -> LayerRecord:
    return LayerRecord.of(
        layer_name="deps",
        layer_version=12,
        layer_version_arn="arn:aws:lambda:us-east-1:123456789012:layer:deps:12",
        layer_arn="arn:aws:lambda:us-east-1:123456789012:layer:deps",
        fingerprint=FP,
        code_sha256=SHA,
        code_size=1234,
        s3uri_manifest="s3://b/p/layer/000012/uv.lock",
        tool="uv",
        python_version="3.12",
        architecture="arm64",
    )


def test_the_record_round_trips_through_s3_metadata():
    record = _record()
    metadata = record.to_metadata()
    assert all(isinstance(v, str) and v.isascii() for v in metadata.values())
    assert sum(len(k) + len(v) for k, v in metadata.items()) < 2048  # S3's user metadata limit
    back = record_from_metadata(metadata, body="text", s3uri_manifest=record.s3uri_manifest)
    assert back == record and back.manifest_content == "text"


@pytest.mark.parametrize(
    ("drop", "says"),
    [("fingerprint", "lacks fingerprint"), ("layer-version", "lacks layer-version"), ("alab-record-format", "format")],
)
def test_metadata_missing_a_fact_is_not_a_record(drop, says):
    metadata = _record().to_metadata()
    del metadata[drop]
    with pytest.raises(ValueError, match=says):
        record_from_metadata(metadata, body="", s3uri_manifest="")


# ---------------------------------------------------------------------------- CLI settings
def _project(tmp_path: Path, table: str = "", locks: tuple[str, ...] = ("uv.lock",)) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "1"\n' + table)
    for name in locks:
        (tmp_path / name).write_text("")
    return path


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["layer", "deploy", *argv])


def test_flags_override_the_table_which_overrides_defaults(tmp_path):
    path = _project(
        tmp_path,
        '[tool.aws_lambda_artifact_builder]\nlayer_name = "from-table"\ns3dir_lambda = "s3://b/p/"\nkeep_last = 3\n',
    )
    settings = resolve_settings(_args("--project", str(tmp_path), "--layer-name", "from-flag"))
    assert settings["layer_name"] == "from-flag"
    assert settings["s3dir_lambda"] == "s3://b/p/"
    assert settings["keep_last"] == 3
    assert settings["tool"] == "uv"  # the only lock file present
    assert (settings["python_version"], settings["architecture"], settings["build_in"]) == ("3.12", "x86_64", "local")
    assert settings["path_pyproject_toml"] == path.resolve()


def test_the_tool_must_be_given_when_several_locks_exist(tmp_path):
    _project(tmp_path, locks=("uv.lock", "requirements.txt"))
    with pytest.raises(
        CliError, match=r"found requirements.txt and uv.lock in .*, cannot choose: pass --tool .*\(pip or uv\)"
    ):
        resolve_settings(_args("--project", str(tmp_path), "--layer-name", "x", "--s3dir", "s3://b/p/"))


def test_the_table_rejects_unknown_keys_and_wrong_types(tmp_path):
    path = _project(tmp_path, '[tool.aws_lambda_artifact_builder]\nlayer = "x"\n')
    with pytest.raises(CliError, match="unknown keys layer;"):
        read_config(path)
    path = _project(tmp_path, '[tool.aws_lambda_artifact_builder]\npermissions = "public"\n')
    with pytest.raises(CliError, match="permissions must be a list"):
        read_config(path)
