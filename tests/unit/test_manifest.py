"""The manifest model: runtime dependency sets, staleness, the fingerprint and package diffs."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    LayerError,
    LayerInputError,
    LayerTarget,
    ManifestError,
    compute_fingerprint,
    diff_dependencies,
    read_local_manifest,
    runtime_dependencies,
)
from aws_lambda_artifact_builder.layer.manifest import (
    RuntimePackage,
    RuntimeSet,
    legacy_fingerprint_v1,
    poetry_constraint_to_pep440,
    python_allowed,
    requirements_runtime_set,
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
    --only-binary=:all:
baz==2.0 ; python_version < "3.11"
qux==3.0 ; platform_machine == "aarch64"
zed===4.0  # comment
"""


def test_requirements_txt_markers_are_evaluated_for_the_target():
    assert runtime_dependencies("pip", REQUIREMENTS, T312_X86) == {"foo-bar": "1.0", "zed": "4.0"}
    assert runtime_dependencies("pip", REQUIREMENTS, T310_ARM) == {
        "foo-bar": "1.0",
        "baz": "2.0",
        "qux": "3.0",
        "zed": "4.0",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("foo>=1.0", "foo is not pinned"),
        ("foo", "foo is not pinned"),
        ("foo==1.*", "foo is not pinned"),
        ("foo==1.0,<2", "foo is not pinned"),
        ("-r other.txt", "-r is not supported"),
        ("-e ./local", "local folder"),
        ("--no-deps", "option --no-deps is not supported"),
        ("foo @ https://example.com/foo.whl", "comes from a URL"),
        ("foo==1.0 ; python_version <", "invalid|cannot read"),
    ],
)
def test_requirements_txt_errors_name_the_line(line: str, message: str):
    with pytest.raises(ManifestError, match=rf"requirements.txt:2: .*({message})"):
        runtime_dependencies("pip", "ok==1.0\n" + line + "\n", T312_X86)


FORKED = """\
numpy==2.0.2 ; python_full_version < '3.11' \\
    --hash=sha256:aaa
numpy==2.2.6 ; python_full_version >= '3.11' \\
    --hash=sha256:bbb \\
    --hash=sha256:ccc
six==1.16.0 --hash=sha256:ddd
"""


def test_a_package_pinned_twice_under_markers_takes_the_line_that_holds_for_the_target():
    new = {p.name: p for p in requirements_runtime_set(FORKED, T312_X86).packages}
    old = {p.name: p for p in requirements_runtime_set(FORKED, T310_ARM).packages}
    assert (new["numpy"].version, new["numpy"].hashes) == ("2.2.6", ("sha256:bbb", "sha256:ccc"))
    assert (old["numpy"].version, old["numpy"].hashes) == ("2.0.2", ("sha256:aaa",))


def test_two_pins_that_both_hold_for_the_target_are_an_error():
    with pytest.raises(ManifestError, match=r"requirements.txt:2: a is pinned to 1.0 on line 1 and to 2.0 here"):
        requirements_runtime_set("a==1.0\na==2.0 ; sys_platform == 'linux'\n", T312_X86)


def test_hashes_on_some_lines_only_are_refused_like_pip():
    with pytest.raises(
        ManifestError, match=r"requirements.txt:2: b has no --hash while other lines have one; pip refuses"
    ):
        requirements_runtime_set("a==1.0 --hash=sha256:aa\nb==2.0\n", T312_X86)


@pytest.mark.parametrize("content", [b"a==1.0\n\xff\xfe\n", "a==1.0 ; python_version <<< '3'\n"])
def test_unreadable_requirements_are_a_manifest_error(tmp_path: Path, content):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "requirements.txt").write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ManifestError, match="requirements.txt"):
        read_local_manifest(tmp_path / "pyproject.toml", "pip", T312_X86)


