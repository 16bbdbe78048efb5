"""The command runner: the real one's contract, the exact commands a build runs (seen through a fake
runner, nothing started), and that no other module of ``layer/`` starts a process by itself."""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import aws_lambda_artifact_builder.layer as layer_package
import pytest
from aws_lambda_artifact_builder.constants import LayerBuildToolEnum
from aws_lambda_artifact_builder.errors import BuildError, ManifestError
from aws_lambda_artifact_builder.layer.build import build_layer_artifacts_in_local
from aws_lambda_artifact_builder.layer.foundation import LayerPathLayout
from aws_lambda_artifact_builder.layer.manifest import find_tool, read_local_manifest
from aws_lambda_artifact_builder.layer.runner import SUBPROCESS, CommandResult
from aws_lambda_artifact_builder.layer.target import LayerTarget

DIR_LAYER = Path(layer_package.__file__).parent
T312 = LayerTarget("3.12", "x86_64")
SIX_HASH = "sha256:" + "1" * 64
IDNA_HASH = "sha256:" + "2" * 64


# ---------------------------------------------------------------------------- the real runner
def test_captures_stdout_and_stderr_apart():
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = SUBPROCESS.run([sys.executable, "-c", code])
    assert (result.returncode, result.stdout, result.stderr, result.ok) == (3, "out\n", "err\n", False)


def test_streams_lines_with_stderr_merged_and_honours_env_and_cwd(tmp_path: Path):
    code = "import os, sys; print(os.environ['ALAB_X']); print(os.getcwd(), file=sys.stderr, flush=True)"
    lines: list[str] = []
    result = SUBPROCESS.run([sys.executable, "-u", "-c", code], env={"ALAB_X": "1"}, cwd=tmp_path, on_line=lines.append)
    assert result.ok and (result.stdout, result.stderr) == ("", "")
    assert lines == ["1", str(tmp_path)]


def test_a_command_past_its_timeout_is_killed_and_said_so():
    for on_line in (None, print):
        result = SUBPROCESS.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5, on_line=on_line)
        assert result.timed_out and not result.ok


def test_a_command_that_cannot_start_raises_oserror_and_stdin_is_empty():
    with pytest.raises(OSError):
        SUBPROCESS.run(["/nonexistent/alab-tool"])
    assert SUBPROCESS.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"]).stdout == "''\n"


# ---------------------------------------------------------------------------- no other module runs a process
#: The container build still starts its engine itself (to adopt the runner); its in-container script must.
ALLOWED = {"runner.py", "build_container.py", "build_container_runner.py", "build_container_script.py"}


def _imports_subprocess(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "subprocess" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "subprocess":
            return True
    return False


def test_only_the_runner_and_the_container_files_import_subprocess():
    importing = {path.name for path in DIR_LAYER.rglob("*.py") if _imports_subprocess(path)}
    assert "runner.py" in importing  # the check sees an import
    assert importing - ALLOWED == set()


# ---------------------------------------------------------------------------- a fake runner
@dataclasses.dataclass
class FakeRunner:
    """Records each command and starts none. An ``install`` writes the dist-info of ``installs`` into its
    ``--target``, as pip or uv would; another command takes the next of ``replies`` (its ``stdout`` lines
    go to ``on_line`` when streamed), else succeeds with the stdout ``answers`` holds for a word of its
    argv (``export``), else with no output."""

    answers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    installs: Sequence[tuple[str, str]] = ()
    replies: list[CommandResult] = dataclasses.field(default_factory=list)
    calls: list[tuple[list[str], str | None, dict[str, str] | None]] = dataclasses.field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        argv = list(argv)
        self.calls.append((argv, str(cwd) if cwd is not None else None, dict(env) if env is not None else None))
        if "install" in argv and "--target" in argv:
            dir_python = Path(argv[argv.index("--target") + 1])
            for name, version in self.installs:
                dist_info = dir_python / f"{name}-{version}.dist-info"
                dist_info.mkdir(parents=True)
                (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
            if on_line is not None:
                on_line(f"Successfully installed {' '.join(f'{n}-{v}' for n, v in self.installs)}")
            return CommandResult(tuple(argv), 0)
        if self.replies:
            reply = self.replies.pop(0)
            if on_line is None:
                return reply
            for line in reply.stdout.splitlines():
                on_line(line)
            return dataclasses.replace(reply, stdout="")
        for word, stdout in self.answers.items():
            if word in argv[1:3]:
                return CommandResult(tuple(argv), 0, stdout=stdout)
        return CommandResult(tuple(argv), 0)

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _, _ in self.calls]


def _project(tmp_path: Path, tool: LayerBuildToolEnum) -> Path:
    root = tmp_path / "fn"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "fn"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["six==1.16.0", "idna==3.7"]\n',
        encoding="utf-8",
    )
    wheel = {"six": "six-1.16.0-py2.py3-none-any.whl", "idna": "idna-3.7-py3-none-any.whl"}
    if tool is LayerBuildToolEnum.uv:
        entries = "".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\nsource = {{ registry = "https://pypi.org/simple" }}\n'
            f'wheels = [{{ url = "https://files.example/{wheel[n]}", hash = "{h}" }}]\n\n'
            for n, v, h in (("six", "1.16.0", SIX_HASH), ("idna", "3.7", IDNA_HASH))
        )
        (root / "uv.lock").write_text(f'version = 1\nrequires-python = ">=3.11"\n\n{entries}', encoding="utf-8")
    elif tool is LayerBuildToolEnum.poetry:
        entries = "".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\noptional = false\npython-versions = "*"\n'
            f'files = [{{file = "{wheel[n]}", hash = "{h}"}}]\n\n'
            for n, v, h in (("six", "1.16.0", SIX_HASH), ("idna", "3.7", IDNA_HASH))
        )
        metadata = '[metadata]\nlock-version = "2.1"\npython-versions = ">=3.11"\ncontent-hash = "0"\n'
        (root / "poetry.lock").write_text(entries + metadata, encoding="utf-8")
    else:
        text = f"six==1.16.0 --hash={SIX_HASH}\nidna==3.7 ; python_version >= '3.8' --hash={IDNA_HASH}\n"
        (root / "requirements.txt").write_text(text, encoding="utf-8")
    return root / "pyproject.toml"


