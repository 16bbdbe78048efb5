"""Runs inside the build container as ``python -u <script> <plan.json>``.

Standard library only: the image has nothing but Python, and this library must not be
installed into it from PyPI. The host computed every install command (the same plan as the
local build, see ``build_container.py``); this script only

1. checks that the image runs the target's Python version and CPU architecture,
2. installs the pinned tools the plan needs (pip, and uv or poetry) into a virtualenv kept in
   the host-mounted cache, once per image and tool set, under a lock so that concurrent builds
   share it, and
3. runs the planned commands, replacing ``{python}``, ``{tools_python}``, ``{uv}``, ``{poetry}``.

Secrets arrive as environment variables only; they are never written to a file or printed.

Run as ``<script> --agent``, it stays in the container and runs one build per request read from
its standard input (a JSON line: the plan's path, the secret and transport variables, an end
token), answering with the build's output and a last line ``<token> exit <code>``. A kept
container thus costs a build no engine call at all (``docker exec`` costs ~0.2 s, as much as a
warm uv install). It exits when its input closes, which the host's exit or death causes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

#: A line starting with this is the error the host shows the user.
ERROR_PREFIX = "aws-lambda-artifact-builder error: "

#: ``platform.machine()`` spellings of each Lambda architecture.
MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}


class BuildError(Exception):
    """A failure whose message is meant for the user."""


def log(msg: str) -> None:
    print(f"[container] {msg}", flush=True)


def check_interpreter(plan: dict[str, Any]) -> None:
    """The image must run the target's Python and architecture, or the layer would not load on Lambda."""
    want_version = plan["python_version"]
    have_version = "{}.{}".format(*sys.version_info[:2])
    if have_version != want_version:
        raise BuildError(
            f"the image {plan['image']} runs Python {have_version} but the layer targets Python {want_version}; "
            f"name an image with Python {want_version}"
        )
    want_arch = plan["architecture"]
    machine = platform.machine().lower()
    if machine not in MACHINES[want_arch]:
        raise BuildError(
            f"the image {plan['image']} runs on {machine} but the layer targets {want_arch}; "
            f"the engine ignored --platform or the image has no {want_arch} variant"
        )


