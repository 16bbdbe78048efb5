"""Local build and packaging cost, measured against the raw tools side by side in one run.

On the fixture projects (private index on loopback) and on a realistic project locked from PyPI
(numpy, pydantic-core, orjson, requests, ...; see projects.py), for pip, poetry and uv:
- local build ÷ raw installer on the same lock, warm caches (goal <= 1.15) and cold caches (every
  timed call of either side starts from empty pip/uv/poetry caches). The raw installer is what a
  user would type: pip ``install --no-deps --no-compile --target --platform ... --implementation cp
  --python-version --only-binary=:all: -r requirements.txt``; uv ``export --frozen --no-dev
  --no-emit-project`` then ``uv pip install --no-deps --target --python-platform --python-version
  --only-binary :all: -r``; poetry ``install --only main --no-root`` into a fresh in-project virtualenv
  (poetry has no target-platform install, so it installs for this host's Python);
- pruned layer size ÷ raw install size: the layer's unzipped bytes against the raw installer's tree
  (pip and uv, which install into a folder like ours);
- packaging ÷ ``zip -r -9 -X -q`` of the same ``python/`` tree, in time (goal <= 0.5) and in size
  (goal <= 1.03).
It also says whether the pip and uv builds of the realistic set packaged to identical bytes.

Usage: .venv/bin/python benchmarks/bench_build.py [--rounds N] [--cold-rounds N] [--python-version 3.12]
       [--architecture x86_64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from aws_lambda_artifact_builder.api import (
    Credentials,
    LayerPathLayout,
    LayerTarget,
    build_layer_artifacts_in_local,
    create_layer_zip_file,
)
from aws_lambda_artifact_builder.layer.install_plan import target_platforms, uv_python_platform
from aws_lambda_artifact_builder.layer.runtime_set import _parse_toml
from projects import (
    FIXTURE,
    REALISTIC,
    REALISTIC_NOTE,
    TOOLS,
    clean_env,
    fixture_projects,
    make_realistic_projects,
    tool_path,
)
from ratios import Ratio, markdown_table, paired, size_ratio, time_ratio

CACHE_VARS = ("PIP_CACHE_DIR", "UV_CACHE_DIR", "POETRY_CACHE_DIR")


def run(argv: list[str], **kw: object) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]


def login_url(credentials: Credentials) -> str:
    """The index URL with the login in it, as a user passes it to a raw installer."""
    parts = urlsplit(credentials.index_url)
    netloc = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def use_caches(root: Path) -> None:
    """Point pip, uv and poetry (ours and the raw tools alike) at caches below ``root``."""
    for name in CACHE_VARS:
        os.environ[name] = str(root / name.lower())


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def raw_installer(
    tool: str, path_pyproject: Path, target: LayerTarget, credentials: Credentials | None, dir_raw: Path
) -> Callable[[], None]:
    """What a user would type to install the lock with the tool itself (see the module)."""
    folder = path_pyproject.parent
    work = dir_raw.parent
    index = ["--index-url", login_url(credentials)] if credentials else []

    def pip() -> None:
        shutil.rmtree(dir_raw, ignore_errors=True)
        argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(dir_raw)]
        argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python_version]
        for platform in target_platforms(target):
            argv += ["--platform", platform]
        run(argv + index + ["-r", str(folder / "requirements.txt")], env=clean_env(work))

    def uv() -> None:
        shutil.rmtree(dir_raw, ignore_errors=True)
        exported = work / "exported.txt"
        env = clean_env(work)
        run(
            [tool_path("uv"), "export", "--frozen", "--no-dev", "--no-emit-project", "-o", str(exported)],
            cwd=folder,
            env=env,
        )
        run(
            [
                tool_path("uv"),
                "pip",
                "install",
                "--no-deps",
                "--target",
                str(dir_raw),
                "--python-platform",
                uv_python_platform(target),
                "--python-version",
                target.python_version,
                "--only-binary",
                ":all:",
                *index,
                "-r",
                str(exported),
            ],
            env=env,
        )

    def poetry() -> None:
        shutil.rmtree(folder / ".venv", ignore_errors=True)
        env = clean_env(work)
        env.update(
            POETRY_CACHE_DIR=os.environ["POETRY_CACHE_DIR"],
            POETRY_VIRTUALENVS_IN_PROJECT="true",
            POETRY_VIRTUALENVS_OPTIONS_NO_PIP="true",
        )
        if credentials:
            env.update(
                POETRY_HTTP_BASIC_PRIVATE_USERNAME=credentials.username,
                POETRY_HTTP_BASIC_PRIVATE_PASSWORD=credentials.password,
            )
        run([tool_path("poetry"), "install", "--only", "main", "--no-root", "--no-interaction"], cwd=folder, env=env)

    return {"pip": pip, "uv": uv, "poetry": poetry}[tool]


def measure_project(
    subject: str,
    projects: dict[str, Path],
    credentials: Credentials | None,
    target: LayerTarget,
    work: Path,
    *,
    rounds: int,
    cold_rounds: int,
) -> list[Ratio]:
    rows: list[Ratio] = []
    dir_raw = work / "raw-target"
    for tool in TOOLS:
        path = projects[tool]

        def ours(tool: str = tool, path: Path = path) -> None:
            _parse_toml.cache_clear()  # pay for reading the lock, as a fresh process does
            build_layer_artifacts_in_local(
                tool=tool,
                path_pyproject_toml=path,
                python_version=target.python_version,
                architecture=target.architecture,
                credentials=credentials,
                skip_prompt=True,
                verbose=False,
            )

        raw = raw_installer(tool, path, target, credentials, dir_raw)
        use_caches(work / "warm-cache")
        t_ours, t_raw = paired(ours, raw, rounds)
        rows.append(time_ratio(f"local build ÷ raw {tool}, warm cache", subject, t_ours, t_raw, "≤ 1.15"))
        if tool != "poetry":  # poetry installs into a virtualenv, not a folder like ours
            ours()
            layer = create_layer_zip_file(path_pyproject_toml=path, verbose=False)
            raw()
            rows.append(
                size_ratio(
                    f"pruned layer size ÷ raw {tool} install size", subject, layer.unzipped_size, tree_size(dir_raw)
                )
            )

        def empty_caches() -> None:
            shutil.rmtree(work / "cold-cache", ignore_errors=True)
            use_caches(work / "cold-cache")

        t_ours, t_raw = paired(ours, raw, cold_rounds, before=empty_caches, warm=False)
        rows.append(time_ratio(f"local build ÷ raw {tool}, cold cache", subject, t_ours, t_raw))

    ours_uv = projects["uv"]
    build_layer_artifacts_in_local(
        tool="uv",
        path_pyproject_toml=ours_uv,
        python_version=target.python_version,
        architecture=target.architecture,
        credentials=credentials,
        skip_prompt=True,
        verbose=False,
    )
    layout = LayerPathLayout(path_pyproject_toml=ours_uv)
    path_zip = work / "zip-r-9.zip"

    def zip_r() -> None:
        path_zip.unlink(missing_ok=True)
        run(["zip", "-r", "-9", "-X", "-q", str(path_zip), "python"], cwd=layout.dir_artifacts)

    t_pack, t_zip = paired(lambda: create_layer_zip_file(path_pyproject_toml=ours_uv, verbose=False), zip_r, rounds)
    rows.append(time_ratio("packaging ÷ zip -r -9 -X -q (time)", subject, t_pack, t_zip, "≤ 0.5"))
    info = create_layer_zip_file(path_pyproject_toml=ours_uv, verbose=False)
    rows.append(
        size_ratio("packaging ÷ zip -r -9 -X -q (size)", subject, info.zipped_size, path_zip.stat().st_size, "≤ 1.03")
    )
    return rows


def measure(
    *, rounds: int = 5, cold_rounds: int = 3, python_version: str = "3.12", architecture: str = "x86_64"
) -> tuple[list[Ratio], list[str]]:
    """Every row of this benchmark, and notes about what was measured."""
    target = LayerTarget(python_version=python_version, architecture=architecture)
    saved = {name: os.environ.get(name) for name in CACHE_VARS}
    work = Path(tempfile.mkdtemp(prefix="alab-bench-build-"))
    try:
        with fixture_projects(work / "fixture-index") as fixture:
            rows = measure_project(
                FIXTURE,
                fixture.projects,
                fixture.credentials,
                target,
                work / "fixture-work",
                rounds=rounds,
                cold_rounds=cold_rounds,
            )
        realistic = make_realistic_projects(work / "realistic")
        rows += measure_project(
            REALISTIC, realistic, None, target, work / "realistic-work", rounds=rounds, cold_rounds=cold_rounds
        )
        digests = {}
        for tool in ("pip", "uv"):
            build_layer_artifacts_in_local(
                tool=tool,
                path_pyproject_toml=realistic[tool],
                python_version=target.python_version,
                architecture=target.architecture,
                skip_prompt=True,
                verbose=False,
            )
            digests[tool] = create_layer_zip_file(path_pyproject_toml=realistic[tool], verbose=False)
        info = digests["uv"]
        notes = [
            REALISTIC_NOTE,
            f"Local builds target {target.runtime} {target.architecture}; the realistic layer holds {info.file_count} files, "
            f"{info.unzipped_size / 1e6:.1f} MB unzipped, {info.zipped_size / 1e6:.1f} MB zipped.",
            "pip and uv builds of the realistic lock give byte-identical layer.zip: "
            + ("yes" if digests["pip"].sha256 == digests["uv"].sha256 else "no"),
        ]
        return rows, notes
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each warm measure")
    parser.add_argument("--cold-rounds", type=int, default=3, help="rounds of each cold-cache measure")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--architecture", default="x86_64")
    args = parser.parse_args()
    rows, notes = measure(
        rounds=args.rounds,
        cold_rounds=args.cold_rounds,
        python_version=args.python_version,
        architecture=args.architecture,
    )
    print(markdown_table(rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
