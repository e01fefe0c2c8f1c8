"""Prometheus metrics: requests, errors, tokens and cost by provider and model, latency and
time-to-first-token histograms, the usage writer's backlog; per tag only when
``METRICS_TAGS`` is on (tags are unbounded, Prometheus series should not be).

Counting is a few dictionary updates per request, from the usage row the cost stage builds.
With several workers each one also writes its counts to a file under ``DATA_DIR/metrics`` once
a second, and ``/metrics`` on any worker adds up all of them (files of workers that have gone
stay, so counters never go backwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from app.stores.usage_row import UsageRow

log = logging.getLogger("llm_relay.metrics")
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
TOKENS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("cached_input", "cached_input_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
)
NANOS = Decimal(1_000_000_000)


def _histogram(buckets: tuple[float, ...]) -> list[float]:
    return [0.0] * (len(buckets) + 2)  # a count per bucket (the last is +Inf), then the sum


def _observe(histogram: list[float], buckets: tuple[float, ...], seconds: float) -> None:
    histogram[bisect_left(buckets, seconds)] += 1  # the first bucket whose bound is >= seconds; else +Inf
    histogram[-1] += seconds


class Metrics:
    def __init__(self, *, tags: bool = False) -> None:
        self.tags = tags
        self.counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.histograms: dict[str, dict[str, list[float]]] = {"latency": {}, "ttft": {}}
        self.directory: Path | None = None
        self.dirty = False
        self._task: asyncio.Task[None] | None = None
        self._label_cache: dict[tuple[str, str, str], tuple[str, str, tuple[str, ...]]] = {}
        # The worker's own figures (usage rows written, pending...), shared like the counters so
        # a scrape through the shared port sees the whole instance, whichever worker answers.
        self.figures: Callable[[], dict[str, float]] = dict
        self._shared_figures: dict[str, float] = {}

    def _keys(self, provider: str, model: str, outcome: str) -> tuple[str, str, tuple[str, ...]]:
        """The label strings of a (provider, model, outcome), built once: a request only looks
        them up."""
        key = (provider, model, outcome)
        found = self._label_cache.get(key)
        if found is None:
            labels = _labels(provider=provider, model=model)
            found = (
                labels,
                _labels(provider=provider, model=model, outcome=outcome),
                tuple(labels[:-1] + f',kind="{kind}"}}' for kind, _ in TOKENS),
            )
            if len(self._label_cache) < 10_000:  # bounded, should names ever be unbounded
                self._label_cache[key] = found
        return found

    def observe(self, row: UsageRow) -> None:
        labels, with_outcome, token_labels = self._keys(
            row.provider or "none", row.resolved_model or "none", row.outcome
        )
        counters = self.counters
        counters["requests"][with_outcome] += 1
        tokens = counters["tokens"]
        for (_, column), label in zip(TOKENS, token_labels, strict=True):
            value = getattr(row, column)
            if value:
                tokens[label] += value
        if row.cost_nanousd:
            counters["cost"][labels] += row.cost_nanousd
        if row.latency_ms is not None:
            histogram = self.histograms["latency"].setdefault(labels, _histogram(LATENCY))
            _observe(histogram, LATENCY, row.latency_ms / 1000)
        if row.ttft_ms is not None and row.streamed:
            histogram = self.histograms["ttft"].setdefault(labels, _histogram(TTFT))
            _observe(histogram, TTFT, row.ttft_ms / 1000)
        if self.tags:
            for tag in row.tags:
                tagged = _labels(tag=tag)
                counters["tag_requests"][tagged] += 1
                if row.cost_nanousd:
                    counters["tag_cost"][tagged] += row.cost_nanousd
                used = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens + row.output_tokens
                counters["tag_tokens"][tagged] += used
        self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {"counters": self.counters, "histograms": self.histograms, "figures": self.figures()}

    # Sharing between workers.
    def share(self, directory: Path) -> None:
        self.directory = directory

    @property
    def _file(self) -> Path:
        assert self.directory is not None
        return self.directory / f"worker-{os.getpid()}.json"

    def write(self) -> None:
        if self.directory is None:
            return
        snapshot = self.snapshot()
        temporary = self._file.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(snapshot))
        temporary.replace(self._file)  # readers never see half a file
        self.dirty = False
        self._shared_figures = snapshot["figures"]

    async def start(self) -> None:
        if self.directory is not None:
            self._task = asyncio.create_task(self._loop(), name="metrics share")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.dirty or self.figures() != self._shared_figures:
                try:
                    await asyncio.to_thread(self.write)
                except OSError as exc:
                    log.warning("writing metrics for the other workers failed: %s", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            self.write()

    def merged(self) -> dict[str, Any]:
        """This worker's counts plus every other worker's last written ones."""
        total = orjson.loads(orjson.dumps(self.snapshot()))
        if self.directory is None:
            return total  # type: ignore[no-any-return]
        for path in self.directory.glob("worker-*.json"):
            if path == self._file:
                continue
            try:
                other = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # gone between glob and read
            for name, series in other["counters"].items():
                into = total["counters"].setdefault(name, {})
                for key, value in series.items():
                    into[key] = into.get(key, 0) + value
            for name, series in other["histograms"].items():
                into = total["histograms"].setdefault(name, {})
                for key, values in series.items():
                    mine = into.setdefault(key, [0.0] * len(values))
                    into[key] = [a + b for a, b in zip(mine, values, strict=True)]
            alive = _alive(path)
            for name, value in other.get("figures", {}).items():
                # A worker that is gone keeps its totals; what it held (pending rows, bodies) is
                # another worker's now, or nobody's.
                if alive or name.endswith("_total"):
                    total["figures"][name] = total["figures"].get(name, 0) + value
        return total  # type: ignore[no-any-return]


def _alive(path: Path) -> bool:
    """Whether the worker that wrote ``worker-<pid>.json`` still runs."""
    try:
        os.kill(int(path.stem.removeprefix("worker-")), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


COUNTERS = (
    ("requests", "llm_relay_requests_total", "Requests by provider, model and outcome.", False),
    (
        "tokens",
        "llm_relay_tokens_total",
        "Tokens by provider, model and kind (input counts no cache reads or writes).",
        False,
    ),
    ("cost", "llm_relay_cost_usd_total", "Cost charged, in US dollars, by provider and model.", True),
    ("tag_requests", "llm_relay_tag_requests_total", "Requests by tag (a request counts under each tag).", False),
    ("tag_tokens", "llm_relay_tag_tokens_total", "Prompt and output tokens by tag.", False),
    ("tag_cost", "llm_relay_tag_cost_usd_total", "Cost charged, in US dollars, by tag.", True),
)
HISTOGRAMS = (
    ("latency", "llm_relay_request_duration_seconds", "Time from request to the end of its reply.", LATENCY),
    ("ttft", "llm_relay_time_to_first_token_seconds", "Time to the first streamed token.", TTFT),
)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(merged: dict[str, Any], gauges: Mapping[str, tuple[str, float]]) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    counters = merged["counters"]
    for key, name, help_text, money in COUNTERS:
        series = counters.get(key)
        if key.startswith("tag_") and not series:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        errors = key == "requests"
        for labels, value in sorted((series or {}).items()):
            shown = str(Decimal(int(value)) / NANOS) if money else _number(value)
            lines.append(f"{name}{labels} {shown}")
        if errors:
            lines += [
                "# HELP llm_relay_errors_total Requests that did not end ok, by provider, model and outcome.",
                "# TYPE llm_relay_errors_total counter",
            ]
            lines += [
                f"llm_relay_errors_total{labels} {_number(value)}"
                for labels, value in sorted((series or {}).items())
                if 'outcome="ok"' not in labels
            ]
    for key, name, help_text, buckets in HISTOGRAMS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for labels, values in sorted(merged["histograms"].get(key, {}).items()):
            running = 0.0
            inner = labels[1:-1]
            for bound, count in zip((*buckets, float("inf")), values[:-1], strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'{name}_bucket{{{inner},le="{le}"}} {_number(running)}')
            lines.append(f"{name}_sum{labels} {_number(values[-1])}")
            lines.append(f"{name}_count{labels} {_number(running)}")
    for name, (help_text, value) in gauges.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
    return "\n".join(lines) + "\n"


DEPLOYMENT_GAUGES = (
    ("cooling_seconds", "llm_relay_deployment_cooling_seconds",
     "Seconds until a route's deployment is tried in turn again (0: healthy); shared by a machine's workers."),
    ("recent_failures", "llm_relay_deployment_recent_failures",
     "A route deployment's failures within its cooldown window; shared by a machine's workers."),
    ("in_flight", "llm_relay_deployment_in_flight", "Requests a route's deployment is serving in this worker."),
)  # fmt: skip


def render_deployments(routes: Mapping[str, list[str]], state: Mapping[str, Mapping[str, float]]) -> str:
    """The routes' deployments' health (app/routing.py) as labelled gauges."""
    lines: list[str] = []
    for key, name, help_text in DEPLOYMENT_GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for route, deployments in sorted(routes.items()):
            for deployment in deployments:
                value = state.get(deployment, {}).get(key, 0)
                lines.append(f"{name}{_labels(route=route, deployment=deployment)} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""
