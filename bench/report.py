"""The one table a bench run prints, the targets checked against it, and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.targets import HERE

RESULTS = HERE / "RESULTS.md"
ORDER = ("direct", "llm-relay", "llm-relay-pg", "llm-relay-untracked", "floor", "portkey", "litellm")
SIDE_BY_SIDE = "side-by-side"  # results: tracked / untracked c=32 ratios, the two relays run at once
# The paced upstream writes 12 frames 10 ms apart (bench/upstream.py: role, 8 content, finish,
# usage, [DONE] with the end of the body): a stream lasts 110 ms at best.
PACED_STREAM_SECONDS = 0.110


def ideal_paced(results: dict[str, dict[str, Any]], connections: int) -> float:
    """The paced rate a perfect gateway would reach: what the upstream sustains without one
    (direct), which already includes its timers' slack; the nominal rate if direct is missing."""
    direct = results.get("direct", {}).get("paced", {}).get("rps")
    return float(direct) if direct else connections / PACED_STREAM_SECONDS


def machine() -> str:
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = open("/proc/loadavg").read().split()[0]
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, load average before the run {load}"


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return found.group(1) if found else "?"


def _errors(run: dict[str, Any]) -> int:
    return int(run["non2xx"] + run["socket_errors"] + run["timeouts"])


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


def table(results: dict[str, dict[str, Any]], paced_connections: int) -> str:
    direct = results.get("direct", {})
    base_c1 = direct.get("nonstream", {}).get(1)
    base_ttft = direct.get("ttft", {}).get("ttft_p50_ms")
    floor_c32 = results.get("floor", {}).get("nonstream", {}).get(32, {}).get("rps")
    floor_stream = results.get("floor", {}).get("stream", {}).get("rps")
    litellm_c32 = results.get("litellm", {}).get("nonstream", {}).get(32, {}).get("rps")
    ideal = ideal_paced(results, paced_connections)
    rows = [
        "| setup | req/s c=1 | req/s c=32 | req/s c=128 | p50 / p99 ms c=1 | added p50 / p99 ms c=1 "
        "| p50 / p99 ms c=32 | stream req/s c=32 | added TTFT p50 ms | "
        f"{paced_connections} paced streams req/s (% ideal), p99 ms | peak RSS MB | requests | errors "
        "| c=32 vs LiteLLM | c=32 vs floor | stream vs floor | cold start s |",
        "|" + "---|" * 17,
    ]
    for name in ORDER:
        found = results.get(name)
        if found is None:
            continue
        if "missing" in found:
            rows.append(f"| {name} | {found['missing']} |" + " |" * 15)
            continue
        ns = found["nonstream"]
        c1, c32, c128, stream, paced = ns[1], ns[32], ns[128], found["stream"], found["paced"]
        added = "-"
        if base_c1 and name != "direct":
            added = f"{c1['p50_ms'] - base_c1['p50_ms']:+.2f} / {c1['p99_ms'] - base_c1['p99_ms']:+.2f}"
        ttft = found["ttft"]["ttft_p50_ms"]
        added_ttft = f"{ttft - base_ttft:+.2f}" if base_ttft is not None and name != "direct" else "-"
        errors = sum(_errors(r) for r in (c1, c32, c128, stream, paced)) + found["ttft"]["errors"]
        rss = f"{found['peak_rss_mb']:.0f}" if "peak_rss_mb" in found else "-"
        start = f"{found['start_s']:.2f}" if found.get("start_s") else "-"
        rows.append(
            f"| {name} | {c1['rps']:.0f} | {c32['rps']:.0f} | {c128['rps']:.0f} "
            f"| {c1['p50_ms']:.2f} / {c1['p99_ms']:.2f} | {added} | {c32['p50_ms']:.1f} / {c32['p99_ms']:.1f} "
            f"| {stream['rps']:.0f} | {added_ttft} "
            f"| {paced['rps']:.0f} ({100 * paced['rps'] / ideal:.0f}%), {paced['p99_ms']:.0f} | {rss} "
            f"| {found['requests']} | {errors} | {_ratio(c32['rps'], litellm_c32)} "
            f"| {_ratio(c32['rps'], floor_c32)} | {_ratio(stream['rps'], floor_stream)} | {start} |"
        )
    return "\n".join(rows)


