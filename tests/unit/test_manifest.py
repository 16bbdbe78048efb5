"""The manifest model: runtime dependency sets, staleness, the fingerprint and package diffs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_lambda_artifact_builder.api import (
    LayerError,
    LayerTarget,
    ManifestError,
    compute_fingerprint,
    diff_dependencies,
    read_local_manifest,
    runtime_dependencies,
)
from aws_lambda_artifact_builder.layer.target import validate_python_version

T312_X86 = LayerTarget("3.12", "x86_64")
T310_ARM = LayerTarget("3.10", "arm64")


# ---------------------------------------------------------------------------- target
def test_target_validation():
    assert LayerTarget("python3.13", "arm64").runtime == "python3.13"
    assert T310_ARM.machine == "aarch64" and T310_ARM.manylinux_platform == "manylinux_2_26_aarch64"
    assert T312_X86.manylinux_platform == "manylinux_2_34_x86_64" and T312_X86.abi == "cp312"
    for bad in ("3.9", "2.7", "3", "three", "3.12.1"):
        with pytest.raises(LayerError, match="python_version"):
            LayerTarget(bad, "x86_64")
    with pytest.raises(LayerError, match="architecture 'amd64'"):
        LayerTarget("3.12", "amd64")


def test_a_newer_python_than_lambda_offers_is_accepted_with_a_warning():
    with pytest.warns(UserWarning, match="3.15 is newer"):
        assert validate_python_version("3.15") == "3.15"


# ---------------------------------------------------------------------------- requirements.txt
REQUIREMENTS = """\
# generated
--index-url https://user:token@pypi.example.com/simple/
Foo_Bar==1.0 \\
    --hash=sha256:abc
baz==2.0 ; python_version < "3.11"
qux==3.0 ; platform_machine == "aarch64"
zed===4.0  # comment
"""


def test_requirements_txt_markers_are_evaluated_for_the_target():
    assert runtime_dependencies("pip", REQUIREMENTS, T312_X86) == {"foo-bar": "1.0", "zed": "4.0"}
    assert runtime_dependencies("pip", REQUIREMENTS, T310_ARM) == {"foo-bar": "1.0", "baz": "2.0", "qux": "3.0", "zed": "4.0"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("foo>=1.0", "foo is not pinned"),
        ("foo", "foo is not pinned"),
        ("foo==1.*", "foo is not pinned"),
        ("foo==1.0,<2", "foo is not pinned"),
        ("-r other.txt", "-r is not supported"),
        ("-e ./local", "-e is not supported"),
        ("foo @ https://example.com/foo.whl", "comes from a URL"),
        ("foo==1.0 ; python_version <", "invalid|cannot read"),
    ],
)
def test_requirements_txt_errors_name_the_line(line: str, message: str):
    with pytest.raises(ManifestError, match=rf"requirements.txt:2: .*({message})"):
        runtime_dependencies("pip", "ok==1.0\n" + line + "\n", T312_X86)


# ---------------------------------------------------------------------------- uv.lock
UV_LOCK = """\
version = 1
revision = 3
requires-python = ">=3.10"
resolution-markers = ["python_full_version >= '3.11'", "python_full_version < '3.11'"]

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "tomli", marker = "python_full_version < '3.11'" },
    { name = "numpy", version = "2.2.0", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version >= '3.11'" },
    { name = "numpy", version = "2.0.0", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version < '3.11'" },
]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[package.metadata]
requires-dist = [
    { name = "requests", extras = ["socks"], specifier = ">=2" },
    { name = "tomli", marker = "python_full_version < '3.11'" },
    { name = "numpy" },
]

[[package]]
name = "requests"
version = "2.32.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "urllib3" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]

[[package]]
name = "urllib3"
version = "2.2.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "tomli"
version = "2.0.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version < '3.11'"]

[[package]]
name = "numpy"
version = "2.2.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version >= '3.11'"]

