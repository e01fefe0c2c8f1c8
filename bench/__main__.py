"""``python -m bench [--quick] [--only NAME ...] [--label TEXT]``: measure every setup, one after
another, against one emulated upstream; print one table and write it into bench/RESULTS.md,
named by the time and the commit measured (a full run of every setup as the latest full run and
a row of the history, any other run as the latest quick or partial run).

Use ``bench/run.sh``, which installs the peers first. Each gateway is started, measured and
stopped before the next starts, so none competes with another for its core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import ab, pg_pin, report, targets
from bench.measure import FULL, QUICK, measure, soak, soak_report, take_medians, throughput


def say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per run (under 3 minutes in all)")
    parser.add_argument("--only", nargs="*", choices=report.ORDER, help="measure only these (direct always runs)")
    parser.add_argument(
        "--label", default="", help="what this run measures, a few words (its description in RESULTS.md)"
    )
    parser.add_argument("--no-record", action="store_true", help="print the table, leave RESULTS.md alone")
    parser.add_argument(
        "--untracked", action="store_true", help="also measure LLM Relay with usage rows switched off (a what-if)"
    )
    parser.add_argument(
        "--route", action="store_true", help="LLM Relay serves a two-deployment route, not the model itself"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgres://postgres@127.0.0.1:5432",
        help="also measure LLM Relay writing its usage rows to PostgreSQL (a fresh database on this server)",
    )
    parser.add_argument(
        "--soak", type=float, metavar="MINUTES", help="then load LLM Relay this long, watching its memory"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="measure the c=32 and stream ratios N times, the setups alternating, and report medians "
        "(LiteLLM, and direct, are measured once)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        say("bench: needs wrk and taskset (apt-get install wrk util-linux)")
        return 2
    plan = QUICK if args.quick else FULL
    commit = report.checked_out()  # what is measured: the tree as the run starts
    load_before = report.load_average()  # before anything starts: afterwards it counts the run itself
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = targets.HERE / "out" / stamp
    out.mkdir(parents=True)
    began = time.perf_counter()
    upstream, base = targets.start_upstream(out)
    pg_name = f"llm_relay_bench_{stamp.replace('-', '_')}"
    pg_url = targets.postgres_database(args.postgres, pg_name) if args.postgres else ""
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    database_pin = contextlib.ExitStack()
    try:
        if args.route:
            notes.append(f"LLM Relay served the route {targets.ROUTE!r} of two deployments (--route)")
        if args.postgres:
            notes.append(database_pin.enter_context(pg_pin.pinned(args.postgres, targets.LOAD_CPU)))
            say(notes[-1])
        setups = [
            targets.direct(base),
            targets.relay(base, out, routed=args.route),
            *([targets.relay(base, out, tracked=False)] if args.untracked else []),
            *([targets.relay(base, out, database_url=pg_url)] if pg_url else []),
            targets.floor(base),
            targets.portkey(base),
            targets.litellm(base, out),
        ]
        for target in setups:
            if args.only and target.name != "direct" and target.name not in args.only:
                continue
            if target.missing:
                say(f"{target.name}: {target.missing}")
                results[target.name] = {"missing": target.missing}
                continue
            try:
                started = target.start(out)
                say(f"{target.name}: up in {started:.1f} s" if target.command else f"{target.name}:")
                results[target.name] = measure(target, plan, say)
                results[target.name]["version"] = target.version
                results[target.name]["start_s"] = started
            except (RuntimeError, OSError) as exc:
                say(f"{target.name}: failed: {exc}")
                results[target.name] = {"missing": f"failed: {exc}"[:200]}
            finally:
                target.stop()
        rounds = more_rounds(setups, results, args.rounds, plan, out)
        take_medians(results, rounds)
        if args.untracked and not args.only:
            results[report.SIDE_BY_SIDE] = side_by_side(base, out, pg_url, max(args.rounds, 3), plan.seconds)
        if args.soak:
            notes += soak_report(soak(targets.relay(base, out), args.soak, say))
    finally:
        database_pin.close()
        if args.postgres:
            targets.postgres_database(args.postgres, pg_name, drop=True)
        upstream.terminate()
        upstream.wait(10)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    for database in out.glob("*.db*"):  # tens of thousands of usage rows per run: not worth keeping
        database.unlink()
    mode = f"{'quick' if args.quick else 'full'}: {plan.seconds} s per run after {plan.warmup} s warm-up"
    if args.rounds > 1:
        mode += f"; c=32 and stream req/s: medians of {args.rounds} rounds (all but direct and LiteLLM)"
    if args.only:
        mode += "; only " + ", ".join(["direct", *args.only])
    say(f"\nbench finished in {time.perf_counter() - began:.0f} s; raw results in {out.relative_to(Path.cwd())}\n")
    if args.no_record:
        say(report.table(results, plan.paced_concurrency))
        say("\n" + "\n".join(report.targets(results, plan.paced_concurrency)))
    else:
        full = not args.quick and not args.only
        section = report.record(
            args.label, mode, results, plan.paced_concurrency, notes, full=full, load_before=load_before, commit=commit
        )
        say(section)
    return 0


def more_rounds(
    setups: list[targets.Target], results: dict[str, dict[str, Any]], count: int, plan: Any, out: Path
) -> dict[str, list[tuple[float, float]]]:
    """Rounds 2..count of the throughput runs, every setup once per round, so that a slow spell
    of this shared machine lands on all of them instead of on one."""
    measured = [
        t for t in setups if t.name in results and "missing" not in results[t.name] and t.name not in SINGLE_ROUND
    ]
    rounds: dict[str, list[tuple[float, float]]] = {t.name: [] for t in measured}
    for number in range(2, count + 1):
        for target in measured:
            target.start(out)
            try:
                rounds[target.name].append(throughput(target, plan))
            finally:
                target.stop()
            plain, stream = rounds[target.name][-1]
            say(f"round {number}: {target.name} c=32 {plain:.0f} req/s, stream {stream:.0f} req/s")
    return rounds


def side_by_side(upstream: str, out: Path, pg_url: str, count: int, seconds: int) -> dict[str, list[float]]:
    """What usage rows cost, measured with the tracked and the untracked relay running at the
    same time on the gateway core (see bench.ab --together): c=32 req/s of tracked over
    untracked, once per round, for SQLite and (with --postgres) PostgreSQL."""
    ratios: dict[str, list[float]] = {"sqlite": [], **({"postgres": []} if pg_url else {})}
    for number in range(count):
        for database in ratios:
            env = {"DATABASE_URL": pg_url} if database == "postgres" else {}
            setups = {"untracked": ({}, False), "tracked": (env, True)}
            measured = ab.together_run(upstream, out / f"side-{database}", setups, seconds, False, number)
            ratios[database].append(measured["tracked"][0] / measured["untracked"][0])
            say(f"side by side {number + 1}: {database} rows, tracked / untracked c=32 = {ratios[database][-1]:.3f}")
    return ratios


SINGLE_ROUND = {"direct", "litellm"}  # direct is no ratio's base; LiteLLM's 30x margin needs no median


if __name__ == "__main__":
    sys.exit(main())
