"""The deterministic zipper, on hand-made installed trees."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.api import LayerError, LayerPathLayout, PackagingOptions, create_layer_zip_file
from aws_lambda_artifact_builder.layer.package import ZIP_DATE_TIME, read_distributions

FANCY_INFO = "python/Fancy.Lib-3.0.dist-info"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def install(
    root: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    installer: str = "pip",
    extra_record: list[str] = (),
) -> None:
    """A distribution as an installer leaves it: files, dist-info, RECORD with installer-specific lines."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/INSTALLER": installer.encode(),
        f"{info}/REQUESTED": b"",
        f"{info}/direct_url.json": b'{"url": "file:///home/someone/wheels/x.whl"}',
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    lines = [f"{rel},{_record_hash(d)},{len(d)}" for rel, d in files.items()] + [f"{info}/RECORD,,", *extra_record]
    if installer == "uv":
        lines.reverse()
    (root / info / "RECORD").write_text("\n".join(lines) + "\n")


def make_tree(project: Path, installer: str = "pip") -> Path:
    """A layer tree with everything the zipper must keep, drop, or normalise."""
    py = LayerPathLayout(path_pyproject_toml=project / "pyproject.toml").dir_python
    install(py, "pip", "24.0", {"pip/__init__.py": b"# pip\n"}, installer=installer)
    install(py, "pipdeptree", "2.0", {"pipdeptree/__init__.py": b"# shares a prefix with pip\n"}, installer=installer)
    install(py, "boto3", "1.40.0", {"boto3/__init__.py": b"# runtime ships me\n" * 100}, installer=installer)
    install(
        py,
        "Fancy.Lib",
        "3.0",
        {
            "fancy/__init__.py": b"VALUE = 1\n",
            "fancy/_native.so": b"\x7fELF" + b"\0" * 4000,
            "fancy/data/big.json": b'{"k": 1}' * 5000,
        },
        installer=installer,
        extra_record=["../../bin/fancy,sha256=x,10", "bin/fancy,sha256=y,10"],
    )
    os.chmod(py / "fancy/_native.so", 0o775)
    (py / "fancy/__pycache__").mkdir()
    (py / "fancy/__pycache__/__init__.cpython-311.pyc").write_bytes(b"stale bytecode")
    (py / "fancy/stray.pyc").write_bytes(b"stray")
    (py / "bin").mkdir()
    (py / "bin/fancy").write_text("#!/home/someone/.venv/bin/python\nimport fancy\n")
    if installer == "uv":
        (py / ".lock").write_bytes(b"")
    (py / "top_level_module.py").write_text("X = 1\n")  # owned by no RECORD: still shipped
    return project / "pyproject.toml"


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def test_zip_holds_exactly_the_kept_files_with_rewritten_records(tmp_path: Path):
    info = create_layer_zip_file(path_pyproject_toml=make_tree(tmp_path), verbose=False)
    names = zip_names(info.path)
    files = [n for n in names if not n.endswith("/")]
    assert files == sorted(files) and all(n.startswith("python/") for n in names)
    assert "python/" in names and "python/fancy/data/" in names
    assert "python/pipdeptree/__init__.py" in names  # `pip` excluded by name, not by prefix
    for gone in (
        "python/pip/__init__.py",
        "python/pip-24.0.dist-info/METADATA",
        "python/boto3/__init__.py",
        "python/fancy/__pycache__/__init__.cpython-311.pyc",
        "python/fancy/stray.pyc",
        "python/bin/fancy",
        f"{FANCY_INFO}/INSTALLER",
        f"{FANCY_INFO}/REQUESTED",
        f"{FANCY_INFO}/direct_url.json",
    ):
        assert gone not in names
    assert "python/top_level_module.py" in names and f"{FANCY_INFO}/METADATA" in names
    assert info.excluded == ["boto3", "pip"]
    with zipfile.ZipFile(info.path) as zf:
        record = zf.read(f"{FANCY_INFO}/RECORD").decode()
        rows = list(csv.reader(io.StringIO(record)))
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        for path, digest, size in rows:
            if path.endswith("/RECORD"):
                assert digest == size == ""
                continue
            data = zf.read("python/" + path)
            assert digest == _record_hash(data) and int(size) == len(data)
        assert not any("INSTALLER" in r[0] or "bin/" in r[0] for r in rows)
        for zi in zf.infolist():
            assert zi.date_time == ZIP_DATE_TIME
            mode = zi.external_attr >> 16
            expected = 0o40755 if zi.is_dir() else (0o100755 if zi.filename.endswith(".so") else 0o100644)
            assert mode == expected, zi.filename


