"""The one table a bench run prints, the targets checked against it, and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
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


def load_average() -> str:
    """The 1-minute load average now: read as a run starts, before its own load counts in it."""
    return Path("/proc/loadavg").read_text().split()[0]


def machine(load_before: str) -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"load average before the run {load_before}"
    )


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return found.group(1) if found else "?"


def _errors(run: dict[str, Any]) -> int:
    return int(run["non2xx"] + run["socket_errors"] + run["timeouts"])


def _ratio(value: float | None, base: float | None) -> str:
    found = ratio(value, base)
    return "-" if found is None else f"{found:.2f}x"


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


# Issue 24's targets for LLM Relay's req/s at c=32, whole replies and streams alike: at least
# this many times each peer's.
VERSUS = (("floor", "floor", 0.7), ("portkey", "Portkey", 3.0), ("litellm", "LiteLLM", 30.0))
# What usage rows may cost of c=32 throughput, in %: (relay setup, side-by-side key, database, limit).
ROW_COST = (("llm-relay", "sqlite", "SQLite", 15.0), ("llm-relay-pg", "postgres", "PostgreSQL", 10.0))
Check = tuple[str, float | None, str, bool | None]


def rps(results: dict[str, dict[str, Any]], name: str, key: int | str) -> float | None:
    """A setup's req/s: non-streaming at ``key`` connections, or streaming at 32 (``"stream"``)."""
    found = results.get(name) or {}
    if not found or "missing" in found:
        return None
    run = found["stream"] if key == "stream" else found["nonstream"][key]
    return float(run["rps"])


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value and base else None


def row_cost_sequential(results: dict[str, dict[str, Any]], name: str) -> float | None:
    """% of c=32 throughput the usage rows cost: ``name`` against the untracked relay, measured
    minutes apart (on a VM whose speed moves, this says little about a few percent)."""
    untracked, tracked = rps(results, "llm-relay-untracked", 32), rps(results, name, 32)
    return 100 * (untracked - tracked) / untracked if tracked and untracked else None


def row_cost_side_by_side(results: dict[str, dict[str, Any]], database: str) -> tuple[float, int] | None:
    """% of c=32 throughput the usage rows cost with tracked and untracked relays run at once
    (the median over the rounds), and the number of rounds."""
    ratios = results.get(SIDE_BY_SIDE, {}).get(database)
    return (100 * (1 - statistics.median(ratios)), len(ratios)) if ratios else None


def _throughput_checks(results: dict[str, dict[str, Any]]) -> list[Check]:
    checks: list[Check] = []
    for kind, key in (("non-streaming", 32), ("streaming", "stream")):
        relay = rps(results, "llm-relay", key)
        for name, label, want in VERSUS:
            value = ratio(relay, rps(results, name, key))
            checks.append((f"{kind} c=32 >= {want:g}x {label}", value, "x", None if value is None else value >= want))
    return checks


def _row_checks(results: dict[str, dict[str, Any]]) -> list[Check]:
    checks: list[Check] = []
    for name, _, label, limit in ROW_COST:
        value = row_cost_sequential(results, name)
        met = None if value is None else value <= limit
        checks.append((f"usage rows on {label} cost <= {limit:g}% of throughput (c=32, vs untracked)", value, "%", met))
    for _, database, label, limit in ROW_COST:
        if found := row_cost_side_by_side(results, database):
            value, rounds = found
            checks.append(
                (
                    f"usage rows on {label} cost <= {limit:g}% of throughput (side by side, median of {rounds})",
                    value,
                    "%",
                    value <= limit,
                )
            )
    return checks


def targets(results: dict[str, dict[str, Any]], paced_connections: int) -> list[str]:
    """Issue 24's targets for LLM Relay, each with the measured value and whether it is met."""
    relay = results.get("llm-relay")
    if not relay or "missing" in relay:
        return ["LLM Relay was not measured."]
    checks = _throughput_checks(results)
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
    checks += _row_checks(results)
    rss = relay.get("peak_rss_mb", 0.0)
    served = relay["requests"]
    checks.append((f"peak RSS < 120 MB (after {served} requests)", rss, "MB", rss < 120 if served >= 20_000 else None))
    lines = []
    for label, value, unit, met in checks:
        shown = "not measured" if value is None else f"{value:.2f} {unit}".replace(" x", "x")
        verdict = {True: "met", False: "NOT met", None: "n/a"}[met]
        lines.append(f"- {label}: {shown} — {verdict}")
    return lines


# bench/RESULTS.md: a preface, the latest full run, the latest quick or partial run (if any), one
# table row per full run ever recorded (newest first), then findings written by hand.
LATEST_FULL = "## Latest full run"
LATEST_OTHER = "## Latest quick or partial run"
HISTORY = "## History"
FINDINGS = "## Findings"
SECTIONS = (LATEST_FULL, LATEST_OTHER, HISTORY, FINDINGS)
HISTORY_HEAD = (
    "| date (UTC) | commit | what changed | floor req/s c=32 | relay req/s c=32 | relay stream req/s c=32 "
    "| vs floor c=32 / stream | vs Portkey c=32 | vs LiteLLM c=32 "
    "| usage rows cost SQLite / PostgreSQL |"
)
PREFACE = (
    "# Bench results\n\n"
    "What `bench/run.sh` measured: the latest full run, then one row per full run, then findings. "
    "How to read them and how runs are named: bench/README.md.\n\n"
)