def targets(results: dict[str, dict[str, Any]], paced_connections: int) -> list[str]:
    """The issue's targets for LLM Relay, each with the measured value and whether it is met."""
    relay = results.get("llm-relay")
    if not relay or "missing" in relay:
        return ["LLM Relay was not measured."]
    checks: list[tuple[str, float | None, str, bool | None]] = []

    def rps(name: str, key: Any) -> float | None:
        found = results.get(name, {})
        if "missing" in found or not found:
            return None
        run = found["nonstream"][key] if key != "stream" else found["stream"]
        return float(run["rps"])

    relay32, floor32, stream32 = rps("llm-relay", 32), rps("floor", 32), rps("llm-relay", "stream")
    for label, base, want in (
        ("floor", floor32, 0.7),
        ("Portkey", rps("portkey", 32), 3),
        ("LiteLLM", rps("litellm", 32), 30),
    ):
        value = relay32 / base if relay32 and base else None
        checks.append((f"non-streaming c=32 >= {want}x {label}", value, "x", None if value is None else value >= want))
    floor_stream = rps("floor", "stream")
    value = stream32 / floor_stream if stream32 and floor_stream else None
    checks.append(("streaming c=32 >= 0.7x floor", value, "x", None if value is None else value >= 0.7))
    direct = results["direct"]
    p50 = relay["nonstream"][1]["p50_ms"] - direct["nonstream"][1]["p50_ms"]
    p99 = relay["nonstream"][1]["p99_ms"] - direct["nonstream"][1]["p99_ms"]
    checks.append(("added p50 at c=1 < 1 ms", p50, "ms", p50 < 1))
    checks.append(("added p99 at c=1 < 5 ms", p99, "ms", p99 < 5))
    added_ttft = relay["ttft"]["ttft_p50_ms"] - direct["ttft"]["ttft_p50_ms"]
    checks.append(("added TTFT (p50) < 2 ms", added_ttft, "ms", added_ttft < 2))
    share = 100 * relay["paced"]["rps"] / ideal_paced(results, paced_connections)
    checks.append((f"{paced_connections} paced streams >= 90% of ideal (direct)", share, "%", share >= 90))
    checks.append(
        (
            f"{paced_connections} paced streams p99 < 250 ms",
            relay["paced"]["p99_ms"],
            "ms",
            relay["paced"]["p99_ms"] < 250,
        )
    )
    start = relay.get("start_s")
    checks.append(("cold start (spawn to /health) < 2 s", start, "s", None if start is None else start < 2))
    untracked = rps("llm-relay-untracked", 32)
    for name, label in (("llm-relay", "SQLite"), ("llm-relay-pg", "PostgreSQL")):
        tracked = rps(name, 32)
        value = 100 * (untracked - tracked) / untracked if tracked and untracked else None
        met = None if value is None else value <= 10
        checks.append((f"usage rows on {label} cost <= 10% of throughput (c=32, vs untracked)", value, "%", met))
    for database, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        ratios = results.get(SIDE_BY_SIDE, {}).get(database)
        if ratios:
            value = 100 * (1 - statistics.median(ratios))
            checks.append(
                (
                    f"usage rows on {label} cost <= 10% of throughput (side by side, median of {len(ratios)})",
                    value,
                    "%",
                    value <= 10,
                )
            )
    rss = relay.get("peak_rss_mb", 0.0)
    served = relay["requests"]
    checks.append((f"peak RSS < 120 MB (after {served} requests)", rss, "MB", rss < 120 if served >= 20_000 else None))
    lines = []
    for label, value, unit, met in checks:
        shown = "not measured" if value is None else f"{value:.2f} {unit}".replace(" x", "x")
        verdict = {True: "met", False: "NOT met", None: "n/a"}[met]
        lines.append(f"- {label}: {shown} — {verdict}")
    return lines


def record(label: str, mode: str, results: dict[str, dict[str, Any]], paced_connections: int, notes: list[str]) -> str:
    """Prepend this run to bench/RESULTS.md (newest first) and return the section written."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(
        f"{name} {found['version']}" for name in ORDER if (found := results.get(name)) and found.get("version")
    )
    section = "\n".join(
        [
            f"## {now} — {label} ({mode})",
            "",
            f"Machine: {machine()}. wrk {wrk_version()}. Versions: {versions}.",
            "",
            table(results, paced_connections),
            "",
            "Targets (LLM Relay):",
            "",
            *targets(results, paced_connections),
            *(["", *notes] if notes else []),
            "",
        ]
    )
    head = "# Bench results\n\nWritten by `bench/run.sh`; newest run first. How to read them: bench/README.md.\n\n"
    old = RESULTS.read_text() if RESULTS.exists() else head
    # Whatever precedes the first run (the title, notes written by hand) stays on top.
    first = old.find("\n## ")
    preface, runs = (old[: first + 1], old[first + 1 :]) if first >= 0 else (old, "")
    RESULTS.write_text(preface + section + "\n" + runs)
    return section
