#!/usr/bin/env bash
# Build the pinned Pulumi CLI from Go modules into .tools/pulumi/bin, plus our own dynamic-provider plugin script. Idempotent: a second run with the
# same pins returns at once; a rebuild reuses the Go build and module caches ($(go env GOCACHE), GOMODCACHE).
#
# `go install github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@V` refuses pkg/go.mod's replace directives, so a
# throwaway wrapper module requires the same versions and repeats the one replace that points outside the repo.
# Progress goes to stderr; stdout prints only the bin folder (for `PATH="$(scripts/install-pulumi.sh):$PATH"`).
#
# Not built: the Python language host. Its module (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
# has no tag of its own, and the Go module proxy answers "not available" for its pseudo-versions and for every
# query (@latest, commits): tests/pulumi runs Pulumi programs as Automation API inline programs, which need
# only the CLI.
set -euo pipefail

PULUMI_VERSION="v3.274.1"
CLIPBOARD_REPLACE="github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${ALAB_PULUMI_HOME:-$root/.tools/pulumi}"
bin="$dest/bin"
pins="pulumi=$PULUMI_VERSION plugin=3"
log() { printf 'install-pulumi: %s\n' "$*" >&2; }

if [[ -x "$bin/pulumi" && -f "$dest/.pins" && "$(cat "$dest/.pins")" == "$pins" ]]; then
    log "pulumi $PULUMI_VERSION already installed in $bin"
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { log "go is required (https://go.dev/dl/)"; exit 1; }
mkdir -p "$bin"
wrapper="$(mktemp -d)"
trap 'rm -rf "$wrapper"' EXIT
cd "$wrapper"
export GOFLAGS="${GOFLAGS:--p=1} -mod=mod"
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"

log "wrapper module in $wrapper (GOCACHE=$(go env GOCACHE), GOMODCACHE=$(go env GOMODCACHE))"
go mod init alab.local/pulumi-tools >/dev/null 2>&1
go mod edit -replace "github.com/atotto/clipboard=$CLIPBOARD_REPLACE"
log "resolving github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION"
go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" >&2
go get "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" >&2
log "building pulumi (several minutes cold, seconds warm)"
go build -trimpath -ldflags "$ldflags" -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# Our own dynamic-provider plugin: the engine starts it for `pulumi.dynamic` resources with the CLI's environment
# and cwd. It must run the Python where the program's packages are (pulumi/pulumi#7061): PULUMI_PYTHON_CMD when
# set, else PULUMI_RUNTIME_VIRTUALENV (relative to the cwd), else an active VIRTUAL_ENV, else this repository's
# .venv (`make install`), else python3 on PATH.
cat > "$bin/pulumi-resource-pulumi-python" <<PLUGIN
#!/bin/sh
python=python3
[ -x "$root/.venv/bin/python" ] && python="$root/.venv/bin/python"
[ -n "\${VIRTUAL_ENV:-}" ] && python="\$VIRTUAL_ENV/bin/python"
case "\${PULUMI_RUNTIME_VIRTUALENV:-}" in
    "") ;;
    /*) python="\$PULUMI_RUNTIME_VIRTUALENV/bin/python" ;;
    *) python="\$PWD/\$PULUMI_RUNTIME_VIRTUALENV/bin/python" ;;
esac
[ -n "\${PULUMI_PYTHON_CMD:-}" ] && python="\$PULUMI_PYTHON_CMD"
exec "\$python" -u -m pulumi.dynamic "\$@"
PLUGIN
chmod +x "$bin/pulumi-resource-pulumi-python"

echo "$pins" > "$dest/.pins"
log "installed: $("$bin/pulumi" version) in $bin"
echo "$bin"
