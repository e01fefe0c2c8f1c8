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
    python -m bench.ab --together --untracked a   # the same, A and B running side by side

``--together`` runs A and B at the same time, both on the gateway core, each under its own wrk:
the scheduler shares the core between them, so B/A is what each request costs the one against
the other, measured under the same conditions. Run one after the other, the VM's own speed
moved by 10-30% between runs (here: 390 to 650 us of CPU per request for the same setup within
minutes); side by side, the ratio of the same two setups moved by ~1%. The two swap which one
starts and is loaded first from run to run (with a fixed order B came out ~1% ahead of an
identical A).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

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


def together_run(
    upstream: str, out: Path, setups: dict[str, tuple[dict[str, str], bool]], seconds: int, stream: bool, run: int
) -> dict[str, tuple[float, float]]:
    """The setups (environment, tracked) at once, each relay under its own wrk at c=32, after a
    2 s warm-up together: req/s and CPU microseconds per request of each."""
    order = list(setups) if run % 2 == 0 else list(reversed(setups))  # who starts and is loaded first
    started: dict[str, targets.Target] = {}
    try:
        for name in order:
            env, tracked = setups[name]
            directory = out / f"{name}{run}"
            directory.mkdir(parents=True)
            target = started[name] = targets.relay(upstream, directory, tracked=tracked)
            target.env.update(env)
            target.start(directory)
        results: dict[str, dict[str, Any]] = {}

        def load(name: str, seconds: int) -> None:
            results[name] = wrk(started[name], 32, seconds, stream=stream)

        used: dict[str, float] = {}
        for length in (2, seconds):  # a warm-up, then the measured run
            loads = [threading.Thread(target=load, args=(name, length)) for name in order]
            before = {name: cpu_seconds(target.process.pid) for name, target in started.items() if target.process}
            for thread in loads:
                thread.start()
            for thread in loads:
                thread.join()
            used = {name: cpu_seconds(started[name].process.pid) - before[name] for name in before}  # type: ignore[union-attr]
        return {name: (rps := float(results[name]["rps"]), used[name] / (rps * seconds) * 1e6) for name in setups}
    finally:
        for target in started.values():
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
    parser.add_argument("--together", action="store_true", help="A and B side by side on the gateway core")
    args = parser.parse_args(argv)
    setups = {"A": pairs(args.a), "B": pairs(args.b)}
    out = targets.HERE / "out" / ("ab-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True)
    upstream, base = targets.start_upstream(out)
    rates: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    ratios: list[float] = []
    database_pin = contextlib.ExitStack()
    servers = {env["DATABASE_URL"].rsplit("/", 1)[0] for env in setups.values() if "DATABASE_URL" in env}
    try:
        for server in sorted(s for s in servers if s.startswith("postgres")):
            print(database_pin.enter_context(pg_pin.pinned(server, targets.LOAD_CPU)), flush=True)
        for run in range(args.runs):
            if args.together:
                both = {name: (env, args.untracked not in ("both", name.lower())) for name, env in setups.items()}
                measured = together_run(base, out, both, args.seconds, args.stream, run)
                for name, (rps, us) in measured.items():
                    rates[name].append(rps)
                    cpu[name].append(us)
                ratios.append(measured["B"][0] / measured["A"][0])
                print(
                    f"run {run + 1}: "
                    + ", ".join(f"{name} {rps:.0f} req/s ({us:.1f} us)" for name, (rps, us) in measured.items())
                    + f", B/A {ratios[-1]:.3f}",
                    flush=True,
                )
                continue
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
    ratio = statistics.median(ratios) if ratios else medians["B"] / medians["A"]
    how = f" (median of the runs' ratios {[round(r, 3) for r in ratios]})" if ratios else ""
    print(f"B/A = {ratio:.3f}{how}; relay CPU per request B-A = {extra:+.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
