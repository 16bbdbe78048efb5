"""The pure half of the build stage: locked pins, target wheel tags and the install plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    BuildError,
    Credentials,
    LayerError,
    LayerTarget,
    ManifestError,
    plan_install_steps,
)
from aws_lambda_artifact_builder.layer.build import check_installed, pip_transport_env
from aws_lambda_artifact_builder.layer.install_plan import (
    KEEP_ENV,
    LockedPin,
    locked_pins,
    mask_secrets,
    pins_without_target_wheel,
    requirement_index_options,
    target_platforms,
    target_tags,
    uv_python_platform,
)
from packaging.tags import Tag

PASSWORD = "s3cr@t/pa%ss"
CREDS = Credentials(
    index_name="corp-index", index_url="https://pkgs.example.com/simple/", username="ci", password=PASSWORD
)
ARM312 = LayerTarget(python_version="3.12", architecture="arm64")
X86_311 = LayerTarget(python_version="3.11", architecture="x86_64")

UV_LOCK = """\
version = 1
requires-python = ">=3.10"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "orjson" }, { name = "internal-lib" }]

[[package]]
name = "orjson"
version = "3.10.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.example/orjson-3.10.0.tar.gz", hash = "sha256:aaa" }
wheels = [
    { url = "https://files.example/orjson-3.10.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", hash = "sha256:bbb" },
    { url = "https://files.example/orjson-3.10.0-cp312-cp312-manylinux_2_17_x86_64.whl", hash = "sha256:ccc" },
]

[[package]]
name = "internal-lib"
version = "2.0"
source = { registry = "https://pkgs.example.com/simple/" }
wheels = [{ url = "https://pkgs.example.com/packages/internal_lib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", hash = "sha256:ddd" }]
"""

POETRY_LOCK = """\
[[package]]
name = "orjson"
version = "3.10.0"
groups = ["main"]
files = [
    {file = "orjson-3.10.0-cp312-cp312-manylinux_2_17_aarch64.whl", hash = "sha256:bbb"},
]

[[package]]
name = "internal-lib"
version = "2.0"
groups = ["main"]
files = [{file = "internal_lib-2.0-py3-none-any.whl", hash = "sha256:ddd"}]

[package.source]
type = "legacy"
url = "https://pkgs.example.com/simple"
reference = "corp-index"

[[package]]
name = "from-git"
version = "1.0"
groups = ["main"]
files = []

