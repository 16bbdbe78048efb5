#!/usr/bin/env bash
# Regenerates docs/terminal-deploy.txt: `alab layer deploy` of a ~60 MB layer as a terminal shows it.
#
# A local moto server stands in for AWS; the project is a uv project locked against PyPI (pandas and
# scipy for python3.12 x86_64); the deploy runs in a real tmux pane of 120x30 with an empty uv cache,
# so the install downloads every wheel. The pane is captured with `tmux capture-pane -p` every 0.1 s
# while it runs: the document shows one screen in the middle of each stage that has a bar or a
# spinner, the final screen, and a second deploy that finds nothing changed.
#
#   bash scripts/capture-terminal-deploy.sh [OUTPUT]     (default: docs/terminal-deploy.txt)
#
# Needs the checkout's .venv (`make install`), PyPI, and tmux (installed with apt-get when missing).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
OUTPUT="${1:-$REPO/docs/terminal-deploy.txt}"
SESSION="alab-capture-$$"

if ! command -v tmux >/dev/null; then
    apt-get install -y -q tmux >/dev/null
fi

WORK="$(mktemp -d /tmp/alab-capture.XXXXXX)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() {
    tmux -L "$SESSION" kill-server 2>/dev/null || true
    kill "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="testing" AWS_SECRET_ACCESS_KEY="testing"
unset AWS_DEFAULT_REGION AWS_PROFILE AWS_SESSION_TOKEN

APP="$WORK/app"
mkdir -p "$APP"
cat >"$APP/pyproject.toml" <<'TOML'
[project]
name = "analytics"
version = "0.1.0"
requires-python = ">=3.12"
dependencies = ["pandas==3.1.1", "scipy==1.18.1"]

[tool.aws_lambda_artifact_builder]
layer_name = "analytics-deps"
s3dir_lambda = "s3://alab-demo-bucket/apps/analytics/"
python_version = "3.12"
TOML
# A python3.12 that runs (pyenv's shims may not), for `uv lock` only: the layer's own install needs none.
PY312=""
for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    if "$candidate" -c "" 2>/dev/null; then PY312="$candidate"; break; fi
done
[ -n "$PY312" ] || { echo "error: no python3.12 to lock the project with" >&2; exit 1; }
# The lock reads metadata only; the deploy's install starts from an empty cache of its own.
(cd "$APP" && UV_CACHE_DIR="$WORK/lock-cache" UV_PYTHON_DOWNLOADS=never "$REPO/.venv/bin/uv" lock --quiet --python "$PY312")

"$PY" - "$PORT" <<'PYTHON'
import sys, time, urllib.request
import boto3
url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(100):
    try:
        urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="alab-demo-bucket")
PYTHON

# A tmux server of its own (-L), started here, so the pane has this environment (TLS settings included).
tmux -L "$SESSION" new-session -d -s "$SESSION" -x 120 -y 30 -c "$APP" \
    env TERM=xterm-256color PS1='$ ' PATH="$REPO/.venv/bin:/usr/bin:/bin" \
    UV_CACHE_DIR="$WORK/uv-cache" UV_PYTHON="$PY312" bash --noprofile --norc

"$PY" - "$SESSION" "$OUTPUT" "$WORK" <<'PYTHON'
"""Run the deploys in the pane, capture it while they run, and write the document."""
import re, subprocess, sys, time
from pathlib import Path

session, output, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])


def pane() -> str:
    text = subprocess.run(["tmux", "-L", session, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
    return text.rstrip("\n") + "\n"


def run(command: str, marker: str) -> list[str]:
    """Type ``command`` in the pane; every distinct screen until it is done (the marker file exists)."""
    done = work / marker
    subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, f"clear; {command}; touch {done}", "Enter"], check=True)
    screens: list[str] = []
    while not done.exists():
        screen = pane()
        if not screens or screens[-1] != screen:
            screens.append(screen)
        time.sleep(0.1)
    time.sleep(0.3)
    return [*screens, pane()]


def clean(screen: str) -> str:
    """The screen without the helper's own `clear; …; touch …` wrapper around the typed command."""
    screen = re.sub(r"clear; (.*?); touch \S+", r"\1", screen)
    return "\n".join(line.rstrip() for line in screen.splitlines()).strip("\n") + "\n"


def middle_of(screens: list[str], stage: str) -> str | None:
    """The screen in the middle of those showing ``stage`` running (its spinner, not its check mark)."""
    running = [s for s in screens if re.search(rf"^(?:[^\s✓]| ) {stage} ", s, re.M)]
    return running[len(running) // 2] if running else None


first = run("alab layer deploy", "first")
again = run("alab layer deploy", "again")
if "Published: analytics-deps version 1" not in first[-1] or "Unchanged: analytics-deps" not in again[-1]:
    sys.exit(f"the deploys did not go as expected; nothing written:\n{first[-1]}\n{again[-1]}")
sections = [
    ("while it installs (uv downloads every wheel: a spinner, the package count and the time so far)", "install"),
    ("while it zips (the bar counts the bytes written of the unzipped total)", "package"),
    ("while it uploads (the bar counts the bytes sent)", "upload"),
]
zip_line = re.search(r"layer\.zip (\S+ \S+) \((\S+ \S+) unzipped", first[-1])
head = f"""alab layer deploy on a {zip_line[1] if zip_line else "~60 MB"} layer, as a terminal shows it
{"=" * 60}

Written by scripts/capture-terminal-deploy.sh (run it again to refresh this file): a uv project depending on
pandas and scipy, locked with `uv lock` against PyPI, deployed for python3.12 x86_64 with an empty uv cache
({zip_line[1] if zip_line else "?"} zipped, {zip_line[2] if zip_line else "?"} unzipped). `alab layer deploy` runs in a 120x30 tmux pane;
`tmux capture-pane -p` took the screens below while it ran. AWS is a local moto server (AWS_ENDPOINT_URL),
so upload and publish are faster than against AWS. The project's pyproject.toml carries:

    [tool.aws_lambda_artifact_builder]
    layer_name = "analytics-deps"
    s3dir_lambda = "s3://alab-demo-bucket/apps/analytics/"
    python_version = "3.12"

Without a terminal (CI logs, pipes) the same run writes only the stage lines, without the marks, spinners
and bars; `-v` adds the installer's command and output, the file copies and each stage's detail.
docs/output.md reviews each line.
"""
parts = [head]
for title, stage in sections:
    screen = middle_of(first, stage)
    if screen is not None:
        parts.append(f"--- {title} ".ljust(110, "-") + "\n" + clean(screen))
parts.append("--- when it is done ".ljust(110, "-") + "\n" + clean(first[-1]))
parts.append("--- the same deploy again: nothing changed ".ljust(110, "-") + "\n" + clean(again[-1]))
output.write_text("\n".join(parts), encoding="utf-8")
print(f"wrote {output} ({len(first)} screens of the first deploy)")
PYTHON