def tool_env(plan: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Environment for installing a build tool: the plan's settings without the index login."""
    env = {k: v for k, v in environ.items() if k not in plan["secret_env_names"]}
    env.update(plan["env"])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def ensure_tools(plan: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """The executables the plan's argv placeholders stand for, installing the pinned tools when missing.

    ``{python}`` is the image's interpreter (the target); ``{tools_python}`` the virtualenv's, which
    runs the pinned pip; ``{uv}``/``{poetry}`` its scripts.
    """
    spec = plan["tools"]
    requirements = spec["requirements"]
    # One virtualenv per image interpreter and tool set: a venv made by another image may not run here.
    key = hashlib.sha256(
        "\0".join([plan["image"], os.path.realpath(sys.executable), *requirements]).encode()
    ).hexdigest()[:12]
    dir_tools = Path(plan["dir_cache"]) / "tools"
    dir_venv = dir_tools / f"{spec['name']}-py{plan['python_version']}-{plan['architecture']}-{key}"
    path_ready = dir_venv / ".ready"
    dir_tools.mkdir(parents=True, exist_ok=True)
    with open(dir_tools / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path_ready.exists():
            log(f"using cached {' '.join(requirements)}")
        else:
            log(f"installing {' '.join(requirements)} into the build cache")
            shutil.rmtree(dir_venv, ignore_errors=True)
            run(
                [sys.executable, "-m", "venv", str(dir_venv)],
                env=tool_env(plan, environ),
                what="creating the tools venv",
            )
            run(
                [str(dir_venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
                env=tool_env(plan, environ),
                what=f"installing {' '.join(requirements)}",
            )
            path_ready.write_text("\n".join(requirements))
    dir_bin = dir_venv / "bin"
    return {
        "{python}": sys.executable,
        "{tools_python}": str(dir_bin / "python"),
        "{uv}": str(dir_bin / "uv"),
        "{poetry}": str(dir_bin / "poetry"),
    }


def run(argv: list[str], *, env: dict[str, str], what: str, cwd: str | None = None) -> None:
    # No input: in agent mode standard input carries the next requests.
    result = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BuildError(f"{what} failed with exit code {result.returncode}: {' '.join(argv)}")


def step_env(plan: dict[str, Any], step: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Like the local build: drop inherited installer settings (but the login and transport ones), add the step's."""
    keep = set(plan["keep_env"]) | set(step["secret_env_names"])
    prefixes = tuple(step["unset_env"])
    env = {k: v for k, v in environ.items() if k in keep or not k.startswith(prefixes)}
    env.update(plan["env"])
    env.update(step["env"])
    missing = [name for name in step["secret_env_names"] if name not in env]
    if missing:
        raise BuildError(f"{step['description']} needs {', '.join(missing)}, which the engine did not pass in")
    return env


def run_steps(plan: dict[str, Any], tools: dict[str, str], environ: dict[str, str]) -> None:
    for step in plan["steps"]:
        for path, text in step["files"].items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        argv = [tools.get(arg, arg) for arg in step["argv"]]
        log(f"--- {step['description']}: {' '.join(argv)}")
        run(argv, env=step_env(plan, step, environ), what=step["description"], cwd=step["cwd"])


def write_build_facts(path_plan: str, plan: dict[str, Any], tools: dict[str, str], environ: dict[str, str]) -> None:
    """``container-build-facts.json`` beside the plan: the installer's version as it answers in here (the
    provenance's tool version; the host adds the ID of the image that ran)."""
    name = plan["tools"]["name"]
    argv = [tools["{tools_python}"], "-m", "pip"] if name == "pip" else [tools["{" + name + "}"]]
    try:
        done = subprocess.run([*argv, "--version"], env=tool_env(plan, environ), capture_output=True, text=True)
        version = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
    except OSError:
        version = None
    facts = {"tool_version": version}
    log(f"installer in the container: {version}")
    Path(path_plan).with_name("container-build-facts.json").write_text(json.dumps(facts), encoding="utf-8")


def main(path_plan: str, environ: dict[str, str] | None = None) -> int:
    """One build; ``environ`` is the container's environment plus what the host passed in."""
    environ = dict(os.environ) if environ is None else environ
    try:
        try:
            plan = json.loads(Path(path_plan).read_text(encoding="utf-8"))
        except OSError as e:
            raise BuildError(f"the build plan is not visible in the container: {e}") from None
        # Everything the build writes outside python/ goes below the build's own folder (HOME, TMPDIR).
        for name in ("TMPDIR", "HOME"):
            Path(plan["env"][name]).mkdir(parents=True, exist_ok=True)
        check_interpreter(plan)
        tools = ensure_tools(plan, environ)
        write_build_facts(path_plan, plan, tools, environ)
        run_steps(plan, tools, environ)
    except BuildError as e:
        print(ERROR_PREFIX + str(e), file=sys.stderr, flush=True)
        return 1
    return 0


def serve(request: dict[str, Any]) -> None:
    """One build of the agent, ending with its exit line."""
    environ = {**os.environ, **request["env"]}
    try:
        code = main(request["plan"], environ)
    except Exception as e:  # noqa: BLE001 - the host must get its exit line whatever happened
        print(f"{ERROR_PREFIX}the build script failed: {type(e).__name__}: {e}", flush=True)
        code = 1
    sys.stderr.flush()
    print(f"{request['token']} exit {code}", flush=True)


def agent() -> int:
    """Serve builds read from standard input until it closes (see the module docstring).

    Each build runs in a thread while this one keeps reading, so that the input closing in the middle
    of a build (the host was killed) ends the agent at once, and the container with its processes.
    The host sends the next build only after the last one's exit line.
    """
    os.dup2(1, 2)  # one stream, so that an error line cannot overtake the exit line
    for line in sys.stdin:
        threading.Thread(target=serve, args=(json.loads(line),), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(agent() if sys.argv[1] == "--agent" else main(sys.argv[1]))
