"""Slim packaging options: what each leaves out, stripped shared objects that still load, byte-reproducible
zips, and fingerprints that change only for the options turned on."""

from __future__ import annotations

import csv
import ctypes
import dataclasses
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from aws_lambda_artifact_builder.errors import LayerError
from aws_lambda_artifact_builder.layer.foundation import LayerPathLayout
from aws_lambda_artifact_builder.layer.package import SLIM_OPTIONS, PackagingOptions, create_layer_zip_file
from aws_lambda_artifact_builder.layer.spec import LayerSpec, packaging_options_from

C_SOURCE = "int answer(void) { return 42; }\n"


def _native_library(dest: Path) -> None:
    """A real ELF shared object with debug information (gcc -g)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to make a shared object with debug symbols")
    source = dest.with_suffix(".c")
    source.write_text(C_SOURCE)
    subprocess.run([gcc, "-g", "-O0", "-shared", "-fPIC", "-o", str(dest), str(source)], check=True)
    source.unlink()


FILES = {
    "pkg/__init__.py": "from .core import value\n",
    "pkg/core.py": "value = 1\n",
    "pkg/core.pyi": "value: int\n",
    "pkg/py.typed": "",
    "pkg/tests/__init__.py": "",
    "pkg/tests/test_core.py": "def test(): pass\n",
    "pkg/sub/tests/data.json": "{}\n",
    "pkg/docs/index.rst": "Docs\n",
    "pkg/docs/guide.txt": "guide\n",
    "pkg/api/docs/__init__.py": "# a package named docs: imported at run time\n",
    "pkg/README.md": "# readme\n",
    "pkg/LICENSE.md": "MIT\n",
}


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "0"\n')
    layout = LayerPathLayout(path_pyproject_toml=path)
    root = layout.dir_python
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _native_library(root / "pkg" / "_native.so")
    info = root / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (info / "licenses").mkdir()
    (info / "licenses" / "LICENSE.md").write_text("MIT\n")
    rows = [f"{p.relative_to(root).as_posix()},," for p in sorted(root.rglob("*")) if p.is_file()]
    (info / "RECORD").write_text("\n".join(rows + ["pkg-1.0.dist-info/RECORD,,"]) + "\n")
    return path


def _package(project: Path, **options: bool) -> tuple[str, dict[str, bytes]]:
    info = create_layer_zip_file(path_pyproject_toml=project, options=PackagingOptions(**options), verbose=False)
    with zipfile.ZipFile(info.path) as zf:
        files = {n[len("python/") :]: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    return info.sha256, files


def _record_paths(files: dict[str, bytes]) -> set[str]:
    rows = csv.reader(io.StringIO(files["pkg-1.0.dist-info/RECORD"].decode()))
    return {row[0] for row in rows if row}


@pytest.mark.parametrize(
    "option, dropped",
    [
        ("drop_tests", {"pkg/tests/__init__.py", "pkg/tests/test_core.py", "pkg/sub/tests/data.json"}),
        ("drop_type_stubs", {"pkg/core.pyi"}),
        ("drop_docs", {"pkg/docs/index.rst", "pkg/docs/guide.txt", "pkg/README.md"}),
    ],
)
def test_each_option_drops_its_files_and_the_record_follows(project: Path, option: str, dropped: set[str]):
    _, full = _package(project)
    _, slim = _package(project, **{option: True})
    assert set(full) - set(slim) == dropped
    assert _record_paths(slim) == set(slim)  # RECORD lists exactly what is shipped
    assert "pkg/api/docs/__init__.py" in slim and "pkg/LICENSE.md" in slim
    assert "pkg-1.0.dist-info/licenses/LICENSE.md" in slim


def test_stripped_objects_are_smaller_still_load_and_the_zip_is_reproducible(project: Path, tmp_path: Path):
    _, full = _package(project)
    first, slim = _package(project, strip_debug_symbols=True)
    assert len(slim["pkg/_native.so"]) < len(full["pkg/_native.so"])
    assert b".debug_info" in full["pkg/_native.so"] and b".debug_info" not in slim["pkg/_native.so"]
    assert {k: v for k, v in slim.items() if k.endswith(".py")} == {k: v for k, v in full.items() if k.endswith(".py")}
    loaded = tmp_path / "stripped.so"
    loaded.write_bytes(slim["pkg/_native.so"])
    assert ctypes.CDLL(str(loaded)).answer() == 42
    shutil.rmtree(LayerPathLayout(path_pyproject_toml=project).dir_build_lambda_layer / "slim")  # no cached copy
    again, _ = _package(project, strip_debug_symbols=True)
    every, _ = _package(project, **dict.fromkeys(SLIM_OPTIONS, True))
    every_again, _ = _package(project, **dict.fromkeys(SLIM_OPTIONS, True))
    assert first == again and every == every_again


def test_without_a_strip_for_the_objects_packaging_fails_naming_the_fix(project: Path, tmp_path: Path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(LayerError, match=r"strip_debug_symbols: no strip for x86_64 objects on this machine; install"):
        _package(project, strip_debug_symbols=True)
    _package(project, drop_tests=True)  # the other options need no tool


def test_only_the_options_turned_on_enter_the_fingerprint():
    assert PackagingOptions().fingerprint_fields() == {"compile_bytecode": False}  # as before the options existed
    seen = {tuple(sorted(PackagingOptions().fingerprint_fields().items()))}
    for name in SLIM_OPTIONS:
        fields = PackagingOptions(**{name: True}).fingerprint_fields()
        assert fields == {"compile_bytecode": False, name: True}
        seen.add(tuple(sorted(fields.items())))
    assert len(seen) == len(SLIM_OPTIONS) + 1


def test_the_spec_declares_each_option_for_every_front_end():
    names = {f.name for f in dataclasses.fields(LayerSpec)}
    assert set(SLIM_OPTIONS) <= names
    options = packaging_options_from({"drop_docs": True, "strip_debug_symbols": True, "layer_name": "x"})
    assert options == PackagingOptions(drop_docs=True, strip_debug_symbols=True)
    from aws_lambda_artifact_builder.cli import CONFIG_KEYS

    assert all(CONFIG_KEYS[name] is bool for name in SLIM_OPTIONS)


FAKE_STRIP = """#!/bin/sh
# strip --strip-debug -o OUT IN, as strip does to a patchelf-edited object: bytes of a loaded segment change
/bin/cp "$4" "$3"
printf 'XXXX' | /bin/dd of="$3" bs=1 seek=4100 conv=notrunc 2>/dev/null
"""


def test_an_object_strip_would_change_the_loaded_image_of_is_shipped_as_it_was(
    project: Path, tmp_path: Path, monkeypatch
):
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "x86_64-linux-gnu-strip").write_text(FAKE_STRIP)
    (fake / "x86_64-linux-gnu-strip").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    lines: list[str] = []
    info = create_layer_zip_file(
        path_pyproject_toml=project, options=PackagingOptions(strip_debug_symbols=True), printer=lines.append
    )
    original = (LayerPathLayout(path_pyproject_toml=project).dir_python / "pkg" / "_native.so").read_bytes()
    assert zipfile.ZipFile(info.path).read("python/pkg/_native.so") == original
    assert any(
        "strip_debug_symbols: 1 object(s) shipped unstripped, as strip would move their loadable segments" in line
        and "pkg/_native.so" in line
        for line in lines
    ), lines


def test_the_loaded_image_check_sees_moved_and_changed_segments(tmp_path: Path):
    from aws_lambda_artifact_builder.layer.slim import _load_segments, same_loaded_image

    _native_library(tmp_path / "a.so")
    original = (tmp_path / "a.so").read_bytes()
    subprocess.run(["strip", "--strip-debug", "-o", str(tmp_path / "b.so"), str(tmp_path / "a.so")], check=True)
    assert same_loaded_image(original, (tmp_path / "b.so").read_bytes())
    changed = bytearray(original)
    flags, offset, *_ = _load_segments(original)[1]
    changed[offset + 4 : offset + 8] = b"XXXX"
    assert not same_loaded_image(original, bytes(changed))
    assert not same_loaded_image(original, original[:100])  # program headers cut off