def test_requires_python_is_checked_against_the_target(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\nrequires-python='>=3.12'\n")
    (tmp_path / "requirements.txt").write_text("a==1.0\n")
    assert read_local_manifest(tmp_path / "pyproject.toml", "pip", T312_X86).dependencies == {"a": "1.0"}
    with pytest.raises(ManifestError, match=r"excludes the target python3.10"):
        read_local_manifest(tmp_path / "pyproject.toml", "pip", T310_ARM)


@pytest.mark.parametrize(
    ("spec", "allowed", "refused"),
    [
        (">=3.10.4", "3.10", "3.9"),
        ("<3.12", "3.11", "3.12"),
        ("==3.12.*", "3.12", "3.13"),
        (">=3.11,<3.13", "3.12", "3.13"),
    ],
)
def test_python_allowed_accepts_any_patch_release(spec, allowed, refused):
    assert python_allowed(spec, allowed) and not python_allowed(spec, refused)


def test_poetry_python_constraints():
    assert poetry_constraint_to_pep440("^3.10", "x") == ">=3.10,<4"
    assert poetry_constraint_to_pep440(">=3.9,<4.0", "x") == ">=3.9,<4.0"
    assert poetry_constraint_to_pep440("~3.11", "x") == ">=3.11,<3.12"
    assert poetry_constraint_to_pep440(">=3.9 || ^2.7", "x") is None
    with pytest.raises(ManifestError, match="cannot read the python constraint"):
        poetry_constraint_to_pep440("^abc", "poetry.lock")


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
    with pytest.raises(ManifestError, match=r"stale: pyproject.toml requires a>=2, but 1.0 is pinned"):
        read_local_manifest(path, "pip", T312_X86)
    path = _project(tmp_path, "[project]\nname='x'\ndependencies=['a', 'c']\n", "requirements.txt", "a==1.0\n")
    with pytest.raises(ManifestError, match=r"requires c, which is not pinned"):
        read_local_manifest(path, "pip", T312_X86)


# ---------------------------------------------------------------------------- fingerprint (format 2: the runtime set)
def _set(*rows, options=()):
    return RuntimeSet(
        packages=tuple(RuntimePackage(name=n, version=v, source=src, hashes=tuple(h)) for n, v, src, h in rows),
        index_options=tuple(options),
    )


SET = _set(("attrs", "23.1.0", "https://pypi.org/simple", ["sha256:aa", "sha256:bb"]), ("six", "1.16.0", "", []))
BASE = dict(tool="uv", runtime_set=SET, python_version="3.12", architecture="x86_64")


def test_fingerprint_is_stable_and_hex():
    fp = compute_fingerprint(**BASE)
    assert fp == compute_fingerprint(**BASE)
    assert len(fp) == 64 and int(fp, 16) >= 0


@pytest.mark.parametrize(
    "same",
    [
        {
            "runtime_set": _set(
                ("six", "1.16.0", "", []), ("attrs", "23.1.0", "https://pypi.org/simple", ["sha256:aa", "sha256:bb"])
            )
        },
        {"ignore_packages": ["Botocore", "boto3", "s3transfer", "pip", "setuptools", "wheel"]},
        {"python_version": "python3.12"},
    ],
)
def test_fingerprint_ignores_what_cannot_change_the_layer(same):
    assert compute_fingerprint(**{**BASE, **same}) == compute_fingerprint(**BASE)


def test_fingerprint_ignores_a_rotated_token_in_an_index_url():
    a = "--extra-index-url https://user:token-1@pypi.example.com/simple/\nfoo==1.0\n"
    b = "--extra-index-url https://user:p@ss-2@pypi.example.com/simple/\nfoo==1.0\n"
    kw = dict(tool="pip", python_version="3.12", architecture="x86_64")
    sa, sb = requirements_runtime_set(a, T312_X86), requirements_runtime_set(b, T312_X86)
    assert compute_fingerprint(runtime_set=sa, **kw) == compute_fingerprint(runtime_set=sb, **kw)
    assert "token" not in str(sa) and "ss-2" not in str(sb)


@pytest.mark.parametrize(
    "different",
    [
        {"python_version": "3.13"},
        {"architecture": "arm64"},
        {"tool": "poetry"},
        {
            "runtime_set": _set(
                ("attrs", "23.1.1", "https://pypi.org/simple", ["sha256:aa", "sha256:bb"]), ("six", "1.16.0", "", [])
            )
        },
        {
            "runtime_set": _set(
                ("attrs", "23.1.0", "https://pypi.org/simple", ["sha256:aa", "sha256:cc"]), ("six", "1.16.0", "", [])
            )
        },
        {
            "runtime_set": _set(
                ("attrs", "23.1.0", "https://mirror.example/simple", ["sha256:aa", "sha256:bb"]),
                ("six", "1.16.0", "", []),
            )
        },
        {"runtime_set": _set(("attrs", "23.1.0", "https://pypi.org/simple", ["sha256:aa", "sha256:bb"]))},
        {"ignore_packages": []},
        {"packaging_options": {"compile_bytecode": True}},
    ],
)
def test_fingerprint_changes_with_what_changes_the_layer(different):
    assert compute_fingerprint(**{**BASE, **different}) != compute_fingerprint(**BASE)


def test_fingerprint_rejects_bad_inputs():
    with pytest.raises(LayerInputError, match="unknown layer build tool"):
        compute_fingerprint(**{**BASE, "tool": "conda"})
    with pytest.raises(ManifestError, match="ignore_packages must be a list"):
        compute_fingerprint(**BASE, ignore_packages="boto3")


def test_legacy_fingerprint_is_the_format_1_digest_of_the_normalised_text():
    kw = dict(tool="pip", python_version="3.12", architecture="x86_64")
    text = "foo==1.0\n"
    assert legacy_fingerprint_v1(manifest_content=text, **kw) == legacy_fingerprint_v1(
        manifest_content="foo==1.0  \r\n\n", **kw
    )
    assert legacy_fingerprint_v1(manifest_content=text, **kw) != compute_fingerprint(
        runtime_set=requirements_runtime_set(text, T312_X86), **kw
    )


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