[package.source]
type = "git"
url = "https://example.com/x.git"
reference = "main"
resolved_reference = "abc"
"""


def test_target_platforms_stop_at_the_runtime_glibc_and_include_legacy_aliases():
    arm = target_platforms(ARM312)
    assert arm[0] == "manylinux_2_34_aarch64" and arm[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_35_aarch64" not in arm and not any("x86_64" in p for p in arm)
    x86 = target_platforms(X86_311)
    assert x86[0] == "manylinux_2_26_x86_64" and "manylinux_2_28_x86_64" not in x86
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(x86)
    assert uv_python_platform(ARM312) == "aarch64-manylinux_2_34"
    assert uv_python_platform(X86_311) == "x86_64-manylinux_2_17"


def test_target_tags_accept_abi3_and_pure_wheels_but_not_another_cpu_or_python():
    tags = target_tags(ARM312)
    assert Tag("cp312", "cp312", "manylinux_2_17_aarch64") in tags
    assert Tag("cp38", "abi3", "manylinux_2_28_aarch64") in tags
    assert Tag("py3", "none", "any") in tags
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") not in tags
    assert Tag("cp311", "cp311", "manylinux_2_17_aarch64") not in tags
    assert Tag("cp312", "cp312", "manylinux_2_35_aarch64") not in tags
    assert Tag("cp312", "cp312", "linux_aarch64") not in tags


def test_uv_pins_carry_index_hashes_and_files_and_find_the_missing_wheel():
    pins = locked_pins(tool="uv", manifest_content=UV_LOCK, dependencies={"orjson": "3.10.0", "internal-lib": "2.0"})
    assert [p.name for p in pins] == ["internal-lib", "orjson"]
    internal, orjson = pins
    assert internal.index_url == "https://pkgs.example.com/simple/"
    assert orjson.hashes == ("sha256:aaa", "sha256:bbb", "sha256:ccc")
    assert "orjson-3.10.0.tar.gz" in (orjson.filenames or ())
    assert pins_without_target_wheel(pins, ARM312) == [internal]
    assert pins_without_target_wheel(pins, LayerTarget(python_version="3.12", architecture="x86_64")) == []


def test_poetry_pins_take_the_locked_source_and_refuse_git():
    pins = locked_pins(
        tool="poetry", manifest_content=POETRY_LOCK, dependencies={"orjson": "3.10.0", "internal-lib": "2.0"}
    )
    assert {p.name: p.index_url for p in pins} == {"internal-lib": "https://pkgs.example.com/simple", "orjson": None}
    with pytest.raises(ManifestError, match="from-git 1.0 comes from a git source"):
        locked_pins(tool="poetry", manifest_content=POETRY_LOCK, dependencies={"from-git": "1.0"})
    with pytest.raises(ManifestError, match="not in the lock"):
        locked_pins(tool="poetry", manifest_content=POETRY_LOCK, dependencies={"orjson": "9.9"})


def test_requirements_pins_keep_hashes_and_index_options():
    text = (
        "--index-url https://mirror.example/simple\n"
        "--only-binary :all:\n"
        "orjson==3.10.0 \\\n    --hash=sha256:bbb --hash=sha256:aaa\n"
        "attrs==23.1.0\n"
    )
    pins = locked_pins(tool="pip", manifest_content=text, dependencies={"orjson": "3.10.0", "attrs": "23.1.0"})
    assert pins == [
        LockedPin(name="attrs", version="23.1.0"),
        LockedPin(name="orjson", version="3.10.0", hashes=("sha256:aaa", "sha256:bbb")),
    ]
    assert requirement_index_options(text) == ("--index-url https://mirror.example/simple",)


def _plan(tool: str, pins: list[LockedPin], **kw):
    return plan_install_steps(
        tool=tool, target=ARM312, pins=pins, dir_python="/w/python", dir_work="/w", python="/usr/bin/python3", **kw
    )


def test_pip_plan_targets_the_platform_without_a_secret_anywhere_in_the_plan():
    pins = [
        LockedPin(name="internal-lib", version="2.0", index_url="https://pkgs.example.com/simple", hashes=("sha256:d",))
    ]
    (step,) = _plan("poetry", pins, credentials=CREDS)
    argv = list(step.argv)
    assert argv[:4] == ["/usr/bin/python3", "-m", "pip", "install"]
    for flag in ("--no-deps", "--only-binary=:all:", "--require-hashes", "--no-compile"):
        assert flag in argv
    assert argv[argv.index("--python-version") + 1] == "3.12" and argv[argv.index("--implementation") + 1] == "cp"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"] == target_platforms(ARM312)
    assert argv[argv.index("--target") + 1] == "/w/python" and argv[-2:] == ["-r", "/w/layer-requirements.txt"]
    assert step.files["/w/layer-requirements.txt"].splitlines()[1:] == ["internal-lib==2.0 --hash=sha256:d"]
    assert step.secret_env_names == ("PIP_INDEX_URL",)
    assert step.env["PIP_CONFIG_FILE"]
    blob = json.dumps(step.to_dict())
    assert PASSWORD not in blob and "s3cr%40t" not in blob
    secret = step.secret_env(CREDS)
    assert secret["PIP_INDEX_URL"].startswith("https://ci:s3cr%40t%2Fpa%25ss@pkgs.example.com/simple/")


def test_native_plan_lets_the_target_python_choose_and_build():
    (step,) = _plan("pip", [LockedPin(name="attrs", version="23.1.0")], native=True)
    assert "--platform" not in step.argv and "--only-binary=:all:" not in step.argv
    assert "--require-hashes" not in step.argv  # requirements.txt without hashes
    (uv,) = _plan("uv", [LockedPin(name="attrs", version="23.1.0", index_url="https://pypi.org/simple")], native=True)
    assert "--python-platform" not in uv.argv and ":all:" not in uv.argv


def test_poetry_plan_keeps_pypi_default_and_puts_other_indexes_in_the_pins_file():
    pins = [
        LockedPin(name="a", version="1", hashes=("sha256:1",)),
        LockedPin(name="b", version="1", index_url="https://pkgs.example.com/simple", hashes=("sha256:2",)),
        LockedPin(name="c", version="1", index_url="https://other.example/simple/", hashes=("sha256:3",)),
    ]
    (step,) = _plan("poetry", pins, credentials=CREDS)
    text = step.files["/w/layer-requirements.txt"]
    assert "--extra-index-url https://other.example/simple/" in text and "pkgs.example.com" not in text
    assert "--index-url" not in text.replace("--extra-index-url", "")
    assert step.secret_env_names == ("PIP_EXTRA_INDEX_URL",)


def test_uv_plan_names_the_credentials_index_and_passes_only_names_of_secrets():
    pins = [
        LockedPin(
            name="internal-lib", version="2.0", index_url="https://pkgs.example.com/simple/", hashes=("sha256:d",)
        ),
        LockedPin(name="orjson", version="3.10.0", index_url="https://pypi.org/simple", hashes=("sha256:b",)),
    ]
    (step,) = _plan("uv", pins, credentials=CREDS, tool_command=["/opt/uv"])
    argv = list(step.argv)
    assert argv[:3] == ["/opt/uv", "pip", "install"]
    assert argv[argv.index("--python-platform") + 1] == "aarch64-manylinux_2_34"
    assert argv[argv.index("--python") + 1] == "/usr/bin/python3"
    assert "UV_DEFAULT_INDEX" not in step.env  # PyPI stays the default
    assert step.env["UV_INDEX"] == "corp-index=https://pkgs.example.com/simple/"
    assert step.env["UV_NO_CONFIG"] == "1"
    assert step.secret_env_names == ("UV_INDEX_CORP_INDEX_USERNAME", "UV_INDEX_CORP_INDEX_PASSWORD")
    assert step.secret_env(CREDS)["UV_INDEX_CORP_INDEX_PASSWORD"] == PASSWORD
    assert PASSWORD not in json.dumps(step.to_dict())
    with pytest.raises(LayerError, match="needs credentials"):
        step.secret_env(None)


def test_child_env_drops_the_users_installer_settings_but_keeps_transport():
    (step,) = _plan("pip", [LockedPin(name="attrs", version="23.1.0")], credentials=CREDS)
    base = {
        "PATH": "/bin",
        "PIP_FIND_LINKS": "/opt/wheels",
        "PIP_INDEX_URL": "https://user:theirs@elsewhere/simple",
        "PIP_CERT": "/etc/ca.pem",
        "UV_INDEX_URL": "https://elsewhere/simple",
        "UV_CACHE_DIR": "/cache/uv",
    }
    env = step.child_env(base, CREDS)
    assert env["PATH"] == "/bin" and env["PIP_CERT"] == "/etc/ca.pem" and env["UV_CACHE_DIR"] == "/cache/uv"
    assert "PIP_FIND_LINKS" not in env and "PIP_INDEX_URL" not in env and "UV_INDEX_URL" not in env
    assert PASSWORD.replace("@", "%40").replace("/", "%2F").replace("%ss", "%25ss") in env["PIP_EXTRA_INDEX_URL"]
    assert base["PIP_INDEX_URL"].endswith("elsewhere/simple")  # the caller's mapping is untouched
    assert {"PIP_CERT", "UV_CACHE_DIR"} <= KEEP_ENV


def test_pip_transport_settings_are_carried_over_and_nothing_else(tmp_path: Path):
    """pip reads its own configuration (here the user's ~/.config/pip/pip.conf); only transport settings come over."""
    conf = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(
        "[global]\ncert = /etc/corp-ca.pem\nfind-links = /opt/wheels\nindex-url = https://x/simple\n"
        "[install]\ntimeout = 60\nno-binary = :all:\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_"))}
    environ["HOME"] = str(tmp_path / "home")
    assert pip_transport_env(environ) == {"PIP_CERT": "/etc/corp-ca.pem", "PIP_TIMEOUT": "60"}
    assert pip_transport_env({**environ, "PIP_CONFIG_FILE": os.devnull}) == {}


