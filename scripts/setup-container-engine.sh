#!/usr/bin/env bash
# Give a Debian machine without Docker a working container engine for the container-build tests:
# podman + runc, a local image with Debian's Python 3.11, and a podman API socket so that the
# ordinary `docker` CLI works too (DOCKER_HOST). Idempotent: every step is skipped when done.
#
# Usage (as .ci/run does):  engine_env="$(scripts/setup-container-engine.sh)"; eval "$engine_env"
# Progress goes to stderr; stdout carries only the `export` lines for the caller's shell.
set -euo pipefail

IMAGE="${ALAB_CONTAINER_TEST_IMAGE:-localhost/alab-build-python:3.11-bookworm}"
SOCKET_DIR="${ALAB_PODMAN_SOCKET_DIR:-/run/alab-podman}"
SOCKET="$SOCKET_DIR/podman.sock"
MIRROR="${ALAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONF=/etc/containers/containers.conf

log() { echo "setup-container-engine: $*" >&2; }

SUDO=""
if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null || { log "run as root or install sudo: packages and $CONF need root"; exit 1; }
    SUDO="sudo"
fi

# 1. Packages. Only touch apt when something is missing.
missing=()
for pkg in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. Engine configuration: crun does not start here, and raising rlimits is not permitted.
wanted_conf='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"'
if [ "$(cat "$CONF" 2>/dev/null || true)" != "$wanted_conf" ]; then
    log "writing $CONF"
    $SUDO mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$wanted_conf" | $SUDO tee "$CONF" >/dev/null
fi

# 3. The build image: Debian bookworm's python3 (3.11) with venv and pip, made offline from packages.
if podman image exists "$IMAGE"; then
    log "reusing image $IMAGE"
else
    rootfs="$(mktemp -d /var/tmp/alab-rootfs.XXXXXX)"
    trap '$SUDO rm -rf "$rootfs" "$rootfs.log"' EXIT
    log "debootstrap bookworm into $rootfs (takes about a minute)"
    if ! $SUDO debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3 \
        bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1; then
        tail -n 30 "$rootfs.log" >&2
        exit 1
    fi
    rm -f "$rootfs.log"
    $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    log "importing $IMAGE"
    $SUDO tar -C "$rootfs" -c . | podman import --change 'CMD ["/usr/bin/python3"]' - "$IMAGE" >&2
    $SUDO rm -rf "$rootfs"
    trap - EXIT
fi
podman run --rm --network host "$IMAGE" python -c 'import sys, venv, pip; assert sys.version_info[:2] == (3, 11)' >&2

# 4. The podman API socket for the docker CLI. Reuse a service that already answers.
answers() { DOCKER_HOST="unix://$SOCKET" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# A service can answer yet no longer start containers (its `run` leaves them "Created"): check one start.
starts() {
    local name="alab-engine-check-$$" ok=1
    DOCKER_HOST="unix://$SOCKET" timeout 20 docker run --detach --rm --name "$name" "$IMAGE" sleep 2 >/dev/null 2>&1 && ok=0
    podman rm --force --time 0 "$name" >/dev/null 2>&1 || true
    return $ok
}
if answers && ! starts; then
    log "podman system service on $SOCKET answers but starts no container: restarting it"
    pkill -f "podman system service --time=0 unix://$SOCKET" || true
    sleep 1
fi
if ! answers; then
    $SUDO mkdir -p "$SOCKET_DIR"
    rm -f "$SOCKET"
    log "starting podman system service on $SOCKET"
    setsid podman system service --time=0 "unix://$SOCKET" >"$SOCKET_DIR/service.log" 2>&1 </dev/null &
    echo $! >"$SOCKET_DIR/service.pid"
    for _ in $(seq 1 60); do
        answers && break
        sleep 0.5
    done
    answers || { log "podman system service did not answer on $SOCKET; see $SOCKET_DIR/service.log"; exit 1; }
fi
log "docker CLI talks to podman $(DOCKER_HOST="unix://$SOCKET" docker version --format '{{.Server.Version}}')"

printf 'export DOCKER_HOST=%q\n' "unix://$SOCKET"
printf 'export ALAB_CONTAINER_TEST_IMAGE=%q\n' "$IMAGE"