def test_same_tree_from_another_installer_and_machine_gives_the_same_bytes(tmp_path: Path):
    a = create_layer_zip_file(path_pyproject_toml=make_tree(tmp_path / "a", "pip"), verbose=False)
    b_project = make_tree(tmp_path / "b", "uv")
    py = LayerPathLayout(path_pyproject_toml=b_project).dir_python
    for path in py.rglob("*"):  # another checkout: other times and a different umask
        os.utime(path, (1_700_000_000, 1_700_000_000))
        if path.is_file() and not path.name.endswith(".so"):
            os.chmod(path, 0o600)
    b = create_layer_zip_file(path_pyproject_toml=b_project, verbose=False)
    again = create_layer_zip_file(path_pyproject_toml=b_project, verbose=False)
    assert a.path.read_bytes() == b.path.read_bytes() == again.path.read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256(a.path.read_bytes()).hexdigest()
    assert a.code_sha256 == base64.b64encode(hashlib.sha256(a.path.read_bytes()).digest()).decode()


def test_ignore_packages_replaces_the_defaults(tmp_path: Path):
    info = create_layer_zip_file(path_pyproject_toml=make_tree(tmp_path), ignore_packages=["fancy-lib"], verbose=False)
    names = zip_names(info.path)
    assert "python/boto3/__init__.py" in names and "python/pip/__init__.py" in names
    assert not any(n.startswith(("python/fancy/", FANCY_INFO)) for n in names)
    assert info.excluded == ["fancy-lib"]


def test_size_report_and_limit(tmp_path: Path):
    project = make_tree(tmp_path)
    info = create_layer_zip_file(path_pyproject_toml=project, verbose=False)
    with zipfile.ZipFile(info.path) as zf:
        assert info.unzipped_size == sum(zi.file_size for zi in zf.infolist())
        assert info.file_count == sum(1 for zi in zf.infolist() if not zi.is_dir())
    assert info.zipped_size == info.path.stat().st_size
    assert [n for n, _ in info.largest_distributions] == ["fancy-lib", "pipdeptree"]
    assert info.largest_distributions[0][1] > 40_000
    lines: list[str] = []
    create_layer_zip_file(path_pyproject_toml=project, printer=lines.append)
    assert "fancy-lib" in "\n".join(lines) and info.sha256 in lines[0]
    with pytest.raises(LayerError, match=r"over the limit of 10,000 bytes.*fancy-lib"):
        create_layer_zip_file(
            path_pyproject_toml=project, options=PackagingOptions(unzipped_size_limit=10_000), verbose=False
        )
    assert not info.path.exists()  # the old zip is gone, so nothing stale can be uploaded


def test_symlinks_inside_are_followed_and_outside_refused(tmp_path: Path):
    project = make_tree(tmp_path)
    py = LayerPathLayout(path_pyproject_toml=project).dir_python
    (py / "fancy/alias.py").symlink_to(py / "fancy/__init__.py")
    info = create_layer_zip_file(path_pyproject_toml=project, verbose=False)
    with zipfile.ZipFile(info.path) as zf:
        assert zf.read("python/fancy/alias.py") == b"VALUE = 1\n"
    (tmp_path / "secret.txt").write_text("outside")
    (py / "fancy/leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(LayerError, match="outside the layer tree"):
        create_layer_zip_file(path_pyproject_toml=project, verbose=False)


def test_compiled_bytecode_is_hash_checked_and_only_for_the_running_python(tmp_path: Path):
    project = make_tree(tmp_path)
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    info = create_layer_zip_file(
        path_pyproject_toml=project,
        options=PackagingOptions(compile_bytecode=True),
        python_version=running,
        verbose=False,
    )
    pyc = f"python/fancy/__pycache__/__init__.{sys.implementation.cache_tag}.pyc"
    with zipfile.ZipFile(info.path) as zf:
        data = zf.read(pyc)
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked: never stale, no mtimes
    again = create_layer_zip_file(
        path_pyproject_toml=project,
        options=PackagingOptions(compile_bytecode=True),
        python_version=running,
        verbose=False,
    )
    assert again.sha256 == info.sha256
    other = "3.10" if running != "3.10" else "3.12"
    with pytest.raises(LayerError, match="compile_bytecode needs the build Python"):
        create_layer_zip_file(
            path_pyproject_toml=project,
            options=PackagingOptions(compile_bytecode=True),
            python_version=other,
            verbose=False,
        )


def test_read_distributions_ignores_paths_leaving_the_tree(tmp_path: Path):
    project = make_tree(tmp_path)
    dists = {d.name: d for d in read_distributions(LayerPathLayout(path_pyproject_toml=project).dir_python)}
    assert sorted(dists) == ["boto3", "fancy-lib", "pip", "pipdeptree"]
    assert "bin/fancy" in dists["fancy-lib"].files and not any(f.startswith("..") for f in dists["fancy-lib"].files)


def test_missing_tree_is_a_clear_error(tmp_path: Path):
    with pytest.raises(LayerError, match="build the layer before packaging"):
        create_layer_zip_file(path_pyproject_toml=tmp_path / "pyproject.toml", verbose=False)