def test_masking_removes_the_password_raw_encoded_and_in_urls():
    text = f"https://ci:s3cr%40t%2Fpa%25ss@pkgs.example.com/simple/ and {PASSWORD} and s3cr%40t%2Fpa%25ss"
    masked = mask_secrets(text, CREDS)
    assert "s3cr" not in masked and "pkgs.example.com/simple/" in masked


def _dist(root: Path, name: str, version: str, requires: list[str] = ()) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = [f"Name: {name}", f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("Metadata-Version: 2.1\n" + "\n".join(meta) + "\n")
    (info / "RECORD").write_text(f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_check_installed_names_what_is_unpinned_extra_or_missing(tmp_path: Path):
    _dist(tmp_path, "web", "1.0", ["core>=2", "winonly; sys_platform == 'win32'", "opt; extra == 'x'"])
    _dist(tmp_path, "core", "2.1")
    pins = [LockedPin(name="web", version="1.0"), LockedPin(name="core", version="2.1")]
    check_installed(tmp_path, pins, ARM312, manifest_name="requirements.txt")
    _dist(tmp_path, "stray", "0.1", ["helper"])
    with pytest.raises(BuildError) as e:
        check_installed(
            tmp_path, [*pins, LockedPin(name="gone", version="1")], ARM312, manifest_name="requirements.txt"
        )
    message = str(e.value)
    assert "gone 1 is pinned but was not installed" in message
    assert "stray 0.1 was installed but is not pinned" in message
    assert "stray 0.1 requires helper, which requirements.txt does not pin" in message
    assert "winonly" not in message and "opt" not in message


def test_old_poetry_locks_keep_files_in_metadata_and_unknown_files_are_not_a_missing_wheel():
    old_lock = (
        '[[package]]\nname = "orjson"\nversion = "3.10.0"\ncategory = "main"\noptional = false\n\n'
        '[[package]]\nname = "attrs"\nversion = "23.1.0"\ncategory = "main"\noptional = false\n\n'
        '[metadata]\nlock-version = "1.1"\n\n[metadata.files]\n'
        'orjson = [{file = "orjson-3.10.0-cp312-cp312-manylinux_2_17_x86_64.whl", hash = "sha256:ccc"}]\n'
    )
    orjson, attrs = sorted(
        locked_pins(tool="poetry", manifest_content=old_lock, dependencies={"orjson": "3.10.0", "attrs": "23.1.0"}),
        key=lambda p: p.name != "orjson",
    )
    assert orjson.hashes == ("sha256:ccc",) and attrs.filenames is None
    assert pins_without_target_wheel([orjson, attrs], ARM312) == [orjson]


# ---------------------------------------------------------------------------- issue 11/14: floors, logins, find-links
def test_amazon_linux_2_runtimes_install_uv_locks_with_pip_down_from_manylinux_2_26():
    from aws_lambda_artifact_builder.layer.install_plan import installer_for

    for version in ("3.10", "3.11"):
        target = LayerTarget(python_version=version, architecture="x86_64")
        assert installer_for("uv", target) == "pip" and installer_for("uv", target, native=True) == "uv"
        pins = [LockedPin(name="pandas", version="2.3.3", index_url="https://pypi.org/simple", hashes=("sha256:aa",))]
        (step,) = plan_install_steps(tool="uv", target=target, pins=pins, dir_python="/o", dir_work="/w", python="/py")
        platforms = [step.argv[i + 1] for i, a in enumerate(step.argv) if a == "--platform"]
        assert platforms[0] == "manylinux_2_26_x86_64" and "manylinux_2_24_x86_64" in platforms
        assert "manylinux_2_27_x86_64" not in platforms and step.argv[:3] == ("/py", "-m", "pip")
    al2023 = LayerTarget(python_version="3.12", architecture="arm64")
    assert installer_for("uv", al2023) == "uv" and uv_python_platform(al2023) == "aarch64-manylinux_2_34"


def test_logins_inside_requirements_reach_pip_through_the_environment_only(tmp_path: Path):
    from aws_lambda_artifact_builder.layer.install_plan import requirement_index_logins

    text = (
        "--index-url http://user:p@ss@w0rd@pkgs.example.com/simple/\n"
        "--extra-index-url https://${TOKEN}@other.example/simple/\n"
        "--find-links ./wheels\n"
        "foo==1.0\n"
    )
    options = requirement_index_options(text, base_dir=tmp_path)
    assert options == (
        "--index-url http://${ALAB_REQUIREMENTS_LOGIN_0}@pkgs.example.com/simple/",
        "--extra-index-url https://${TOKEN}@other.example/simple/",
        f"--find-links {tmp_path / 'wheels'}",
    )
    assert requirement_index_logins(text) == {"ALAB_REQUIREMENTS_LOGIN_0": "user:p@ss@w0rd"}
    (step,) = plan_install_steps(
        tool="pip",
        target=ARM312,
        pins=[LockedPin(name="foo", version="1.0")],
        dir_python="/o",
        dir_work="/w",
        python="/py",
        requirement_options=options,
    )
    dumped = json.dumps(step.to_dict())
    assert "w0rd" not in dumped and "p@ss" not in dumped
