#!/usr/bin/env bash
# The bench, in one command: install the pinned peers if needed, then measure direct, LLM Relay,
# the floor, Portkey and LiteLLM one after another and print one table (also written into
# bench/RESULTS.md).  bench/run.sh [--quick] [--only llm-relay floor] [--label TEXT] [--no-record]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${BENCH_PYTHON:-}
if [ -z "$PYTHON" ]; then
  # The first Python whose environment has llm-relay installed (its console script beside it).
  for candidate in "${VIRTUAL_ENV:-/nonexistent}/bin/python" .venv/bin/python ../venv/bin/python; do
    [ -x "$(dirname "$candidate")/llm-relay" ] && PYTHON=$candidate && break
  done
fi
[ -n "$PYTHON" ] || { echo "bench: no Python with llm-relay installed (pip install -e .)" >&2; exit 2; }
command -v wrk > /dev/null || { echo "bench: wrk is missing: apt-get install -y wrk" >&2; exit 2; }
BENCH_PYTHON=$PYTHON bench/peers.sh || echo "bench: some peers did not install; they are reported as such" >&2
exec "$PYTHON" -m bench "$@"
