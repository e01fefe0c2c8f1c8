#!/usr/bin/env bash
# Install the gateways the bench compares against, pinned, under bench/.peers/ (kept out of git).
# Idempotent: a peer whose marker file exists is not reinstalled. A peer that fails to install
# leaves bench/.peers/<name>.failed with the reason, and the bench reports it as not measured.
#   bench/peers.sh            install all (floor, litellm, portkey)
#   bench/peers.sh litellm    install one
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=$HERE/.peers
PYTHON=${BENCH_PYTHON:-python3.11}
LITELLM_VERSION=1.108.7  # the newest whose [proxy] extra installs from PyPI (1.110.x needs litellm-proxy, not published)
# The floor's own dependencies, pinned so its numbers do not move under us.
FLOOR_REQS="aiohttp==3.14.5 orjson==3.13.0 uvloop==0.23.0"
PORTKEY_PACKAGE=${PORTKEY_PACKAGE:-$HERE/peers/portkey-package.json}  # the pins, in the repository (peers/README.md)
mkdir -p "$PEERS"

fail() { echo "$2" > "$PEERS/$1.failed"; echo "peers: $1 failed: $2" >&2; }

install_floor() {
  [ -f "$PEERS/floor.ok" ] && return 0
  rm -f "$PEERS/floor.failed"
  { $PYTHON -m venv "$PEERS/floor-venv" && "$PEERS/floor-venv/bin/pip" install -q $FLOOR_REQS; } \
    > "$PEERS/floor.log" 2>&1 || { fail floor "pip install $FLOOR_REQS (see .peers/floor.log)"; return 1; }
  echo "$FLOOR_REQS" > "$PEERS/floor.ok"
}

install_litellm() {
  [ -f "$PEERS/litellm.ok" ] && return 0
  rm -f "$PEERS/litellm.failed"
  { $PYTHON -m venv "$PEERS/litellm-venv" && "$PEERS/litellm-venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"; } \
    > "$PEERS/litellm.log" 2>&1 || { fail litellm "pip install litellm[proxy]==$LITELLM_VERSION (see .peers/litellm.log)"; return 1; }
  echo "litellm $LITELLM_VERSION" > "$PEERS/litellm.ok"
}

install_portkey() {
  [ -f "$PEERS/portkey.ok" ] && return 0
  rm -f "$PEERS/portkey.failed"
  command -v npm > /dev/null || { fail portkey "npm is not installed"; return 1; }
  [ -f "$PORTKEY_PACKAGE" ] || { fail portkey "no package.json with the pins at $PORTKEY_PACKAGE"; return 1; }
  mkdir -p "$PEERS/portkey" && cp "$PORTKEY_PACKAGE" "$PEERS/portkey/package.json"
  (cd "$PEERS/portkey" && npm install --no-audit --no-fund) > "$PEERS/portkey.log" 2>&1 \
    || { fail portkey "npm install (see .peers/portkey.log)"; return 1; }
  # Portkey 1.15.2 streams only with @hono/node-server 1.13.8 (Portkey-AI/gateway#1389, #1550):
  # drop any newer copy nested under the gateway so the pinned top-level one is used.
  rm -rf "$PEERS/portkey/node_modules/@portkey-ai/gateway/node_modules/@hono/node-server"
  local version
  version=$(node -p "require('$PEERS/portkey/node_modules/@portkey-ai/gateway/package.json').version" 2>/dev/null)
  [ -n "$version" ] || { fail portkey "the gateway package is missing after npm install"; return 1; }
  echo "portkey $version" > "$PEERS/portkey.ok"
}

status=0
for peer in ${@:-floor litellm portkey}; do
  "install_$peer" || status=1
done
exit $status
