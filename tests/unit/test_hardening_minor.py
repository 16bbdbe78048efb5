"""Small hardening: masking whole tokens, files an installer put outside the tree, ZIP64 layers."""

from __future__ import annotations

import zipfile
from pathlib import Path

from aws_lambda_artifact_builder.api import Credentials, LayerPathLayout, create_layer_zip_file
from aws_lambda_artifact_builder.cli import _one_line
from aws_lambda_artifact_builder.layer.install_plan import mask_secrets
from aws_lambda_artifact_builder.layer.package import ZIP_ENTRIES_WITHOUT_ZIP64
from test_package import install


def test_a_short_password_is_masked_as_a_token_not_as_letters():
    credentials = Credentials(index_name="p", index_url="https://i.example/simple/", username="u", password="ab")
    text = "about tab: password ab, url https://u:ab@i.example/simple/ and (ab)"
    masked = mask_secrets(text, credentials)
    assert masked == "about tab: password ****, url https://i.example/simple/ and (****)"
    assert _one_line(text, "ab") == masked


def _project(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "1"\n')
    return path, LayerPathLayout(path_pyproject_toml=path).dir_python


def test_files_listed_outside_the_tree_are_warned_about_console_scripts_are_not(tmp_path: Path):
    path, py = _project(tmp_path)
    install(py, "odd-lib", "1.0", {"odd/__init__.py": b""}, extra_record=["../../etc/odd.conf,sha256=x,3"])
    install(py, "tool-lib", "1.0", {"tool/__init__.py": b""}, extra_record=["../../bin/tool,sha256=x,3"])
    lines: list[str] = []
    create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1 and "odd-lib 1.0" in warnings[0] and "../../etc/odd.conf" in warnings[0], lines


def test_a_layer_past_65535_entries_is_flagged_as_zip64(tmp_path: Path):
    path, py = _project(tmp_path)
    folder = py / "many"
    folder.mkdir(parents=True)
    for i in range(ZIP_ENTRIES_WITHOUT_ZIP64):  # with python/ and many/ the zip holds 65,537 entries
        (folder / f"m{i}.py").write_bytes(b"")
    lines: list[str] = []
    info = create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    assert len(zipfile.ZipFile(info.path).infolist()) > ZIP_ENTRIES_WITHOUT_ZIP64
    assert any("ZIP64" in line for line in lines), lines[-3:]


def test_a_layer_of_65535_entries_is_not_flagged(tmp_path: Path):
    path, py = _project(tmp_path)
    folder = py / "many"
    folder.mkdir(parents=True)
    for i in range(ZIP_ENTRIES_WITHOUT_ZIP64 - 2):
        (folder / f"m{i}.py").write_bytes(b"")
    lines: list[str] = []
    info = create_layer_zip_file(path_pyproject_toml=path, printer=lines.append)
    assert len(zipfile.ZipFile(info.path).infolist()) == ZIP_ENTRIES_WITHOUT_ZIP64
    assert not any("ZIP64" in line for line in lines)


def test_upload_progress_counts_every_chunk_from_many_threads():
    import threading

    from aws_lambda_artifact_builder.progress import ProgressEvent, Stage, observe

    events: list[ProgressEvent] = []
    with observe(events.append), Stage("upload", total=80_000, unit="bytes") as stage:
        threads = [threading.Thread(target=lambda: [stage.advance(1) for _ in range(10_000)]) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert stage.done == 80_000
    progress = [e.done for e in events if e.state == "progress"]
    assert len(progress) == 80_000 and max(progress) == 80_000 and len(set(progress)) == 80_000
    assert (events[0].state, events[-1].state, events[-1].done) == ("started", "done", 80_000)
