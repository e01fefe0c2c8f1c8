"""Instructions per request under callgrind: what a usage row costs, without the VM's noise.

Throughput on a shared VM moves by 10-30% from one run to the next, more than the row cost
being measured. Callgrind counts the instructions the relay executes (its own process, every
thread; not the kernel's work, not the database server's), which come out the same on every
run. Each setup runs twice, for ``--small`` and ``--large`` requests; the difference divided by
the extra requests cancels out startup and shutdown.

    python -m bench.instructions                      # untracked, then tracked on SQLite
    python -m bench.instructions --postgres           # and tracked on the local PostgreSQL

Needs Debian's ``valgrind``. Under callgrind the relay runs ~50x slower: ~10 minutes for the
three setups. ``USAGE_FLUSH_SECONDS`` is raised so batches still fill to ``USAGE_BATCH_SIZE``
rows, as they do under real load, instead of being written a few rows at a time.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import tempfile
import threading
import time
from pathlib import Path

from app.settings import Settings
from bench import targets

POSTGRES = "postgres://postgres@127.0.0.1:5432"


def drive(target: targets.Target, requests: int, clients: int) -> None:
    """``requests`` chat completions from ``clients`` keep-alive connections, all checked."""
    host, _, port = target.url.split("//")[1].split("/")[0].partition(":")
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hello"}]}' % target.model.encode()
    headers = {"Content-Type": "application/json", **target.headers}
    failures: list[str] = []

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        for _ in range(count):
            connection.request("POST", "/v1/chat/completions", body, headers)
            reply = connection.getresponse()
            reply.read()
            if reply.status != 200:
                failures.append(f"HTTP {reply.status}")
        connection.close()

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")


def one_run(setup: str, requests: int, out: Path, upstream: str, database_url: str) -> int:
    """Total instructions of one relay process that served ``requests`` (after a warm-up)."""
    run = out / f"{setup}-{requests}"
    run.mkdir(parents=True)
    target = targets.relay(upstream, run, tracked=setup != "untracked", database_url=database_url)
    target.env["USAGE_FLUSH_SECONDS"] = "600"  # batches fill up, as under load
    profile = run / "callgrind.out"
    target.command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", *target.command]
    target.start(run, timeout=900)
    try:
        batch = int(target.env.get("USAGE_BATCH_SIZE", Settings.usage_batch_size))
        drive(target, 4 * batch, 8)  # warm-up: imports, caches, the first batches
        drive(target, requests, 8)
        time.sleep(2)
    finally:
        target.stop()
    for line in profile.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {profile}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="requests of the first run (default 1000)")
    parser.add_argument("--large", type=int, default=3000, help="requests of the second run (default 3000)")
    parser.add_argument("--postgres", action="store_true", help="also tracked on the local PostgreSQL")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")
    setups = ["untracked", "sqlite"] + (["postgres"] if args.postgres else [])
    out = Path(tempfile.mkdtemp(prefix="relay-instructions-"))
    upstream, base = targets.start_upstream(out)
    per_request: dict[str, float] = {}
    try:
        for setup in setups:
            totals = []
            for requests in (args.small, args.large):
                database = targets.postgres_database(POSTGRES, f"bench_instr_{requests}") if setup == "postgres" else ""
                try:
                    totals.append(one_run(setup, requests, out, base, database))
                finally:
                    if database:
                        targets.postgres_database(POSTGRES, f"bench_instr_{requests}", drop=True)
            per_request[setup] = (totals[1] - totals[0]) / (args.large - args.small)
            print(f"{setup}: {per_request[setup]:,.0f} instructions per request", flush=True)
    finally:
        upstream.kill()
    base_cost = per_request["untracked"]
    for setup in setups[1:]:
        row = per_request[setup] - base_cost
        print(f"a usage row on {setup}: {row:,.0f} instructions, {row / base_cost:.1%} of an untracked request")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