#: What ``uv export``/``poetry export`` say of the project above.
EXPORT = f"idna==3.7 ; python_version >= '3.8' \\\n    --hash={IDNA_HASH}\nsix==1.16.0 \\\n    --hash={SIX_HASH}\n"


def _fake() -> FakeRunner:
    return FakeRunner(answers={"export": EXPORT}, installs=[("idna", "3.7"), ("six", "1.16.0")])


#: pip's ``--platform`` list for python3.12 x86_64 (glibc 2.34), newest first, legacy aliases in place.
PLATFORMS = [
    *(f"manylinux_2_{m}_x86_64" for m in range(34, 16, -1)),
    "manylinux2014_x86_64",
    *(f"manylinux_2_{m}_x86_64" for m in range(16, 11, -1)),
    "manylinux2010_x86_64",
    *(f"manylinux_2_{m}_x86_64" for m in range(11, 4, -1)),
    "manylinux1_x86_64",
]
PIP_CONFIG = [sys.executable, "-m", "pip", "config", "list", "--disable-pip-version-check"]
UV_EXPORT = ["export", "--locked", "--no-default-groups", "--no-emit-project", "--no-header", "--no-annotate"]
UV_EXPORT += ["--format", "requirements-txt"]


def _pip_install(dir_layer: Path) -> list[str]:
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(dir_layer / "artifacts/python")]
    argv += ["--no-compile", "--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
    argv += ["--progress-bar", "off", "--report", str(dir_layer / "install-report.json"), "--require-hashes"]
    argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12"]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    return [*argv, "-r", str(dir_layer / "layer-requirements.txt")]


def _build(tmp_path: Path, tool: LayerBuildToolEnum) -> tuple[FakeRunner, Path, Path]:
    path = _project(tmp_path, tool)
    runner = _fake()
    build_layer_artifacts_in_local(tool=tool, path_pyproject_toml=path, skip_prompt=True, verbose=False, runner=runner)
    return runner, path.parent, LayerPathLayout(path_pyproject_toml=path).dir_build_lambda_layer


def test_a_uv_build_runs_uv_export_then_uv_pip_install_for_the_target(tmp_path: Path):
    runner, root, dir_layer = _build(tmp_path, LayerBuildToolEnum.uv)
    uv = find_tool("uv")
    assert uv is not None
    install = [uv, "pip", "install", "--no-deps", "--target", str(dir_layer / "artifacts/python")]
    install += ["--python", sys.executable, "--index-strategy", "first-index", "--require-hashes"]
    install += ["--only-binary", ":all:", "--python-platform", "x86_64-manylinux_2_34", "--python-version", "3.12"]
    install += ["-r", str(dir_layer / "layer-requirements.txt")]
    assert [(argv, cwd) for argv, cwd, _ in runner.calls] == [
        ([uv, *UV_EXPORT, "--offline"], str(root)),
        (PIP_CONFIG, None),
        (install, None),
    ]
    export_env = runner.calls[0][2]
    assert export_env is not None and export_env["UV_PYTHON_DOWNLOADS"] == "never"
    pins = (dir_layer / "layer-requirements.txt").read_text()
    assert f"idna==3.7 --hash={IDNA_HASH}" in pins and f"six==1.16.0 --hash={SIX_HASH}" in pins


def test_a_poetry_build_checks_and_exports_with_poetry_then_installs_with_pip(tmp_path: Path):
    runner, root, dir_layer = _build(tmp_path, LayerBuildToolEnum.poetry)
    poetry = find_tool("poetry")
    assert poetry is not None
    export = [poetry, "export", "--format", "requirements.txt", "--only", "main", "--no-interaction", "--no-ansi"]
    assert [(argv, cwd) for argv, cwd, _ in runner.calls] == [
        ([poetry, "check", "--lock", "--no-interaction", "--no-ansi"], str(root)),
        (export, str(root)),
        (PIP_CONFIG, None),
        (_pip_install(dir_layer), None),
    ]
    export_env = runner.calls[1][2]
    assert export_env is not None and export_env["POETRY_VIRTUALENVS_CREATE"] == "false"


def test_a_pip_build_asks_pip_its_config_then_installs_with_pip_only(tmp_path: Path):
    runner, _root, dir_layer = _build(tmp_path, LayerBuildToolEnum.pip)
    assert runner.argvs == [PIP_CONFIG, _pip_install(dir_layer)]
    install_env = runner.calls[1][2]
    assert install_env is not None and install_env["PIP_CONFIG_FILE"] == "/dev/null"


def test_a_uv_lock_uv_could_not_check_offline_is_exported_again_online(tmp_path: Path):
    path = _project(tmp_path, LayerBuildToolEnum.uv)
    offline = CommandResult((), 2, stderr="error: Failed to fetch: network was disabled")
    runner = FakeRunner(replies=[offline, CommandResult((), 0, stdout=EXPORT)])
    manifest = read_local_manifest(path, LayerBuildToolEnum.uv, T312, runner=runner)
    assert manifest.dependencies == {"idna": "3.7", "six": "1.16.0"}
    uv = find_tool("uv")
    assert runner.argvs == [[uv, *UV_EXPORT, "--offline"], [uv, *UV_EXPORT]]


def test_a_stale_lock_is_named_from_the_tools_words(tmp_path: Path):
    path = _project(tmp_path, LayerBuildToolEnum.uv)
    stale = CommandResult((), 1, stderr="error: The lockfile at `uv.lock` needs to be updated")
    with pytest.raises(ManifestError, match=r"uv.lock is stale: uv says: .*needs to be updated"):
        read_local_manifest(path, LayerBuildToolEnum.uv, T312, runner=FakeRunner(replies=[stale]))


def test_a_failed_install_is_a_build_error_with_the_masked_tail(tmp_path: Path):
    from aws_lambda_artifact_builder.layer.build import run_command
    from aws_lambda_artifact_builder.layer.foundation import Credentials

    login = Credentials(index_name="corp", index_url="https://idx.example/simple/", username="u", password="s3cr3t")
    said = "Looking in indexes: https://u:s3cr3t@idx.example/simple/\nERROR: No matching distribution for six==9"
    runner = FakeRunner(replies=[CommandResult((), 1, stdout=said)])
    with pytest.raises(BuildError) as caught:
        run_command(["pip", "download", "--pw=s3cr3t"], env={}, description="install", credentials=login, runner=runner)
    text = str(caught.value)
    assert "s3cr3t" not in text and "exit code 1" in text and "No matching distribution for six==9" in text


def test_the_evidence_probes_ask_through_the_runner_and_a_silent_tool_says_nothing():
    from aws_lambda_artifact_builder.layer.evidence import tool_version

    answered = CommandResult((), 0, stdout="uv 0.13.9\nmore\n")
    late = CommandResult((), -9, stdout="uv 0.13.9\n", timed_out=True)
    runner = FakeRunner(replies=[answered, late])
    assert tool_version(LayerBuildToolEnum.uv, runner=runner) == "uv 0.13.9"
    assert tool_version(LayerBuildToolEnum.pip, runner=runner) is None
    assert runner.argvs == [[find_tool("uv"), "--version"], [sys.executable, "-m", "pip", "--version"]]
