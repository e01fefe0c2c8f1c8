#!/usr/bin/env bash
# Build the image from the Containerfile without a registry and smoke-test it inside.
#
# Pulling base images is impossible on the build machines and `podman run` fails there, so:
# a Debian bookworm base is made with debootstrap and imported; the project's wheels are built
# on the host (Python 3.11, as in bookworm) and installed offline; `podman build --isolation
# chroot` builds the image and `buildah run --isolation chroot` runs container/smoke.py in it.
# Needs root, podman, buildah and debootstrap (apt-get install podman buildah debootstrap).
# Takes a few minutes (most of it debootstrap, once).
set -euo pipefail
cd "$(dirname "$0")/.."
export STORAGE_DRIVER=vfs
BASE=localhost/llm-relay-base:bookworm
IMAGE=localhost/llm-relay:check
BUILD=container/build
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! podman image exists "$BASE"; then
    rm -rf "$BUILD/rootfs" && mkdir -p "$BUILD"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$BUILD/rootfs" "$MIRROR"
    tar -C "$BUILD/rootfs" -c . | podman import - "$BASE"
    rm -rf "$BUILD/rootfs"
fi

python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), "build the wheels with Python 3.11 (bookworm has 3.11)"'
# The project is built from source in the image too: its build backend must be there offline.
python3 -m pip wheel --quiet --wheel-dir container/wheels . "setuptools>=68" wheel
podman build --isolation chroot --build-arg BASE="$BASE" \
    --build-arg PIP_ARGS="--no-index --find-links /src/wheels" -t "$IMAGE" -f Containerfile .

container=$(buildah from "$IMAGE")
trap 'buildah rm "$container" >/dev/null' EXIT
buildah run --isolation chroot \
    -v "$PWD/container/smoke.py:/smoke.py:ro" \
    -v "$PWD/tests/fixtures/openai/chat_nonstream_basic.json:/fixture.json:ro" \
    "$container" -- python3 /smoke.py
echo "container check passed: $IMAGE"