[[package]]
name = "pytest"
version = "8.0.0"
source = { registry = "https://pypi.org/simple" }
"""


def test_uv_lock_follows_markers_extras_and_forks_and_skips_dev_and_project():
    common = {"requests": "2.32.0", "urllib3": "2.2.0", "pysocks": "1.7.1"}
    assert runtime_dependencies("uv", UV_LOCK, T312_X86) == {**common, "numpy": "2.2.0"}
    assert runtime_dependencies("uv", UV_LOCK, T310_ARM) == {**common, "numpy": "2.0.0", "tomli": "2.0.1"}


def test_uv_lock_without_a_project_package_is_an_error():
    with pytest.raises(ManifestError, match="no project package"):
        runtime_dependencies("uv", 'version = 1\n[[package]]\nname = "x"\nversion = "1"\n', T312_X86)


def test_uv_lock_that_is_not_toml_is_an_error():
    with pytest.raises(ManifestError, match="not valid TOML"):
        runtime_dependencies("uv", "[[package]\n", T312_X86)


# ---------------------------------------------------------------------------- poetry.lock
POETRY_LOCK = """\
[[package]]
name = "attrs"
version = "23.1.0"
optional = false
python-versions = ">=3.7"
groups = ["main"]

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
python-versions = "*"
groups = ["main", "dev"]
markers = {main = "platform_system == 'Windows'", dev = "sys_platform == 'win32'"}

[[package]]
name = "exceptiongroup"
version = "1.2.0"
optional = false
python-versions = ">=3.7"
groups = ["main"]
markers = "python_version < '3.11'"

[[package]]
name = "pytest"
version = "8.0.0"
optional = false
python-versions = ">=3.8"
groups = ["dev"]

[[package]]
name = "ujson"
version = "5.0.0"
optional = true
python-versions = ">=3.8"
groups = ["main"]

[metadata]
lock-version = "2.1"
python-versions = ">=3.10"
content-hash = "x"
"""


def test_poetry_lock_takes_the_main_group_with_markers_for_the_target():
    assert runtime_dependencies("poetry", POETRY_LOCK, T312_X86) == {"attrs": "23.1.0"}
    assert runtime_dependencies("poetry", POETRY_LOCK, T310_ARM) == {"attrs": "23.1.0", "exceptiongroup": "1.2.0"}


def test_old_poetry_lock_without_groups_is_walked_from_the_declared_dependencies():
    lock = """\
[[package]]
name = "a"
version = "1.0"
[package.dependencies]
b = ">=1"
c = {version = ">=1", markers = "python_version < '3.11'"}

[[package]]
name = "b"
version = "2.0"

[[package]]
name = "c"
version = "3.0"

