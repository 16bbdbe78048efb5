"""Our lock reading and local builds against the real-world corpus in ``tests/fixtures/realworld/``.

Each case holds a lock made by the real uv, poetry or pip tooling (public projects or generated at pinned
tool versions) and an ``expected.json`` whose runtime sets the peers produced (``generate.py``): for every
Lambda target we must read exactly that set, or refuse with a one-line error where the peers refuse.
One local build per case must install exactly the expected set of its build target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import (
    LayerError,
    LayerPathLayout,
    LayerTarget,
    build_layer_artifacts_using_pip_in_local,
    build_layer_artifacts_using_poetry_in_local,
    build_layer_artifacts_using_uv_in_local,
    read_local_manifest,
)
from aws_lambda_artifact_builder.layer.manifest import find_uv_lock
from aws_lambda_artifact_builder.layer.package import read_distributions
from fixtures.realworld import generate
from support.ci import IN_CI
from support.pythons import python_for_lock

DIR_CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "realworld"
CASES = sorted(p.parent.name for p in DIR_CORPUS.glob("*/expected.json"))
TARGETS = [f"{py}-{arch}" for py in ("3.10", "3.12", "3.13") for arch in ("x86_64", "arm64")]
BUILDERS = {
    "pip": build_layer_artifacts_using_pip_in_local,
    "poetry": build_layer_artifacts_using_poetry_in_local,
    "uv": build_layer_artifacts_using_uv_in_local,
}
#: The git case's repository is served from its git-src/ folder at GIT_HOST, committed as generate.py does.
GIT_HOST, GIT_ENV = generate.GIT_HOST, generate.GIT_ENV


def expected(case: str) -> dict:
    return json.loads((DIR_CORPUS / case / "expected.json").read_text())


def target_of(key: str) -> LayerTarget:
    python_version, architecture = key.split("-")
    return LayerTarget(python_version=python_version, architecture=architecture)


#: Every class of lock that issue 11 names; each must be covered by at least one case.
REQUIRED_CLASSES = {
    "public",
    "optional-dependencies",
    "python_version-markers",
    "platform-markers",
    "arch-markers",
    "fork",
    "dependency-groups",
    "poetry-python-key",
    "poetry-platform-key",
    "poetry-multiple-constraints",
    "poetry-caret-or",
    "poetry-readme",
    "poetry-1.x-lock",
    "uv-pip-compile-universal",
    "poetry-export",
    "uv-workspace",
    "path-dependency",
    "git-dependency-pinned-commit",
    "al2-manylinux_2_24-2_28-wheels",
    "sdist-only-pure",
    "sdist-only-compiled",
    "requires-python-excludes-target",
    "pinned-twice-under-markers",
    "mixed-hash-mode",
    "relative-find-links",
}


def test_the_corpus_is_large_enough_and_every_case_names_its_source():
    assert len(CASES) >= 25, CASES
    covered = {c for case in CASES for c in expected(case)["classes"]}
    assert covered >= REQUIRED_CLASSES, REQUIRED_CLASSES - covered
    for case in CASES:
        assert (DIR_CORPUS / case / "SOURCE").read_text().strip(), case
        spec = expected(case)
        assert spec["tool"] in BUILDERS and (DIR_CORPUS / case / spec["project"]).is_file(), case
        assert sorted(spec["targets"]) == sorted(TARGETS), case


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory):
    """A pristine copy of a case per module: reading or building must not touch the committed corpus."""
    copies: dict[str, Path] = {}

    def copy(case: str) -> Path:
        if case not in copies:
            dest = tmp_path_factory.mktemp("corpus") / case
            shutil.copytree(DIR_CORPUS / case, dest)
            copies[case] = dest
        return copies[case] / expected(case)["project"]

    return copy


def use_python_for_uv(tool: str, path_pyproject: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uv checks a lock only with a Python its requires-python allows (never downloaded here): UV_PYTHON
    names one when this interpreter is not."""
    path_lock = find_uv_lock(path_pyproject.parent) if tool == "uv" else None
    if path_lock is None:
        return
    exe = python_for_lock(path_lock)
    if exe is None:
        if IN_CI:
            pytest.fail(f"no Python that {path_lock.name}'s requires-python allows is installed")
        pytest.skip(f"no Python that {path_lock.name}'s requires-python allows is installed: uv cannot check the lock")
    if exe != sys.executable:
        monkeypatch.setenv("UV_PYTHON", exe)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES)
def test_runtime_set_matches_the_peers(case: str, target: str, corpus_copy, monkeypatch):
    spec = expected(case)
    want = spec["targets"][target]
    path_pyproject = corpus_copy(case)
    use_python_for_uv(spec["tool"], path_pyproject, monkeypatch)
    if "refused" in want:
        with pytest.raises(LayerError) as info:
            read_local_manifest(path_pyproject, spec["tool"], target_of(target))
        message = str(info.value).strip()
        assert message and "\n" not in message, f"not a one-line error: {message}"
        if "excluded by the lock's" in want["refused"]:  # the target's python is what the lock excludes
            assert target.split("-")[0] in message, message
        if want["refused"].startswith("stale:"):  # the tool that owns the lock calls it stale
            assert "stale" in message.lower(), message
        if "--require-hashes" in want["refused"]:  # pip refuses a file that hashes only some pins
            assert "hash" in message.lower(), message
        return
    manifest = read_local_manifest(path_pyproject, spec["tool"], target_of(target))
    assert dict(manifest.dependencies) == want


# ---------------------------------------------------------------------------- one real build per case
@pytest.fixture(scope="module")
def pypi_reachable() -> None:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20).close()
    except OSError as e:
        if IN_CI:
            raise
        pytest.skip(f"PyPI is not reachable from this machine: {e}")


def serve_git_sources(dir_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the case's git-src/ folders at GIT_HOST through git's url.insteadOf, with generate.py's commit."""
    for src in sorted((dir_case / "git-src").iterdir()):
        repo = tmp_path / "git" / src.name
        shutil.copytree(src, repo)
        env = {**os.environ, **GIT_ENV, "GIT_CONFIG_GLOBAL": os.devnull}
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", "v0.3.0"],
            ["git", "tag", "v0.3.0"],
        ):
            subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "file://{tmp_path}/git/"]\n\tinsteadOf = {GIT_HOST}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))


@pytest.mark.parametrize("case", CASES)
def test_local_build_installs_the_peers_set(case: str, pypi_reachable: None, tmp_path: Path, monkeypatch):
    spec = expected(case)
    build = spec["build"]
    dest = tmp_path / case
    shutil.copytree(DIR_CORPUS / case, dest)
    if (dest / "git-src").is_dir():
        serve_git_sources(dest, tmp_path, monkeypatch)
    path_pyproject = dest / spec["project"]
    use_python_for_uv(spec["tool"], path_pyproject, monkeypatch)
    python_version, architecture = build["target"].split("-")
    kwargs = dict(
        path_pyproject_toml=path_pyproject,
        python_version=python_version,
        architecture=architecture,
        skip_prompt=True,
        verbose=False,
    )
    want = spec["targets"][build["target"]]
    if "refused" in build or "refused" in want:
        with pytest.raises(LayerError) as info:
            BUILDERS[spec["tool"]](**kwargs)
        message = str(info.value).strip()
        assert message.splitlines()[0].strip(), message
        for name in build.get("names", []):
            assert name in message, f"the refusal does not name {name}: {message}"
        return
    BUILDERS[spec["tool"]](**kwargs)
    dir_python = LayerPathLayout(path_pyproject_toml=path_pyproject).dir_python
    assert {d.name: d.version for d in read_distributions(dir_python)} == want