def checked_out() -> str:
    """The commit the relay runs from, ``git rev-parse --short HEAD``, with ``+changes`` when
    tracked files under app/ differ from it (``unknown`` without git)."""
    git = ["git", "-C", str(HERE.parent)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "app"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _row_costs(results: dict[str, dict[str, Any]]) -> str:
    """Side by side where measured (the figure the targets trust), else sequential ("seq")."""
    side = [row_cost_side_by_side(results, database) for _, database, _, _ in ROW_COST]
    if any(side):
        return " / ".join("-" if found is None else f"{found[0]:.2f}%" for found in side)
    sequential = [row_cost_sequential(results, name) for name, _, _, _ in ROW_COST]
    if all(value is None for value in sequential):
        return "-"
    return " / ".join("-" if value is None else f"{value:.2f}%" for value in sequential) + " seq"


def history_row(when: str, commit: str, label: str, results: dict[str, dict[str, Any]]) -> str:
    """The run's row in RESULTS.md's history table, from its results."""
    relay = {key: rps(results, "llm-relay", key) for key in (32, "stream")}

    def versus(name: str, keys: tuple[int | str, ...] = (32,)) -> str:
        return " / ".join(_times(ratio(relay[key], rps(results, name, key))) for key in keys)

    def count(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    what = " ".join(label.replace("|", "/").split()) or "-"
    cells = [when, commit, what, count(rps(results, "floor", 32)), count(relay[32]), count(relay["stream"])]
    cells += [versus("floor", (32, "stream")), versus("portkey"), versus("litellm"), _row_costs(results)]
    return "| " + " | ".join(cells) + " |"


def _find(lines: list[str], heading: str) -> tuple[int, int] | None:
    """Where a ``## `` section starts and ends (the next ``## `` heading or the end)."""
    if heading not in lines:
        return None
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def _place(lines: list[str], heading: str) -> int:
    """Where a missing section goes: before the first section that follows it in SECTIONS."""
    for later in SECTIONS[SECTIONS.index(heading) + 1 :]:
        if found := _find(lines, later):
            return found[0]
    return len(lines)


def replace_section(text: str, heading: str, body: str) -> str:
    """``text`` with the ``## heading`` section holding ``body`` alone (added where it belongs)."""
    lines = text.rstrip("\n").split("\n")
    found = _find(lines, heading)
    start, end = found if found else (_place(lines, heading),) * 2
    return (
        "\n".join([*lines[:start], heading, "", *body.rstrip("\n").split("\n"), "", *lines[end:]]).rstrip("\n") + "\n"
    )


def add_history_row(text: str, row: str) -> str:
    """``text`` with ``row`` first in the history table (the section and table made if missing)."""
    if not _find(text.rstrip("\n").split("\n"), HISTORY):
        text = replace_section(text, HISTORY, f"{HISTORY_HEAD}\n|{'---|' * 10}")
    lines = text.rstrip("\n").split("\n")
    start, end = _find(lines, HISTORY) or (0, 0)
    head = next((i for i in range(start, end) if lines[i].startswith("| date (UTC) |")), None)
    if head is None:
        lines[start + 1 : start + 1] = ["", HISTORY_HEAD, f"|{'---|' * 10}"]
        head = start + 2
    lines.insert(head + 2, row)
    return "\n".join(lines) + "\n"


def record(
    label: str,
    mode: str,
    results: dict[str, dict[str, Any]],
    paced_connections: int,
    notes: list[str],
    *,
    full: bool,
    load_before: str,
    commit: str = "",
) -> str:
    """Write this run into bench/RESULTS.md and return the section written. Its heading names
    the time it is recorded (UTC), the commit measured (``checked_out()`` unless given) and the
    label; the machine line gives ``load_before``, :func:`load_average` as the run started. A
    full run of every setup replaces the latest full run and adds its row to the history; any
    other run replaces the latest quick or partial run only."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    commit = commit or checked_out()
    versions = ", ".join(
        f"{name} {found['version']}" for name in ORDER if (found := results.get(name)) and found.get("version")
    )
    section = "\n".join(
        [
            f"### {when} UTC, {commit}" + (f": {label}" if label else ""),
            "",
            f"Mode: {mode}.",
            "",
            f"Machine: {machine(load_before)}. wrk {wrk_version()}. Versions: {versions}.",
            "",
            table(results, paced_connections),
            "",
            "Targets (LLM Relay):",
            "",
            *targets(results, paced_connections),
            *(["", *notes] if notes else []),
        ]
    )
    text = RESULTS.read_text() if RESULTS.exists() else PREFACE
    text = replace_section(text, LATEST_FULL if full else LATEST_OTHER, section)
    if full:
        text = add_history_row(text, history_row(when, commit, label, results))
    RESULTS.write_text(text)
    return section