[[package]]
name = "pytest"
version = "8.0"
"""
    pyproject = {"tool": {"poetry": {"dependencies": {"python": "^3.10", "a": "^1.0"}}}}
    assert runtime_dependencies("poetry", lock, T312_X86, pyproject=pyproject) == {"a": "1.0", "b": "2.0"}
    assert runtime_dependencies("poetry", lock, T310_ARM, pyproject=pyproject) == {"a": "1.0", "b": "2.0", "c": "3.0"}


# ---------------------------------------------------------------------------- reading a project
def _project(tmp_path: Path, pyproject: str, manifest_name: str, manifest: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / manifest_name).write_text(manifest)
    return tmp_path / "pyproject.toml"


def test_missing_manifest_is_an_error_naming_the_file(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for tool, name in (("pip", "requirements.txt"), ("poetry", "poetry.lock"), ("uv", "uv.lock")):
        with pytest.raises(ManifestError, match=rf"{name} not found at {tmp_path}"):
            read_local_manifest(tmp_path / "pyproject.toml", tool, T312_X86)


def test_missing_pyproject_is_an_error(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("a==1\n")
    with pytest.raises(ManifestError, match="pyproject.toml not found"):
        read_local_manifest(tmp_path / "pyproject.toml", "pip", T312_X86)


def test_requirements_stale_against_pyproject(tmp_path: Path):
    path = _project(tmp_path, "[project]\nname='x'\ndependencies=['a>=2', 'b']\n", "requirements.txt", "a==1.0\nb==1\n")
    with pytest.raises(ManifestError, match=r"stale: pyproject.toml requires a>=2, but 1.0 is locked"):
        read_local_manifest(path, "pip", T312_X86)
    path = _project(tmp_path, "[project]\nname='x'\ndependencies=['a', 'c']\n", "requirements.txt", "a==1.0\n")
    with pytest.raises(ManifestError, match=r"requires c, which is not locked"):
        read_local_manifest(path, "pip", T312_X86)


def test_uv_lock_stale_when_pyproject_dependencies_changed(tmp_path: Path):
    pyproject = "[project]\nname='app'\ndependencies=['requests[socks]>=2', \"tomli; python_full_version < '3.11'\", 'numpy']\n"
    path = _project(tmp_path, pyproject, "uv.lock", UV_LOCK)
    assert read_local_manifest(path, "uv", T312_X86).dependencies["numpy"] == "2.2.0"
    path = _project(tmp_path, pyproject.replace("'numpy'", "'numpy', 'flask'"), "uv.lock", UV_LOCK)
    with pytest.raises(ManifestError, match="uv.lock is stale.*run `uv lock`"):
        read_local_manifest(path, "uv", T312_X86)


def test_poetry_lock_stale_against_caret_constraint(tmp_path: Path):
    pyproject = "[tool.poetry.dependencies]\npython='^3.10'\nattrs='^24.1'\n"
    path = _project(tmp_path, pyproject, "poetry.lock", POETRY_LOCK)
    with pytest.raises(ManifestError, match=r"stale: pyproject.toml requires attrs<25,>=24.1, but 23.1.0"):
        read_local_manifest(path, "poetry", T312_X86)
    path = _project(tmp_path, pyproject.replace("^24.1", "^23.0"), "poetry.lock", POETRY_LOCK)
    assert read_local_manifest(path, "poetry", T312_X86).dependencies == {"attrs": "23.1.0"}


# ---------------------------------------------------------------------------- fingerprint
BASE = dict(tool="uv", manifest_content=UV_LOCK, python_version="3.12", architecture="x86_64")


def test_fingerprint_is_stable_and_hex():
    fp = compute_fingerprint(**BASE)
    assert fp == compute_fingerprint(**BASE)
    assert len(fp) == 64 and int(fp, 16) >= 0


@pytest.mark.parametrize(
    "same",
    [
        {"manifest_content": UV_LOCK.replace("\n", "\r\n")},
        {"manifest_content": UV_LOCK.replace("\n", "  \n")},
        {"manifest_content": UV_LOCK + "\n\n\n"},
        {"manifest_content": ("\ufeff" + UV_LOCK).encode()},
        {"manifest_content": UV_LOCK.encode()},
        {"ignore_packages": ["Botocore", "boto3", "s3transfer", "pip", "setuptools", "wheel"]},
        {"python_version": "python3.12"},
    ],
)
def test_fingerprint_ignores_what_cannot_change_the_layer(same):
    assert compute_fingerprint(**{**BASE, **same}) == compute_fingerprint(**BASE)


def test_fingerprint_ignores_a_rotated_token_in_an_index_url():
    a = "--extra-index-url https://user:token-1@pypi.example.com/simple/\nfoo==1.0\n"
    b = "--extra-index-url https://user:token-2@pypi.example.com/simple/\nfoo==1.0\n"
    kw = dict(tool="pip", python_version="3.12", architecture="x86_64")
    assert compute_fingerprint(manifest_content=a, **kw) == compute_fingerprint(manifest_content=b, **kw)


@pytest.mark.parametrize(
    "different",
    [
        {"python_version": "3.13"},
        {"architecture": "arm64"},
        {"tool": "poetry"},
        {"manifest_content": UV_LOCK.replace('version = "2.2.0"', 'version = "2.2.1"')},
        {"ignore_packages": []},
        {"packaging_options": {"compile_bytecode": True}},
    ],
)
def test_fingerprint_changes_with_what_changes_the_layer(different):
    assert compute_fingerprint(**{**BASE, **different}) != compute_fingerprint(**BASE)


def test_fingerprint_rejects_bad_inputs():
    with pytest.raises(LayerError, match="unknown layer build tool"):
        compute_fingerprint(**{**BASE, "tool": "conda"})
    with pytest.raises(LayerError, match="ignore_packages must be a list"):
        compute_fingerprint(**BASE, ignore_packages="boto3")


# ---------------------------------------------------------------------------- diffs
def test_package_diff():
    changes = diff_dependencies({"a": "1", "b": "1", "c": "1"}, {"a": "1", "b": "2", "d": "1"})
    assert changes.added == {"d": "1"}
    assert changes.removed == {"c": "1"}
    assert changes.changed == {"b": ("1", "2")}
    assert changes.lines() == ["~ b 1 -> 2", "- c 1", "+ d 1"]
    assert changes.to_dict()["changed"] == {"b": {"old": "1", "new": "2"}}
    assert not changes.is_empty
    assert diff_dependencies({"a": "1"}, {"a": "1"}).is_empty
