"""A/B: LLM Relay under two sets of environment variables, alternated run by run.

Single runs on a shared 2-core VM move by about 5%, more than most changes worth measuring;
alternating A and B several times and comparing medians shows what one bench run cannot.
Same pinning as the bench (relay on core 0, upstream and wrk on core 1), c=32, no peers.
Besides req/s it reports the relay's CPU time per request (user and system, every thread, from
/proc), which moves less between runs than req/s and leaves out whatever else runs on the
load core (the upstream, wrk, a local PostgreSQL).

    python -m bench.ab --runs 4 --b USAGE_BATCH_SIZE=500
    python -m bench.ab --stream --untracked --a LOG_LEVEL=warning --b LOG_LEVEL=error
    python -m bench.ab --untracked a     # what usage rows cost: A without them, B with them
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
from datetime import datetime
from pathlib import Path

from bench import pg_pin, targets
from bench.measure import wrk


def pairs(values: list[str]) -> dict[str, str]:
    found = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep:
            raise SystemExit(f"bench.ab: {value!r} is not NAME=VALUE")
        found[name] = setting
    return found


def cpu_seconds(pid: int) -> float:
    """User and system time of a process and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(
    upstream: str, out: Path, env: dict[str, str], args: argparse.Namespace, tracked: bool
) -> tuple[float, float]:
    """req/s and the relay's CPU microseconds per request."""
    target = targets.relay(upstream, out, tracked=tracked)
    target.env.update(env)
    target.start(out)
    assert target.process is not None  # taskset execs the relay: its pid is the relay's
    try:
        wrk(target, 32, 2, stream=args.stream)  # warm-up
        before = cpu_seconds(target.process.pid)
        rps = float(wrk(target, 32, args.seconds, stream=args.stream)["rps"])
        used = cpu_seconds(target.process.pid) - before
        return rps, used / (rps * args.seconds) * 1e6
    finally:
        target.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="environment of setup A")
    parser.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="environment of setup B")
    parser.add_argument("--runs", type=int, default=3, help="runs of each, alternated (default 3)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--stream", action="store_true", help="streaming requests instead of whole replies")
    parser.add_argument(
        "--untracked",
        nargs="?",
        const="both",
        choices=("both", "a", "b"),
        help="usage rows switched off in both setups (or in only one: a or b)",
    )
    args = parser.parse_args(argv)
    setups = {"A": pairs(args.a), "B": pairs(args.b)}
    out = targets.HERE / "out" / ("ab-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True)
    upstream, base = targets.start_upstream(out)
    rates: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    database_pin = contextlib.ExitStack()
    servers = {env["DATABASE_URL"].rsplit("/", 1)[0] for env in setups.values() if "DATABASE_URL" in env}
    try:
        for server in sorted(s for s in servers if s.startswith("postgres")):
            print(database_pin.enter_context(pg_pin.pinned(server, targets.LOAD_CPU)), flush=True)
        for run in range(args.runs):
            for name, env in setups.items():
                directory = out / f"{name}{run}"
                directory.mkdir()
                tracked = args.untracked not in ("both", name.lower())
                rps, us = one_run(base, directory, env, args, tracked)
                rates[name].append(rps)
                cpu[name].append(us)
                print(f"{name} run {run + 1}: {rps:.0f} req/s, {us:.1f} us of relay CPU per request", flush=True)
    finally:
        database_pin.close()
        upstream.terminate()
        upstream.wait(10)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in rates.items():
        runs = [round(v) for v in values]
        print(
            f"{name} {setups[name] or '(defaults)'}: median {medians[name]:.0f} req/s of {runs}, "
            f"{cpu_medians[name]:.1f} us of relay CPU per request"
        )
    extra = cpu_medians["B"] - cpu_medians["A"]
    print(f"B/A = {medians['B'] / medians['A']:.3f}; relay CPU per request B-A = {extra:+.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
