"""One target's measurements: bounded wrk runs, the time-to-first-token probe and peak RSS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.targets import HERE, LOAD_CPU, Target


@dataclass(frozen=True)
class Plan:
    seconds: int  # measured seconds per wrk run
    warmup: int  # seconds of unmeasured load before each run
    ttft_requests: int
    concurrencies: tuple[int, ...] = (1, 32, 128)
    stream_concurrency: int = 32
    paced_concurrency: int = 64


QUICK = Plan(seconds=3, warmup=1, ttft_requests=25)
FULL = Plan(seconds=10, warmup=2, ttft_requests=100)


def wrk(target: Target, connections: int, seconds: int, *, stream: bool = False, paced: bool = False) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_MODEL": target.paced_model if paced else target.model,
        "BENCH_STREAM": "1" if stream else "0",
        "BENCH_HEADERS": ";".join(f"{k}: {v}" for k, v in target.headers.items()),
    }
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(HERE / "chat.lua"), target.url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[6:])
            return result
    raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")


def ttft(target: Target, requests: int) -> dict[str, Any]:
    command = ["taskset", "-c", LOAD_CPU, sys.executable, str(HERE / "ttft.py"), target.url]
    command += ["--model", target.paced_model, "-n", str(requests)]
    for name, value in target.headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[6:])
            return result
    raise RuntimeError(f"the TTFT probe failed: {done.stderr[-500:]}")


def tree(pid: int) -> list[int]:
    """The process and all its descendants (LiteLLM and Portkey may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def peak_rss_mb(pid: int) -> float:
    """The sum over the process tree of each process's high-water resident set (VmHWM)."""
    total_kb = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _errors(run: dict[str, Any]) -> int:
    return int(run["non2xx"] + run["socket_errors"] + run["timeouts"])


def measure(target: Target, plan: Plan, say: Any) -> dict[str, Any]:
    """Every measurement of one started target, one after another."""
    results: dict[str, Any] = {"nonstream": {}, "requests": 0}
    for connections in plan.concurrencies:
        wrk(target, connections, plan.warmup)
        run = wrk(target, connections, plan.seconds)
        results["nonstream"][connections] = run
        results["requests"] += run["requests"]
        latency = f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms"
        say(f"  non-streaming c={connections}: {run['rps']:.0f} req/s, {latency}, errors {_errors(run)}")
    wrk(target, plan.stream_concurrency, plan.warmup, stream=True)
    results["stream"] = run = wrk(target, plan.stream_concurrency, plan.seconds, stream=True)
    results["requests"] += run["requests"]
    errors = _errors(run)
    say(f"  streaming c={plan.stream_concurrency}: {run['rps']:.0f} req/s, p99 {run['p99_ms']:.1f} ms, errors {errors}")
    results["ttft"] = probe = ttft(target, plan.ttft_requests)
    say(f"  paced TTFT: p50 {probe['ttft_p50_ms']:.2f} ms, p99 {probe['ttft_p99_ms']:.2f} ms")
    results["paced"] = run = wrk(target, plan.paced_concurrency, plan.seconds, stream=True, paced=True)
    results["requests"] += run["requests"]
    say(f"  {plan.paced_concurrency} paced: {run['rps']:.0f} req/s, p99 {run['p99_ms']:.1f} ms, errors {_errors(run)}")
    if target.process is not None:
        results["peak_rss_mb"] = peak_rss_mb(target.process.pid)
    return results


def throughput(target: Target, plan: Plan) -> tuple[float, float]:
    """One more round of the two ratio runs (c=32 whole replies, c=32 streams), each warmed up."""
    wrk(target, 32, plan.warmup)
    plain = float(wrk(target, 32, plan.seconds)["rps"])
    wrk(target, plan.stream_concurrency, plan.warmup, stream=True)
    return plain, float(wrk(target, plan.stream_concurrency, plan.seconds, stream=True)["rps"])


def take_medians(results: dict[str, Any], rounds: dict[str, list[tuple[float, float]]]) -> None:
    """Each setup's c=32 and stream req/s become the median of its rounds (the first being the
    main pass); every round's figure is kept beside it."""
    for name, extra in rounds.items():
        plain_run, stream_run = results[name]["nonstream"][32], results[name]["stream"]
        plain = [float(plain_run["rps"]), *(p for p, _ in extra)]
        stream = [float(stream_run["rps"]), *(s for _, s in extra)]
        plain_run["rps_rounds"], stream_run["rps_rounds"] = plain, stream
        plain_run["rps"], stream_run["rps"] = statistics.median(plain), statistics.median(stream)


def rss_mb(pid: int) -> float:
    """The current resident set of the process tree."""
    total_kb = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


def soak(target: Target, minutes: float, say: Any, step: int = 30) -> dict[str, Any]:
    """Load a fresh gateway at c=32 for ``minutes`` in ``step``-second runs, noting its memory
    after each: a leak shows as growth after the first minute (caches fill in the first)."""
    out = HERE / "out"
    target.start(out)
    samples: list[tuple[float, float, int]] = []  # (minutes, RSS MB, requests so far)
    served = 0
    try:
        assert target.process is not None
        runs = max(1, round(minutes * 60 / step))
        for index in range(runs):
            run = wrk(target, 32, step)
            served += run["requests"]
            samples.append(((index + 1) * step / 60, rss_mb(target.process.pid), served))
            minute, mb = samples[-1][0], samples[-1][1]
            say(f"  soak {minute:.1f} min: {mb:.1f} MB after {served} requests, {run['rps']:.0f} req/s")
        peak = peak_rss_mb(target.process.pid)
    finally:
        target.stop()
    return {"samples": samples, "peak_rss_mb": peak, "minutes": minutes}


def soak_report(result: dict[str, Any]) -> list[str]:
    samples = result["samples"]
    settled = next((s for s in samples if s[0] >= 1.0), samples[0])
    last = samples[-1]
    growth = last[1] - settled[1]
    verdict = "met" if growth <= max(2.0, 0.05 * settled[1]) and result["peak_rss_mb"] < 120 else "NOT met"
    points = ", ".join(f"{m:.1f} min {mb:.0f} MB" for m, mb, _ in samples)
    return [
        f"Soak (LLM Relay, c=32, {result['minutes']:.0f} min, {last[2]} requests): RSS {points}; "
        f"peak {result['peak_rss_mb']:.0f} MB; growth after the first minute {growth:+.1f} MB.",
        "",
        f"- no memory growth over the soak (within 5% or 2 MB after the first minute), peak < 120 MB: {verdict}",
    ]
