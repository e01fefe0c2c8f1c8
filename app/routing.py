"""Routes: one public model name served by several deployments, with fallbacks and health.

Declared in the ``PROVIDERS_FILE`` beside the custom providers::

    routes:
      - name: chat                       # the model name clients ask for
        strategy: ordered                # ordered | weighted | least_in_flight
        deployments:
          - model: openai/gpt-4o-mini    # any name the relay resolves: provider/model, an alias...
          - model: groq/llama-3.3-70b-versatile
            weight: 2                    # for strategy: weighted
        fallback_on: [connect, timeout, 429, 5xx]   # the default
        cooldown: {failures: 3, window: 60, seconds: 30}   # the default

A deployment that fails ``failures`` times within ``window`` seconds is cooled down for
``seconds``: it is tried after every healthy one, and while all are cooling down the one that
recovers first is tried first. Health lives in the process (each worker keeps its own).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.errors import UpstreamError, UpstreamStatusError, UpstreamTimeout, UpstreamUnavailable
from app.settings import SettingsError

STRATEGIES = ("ordered", "weighted", "least_in_flight")
FALLBACK_KINDS = frozenset({"connect", "timeout", "429", "5xx"})
_ROUTE_KEYS = {"name", "strategy", "deployments", "fallback_on", "cooldown"}


@dataclass(frozen=True, slots=True)
class Cooldown:
    failures: int = 3
    window: float = 60.0
    seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Deployment:
    model: str  # a name the resolver reads: provider/model, an alias, an Ollama instance's model
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    deployments: tuple[Deployment, ...]
    strategy: str = "ordered"
    fallback_on: frozenset[str] = FALLBACK_KINDS
    cooldown: Cooldown = field(default_factory=Cooldown)

    def moves_on(self, error: UpstreamError) -> bool:
        """Whether this failure, before the first byte, sends the request to the next deployment."""
        if isinstance(error, UpstreamTimeout):
            return "timeout" in self.fallback_on
        if isinstance(error, UpstreamUnavailable):
            return "connect" in self.fallback_on
        if isinstance(error, UpstreamStatusError):
            return str(error.status) in self.fallback_on or (error.status >= 500 and "5xx" in self.fallback_on)
        return False  # a broken reply, a limit: the next deployment would not fix it


def load_routes(path: str) -> dict[str, Route]:
    """The routes of ``PROVIDERS_FILE``, by lower-cased name; a clear SettingsError otherwise."""
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # reading the file is the custom providers' loader's to report
    entries = data.get("routes", []) if isinstance(data, dict) else []
    if not isinstance(entries, list):
        raise SettingsError(f"PROVIDERS_FILE: {path}: 'routes' must be a list")
    routes = [route_from_record(entry, f"PROVIDERS_FILE: routes[{i}]") for i, entry in enumerate(entries)]
    return {route.name.lower(): route for route in routes}


def route_from_record(entry: Any, where: str) -> Route:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be a mapping")
    unknown = set(entry) - _ROUTE_KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_ROUTE_KEYS)})")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or "@" in name:
        raise SettingsError(f"{where}: name must be a model name (no '@')")
    strategy = entry.get("strategy", "ordered")
    if strategy not in STRATEGIES:
        raise SettingsError(f"{where} ({name}): strategy must be one of {list(STRATEGIES)}")
    raw = entry.get("deployments")
    if not isinstance(raw, list) or not raw:
        raise SettingsError(f"{where} ({name}): deployments must be a non-empty list")
    deployments = tuple(_deployment(d, f"{where} ({name}): deployments[{i}]") for i, d in enumerate(raw))
    fallback_on = entry.get("fallback_on", sorted(FALLBACK_KINDS))
    kinds = {str(k) for k in fallback_on} if isinstance(fallback_on, list) else set()
    if not isinstance(fallback_on, list) or not all(k in FALLBACK_KINDS or _status(k) for k in kinds):
        raise SettingsError(f"{where} ({name}): fallback_on lists {sorted(FALLBACK_KINDS)} or HTTP statuses")
    return Route(name.strip(), deployments, strategy, frozenset(kinds), _cooldown(entry.get("cooldown"), where))


def _status(kind: str) -> bool:
    return kind.isdigit() and 400 <= int(kind) <= 599


def _deployment(raw: Any, where: str) -> Deployment:
    if isinstance(raw, str):
        raw = {"model": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str) or set(raw) - {"model", "weight"}:
        raise SettingsError(f"{where} must be a model name or {{model: ..., weight: ...}}")
    weight = raw.get("weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise SettingsError(f"{where}: weight must be a whole number of at least 1")
    return Deployment(raw["model"], weight)


def _cooldown(raw: Any, where: str) -> Cooldown:
    if raw is None:
        return Cooldown()
    if not isinstance(raw, dict) or set(raw) - {"failures", "window", "seconds"}:
        raise SettingsError(f"{where}: cooldown takes failures, window and seconds")
    values = {"failures": 3, "window": 60, "seconds": 30, **raw}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values.values()):
        raise SettingsError(f"{where}: cooldown's failures, window and seconds must be positive numbers")
    return Cooldown(int(values["failures"]), float(values["window"]), float(values["seconds"]))


class Health:
    """Each deployment's recent failures, cooldown and requests in flight, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.failures: dict[str, deque[float]] = {}
        self.cooled_until: dict[str, float] = {}
        self.in_flight: dict[str, int] = {}
        self.turns: dict[str, int] = {}  # per route, for least_in_flight's ties

    def failed(self, route: Route, deployment: Deployment) -> None:
        now = self.clock()
        recent = self.failures.setdefault(deployment.model, deque())
        recent.append(now)
        while recent and recent[0] <= now - route.cooldown.window:
            recent.popleft()
        if len(recent) >= route.cooldown.failures:
            self.cooled_until[deployment.model] = now + route.cooldown.seconds
            recent.clear()

    def succeeded(self, deployment: Deployment) -> None:
        self.failures.pop(deployment.model, None)
        self.cooled_until.pop(deployment.model, None)

    def cooling(self, model: str) -> float:
        """Seconds until the deployment is tried in turn again; 0 when it is healthy."""
        until = self.cooled_until.get(model)
        return max(0.0, until - self.clock()) if until is not None else 0.0

    def order(self, route: Route) -> list[Deployment]:
        """The deployments in the order to try them: the healthy ones as the strategy ranks
        them, then those cooling down, the one that recovers first first."""
        healthy = [d for d in route.deployments if not self.cooling(d.model)]
        cooling = sorted((d for d in route.deployments if self.cooling(d.model)), key=lambda d: self.cooling(d.model))
        if route.strategy == "weighted" and len(healthy) > 1:
            healthy = self._weighted(healthy)
        elif route.strategy == "least_in_flight" and len(healthy) > 1:
            # Ties go round in turn, so requests one at a time spread too.
            turn = self.turns[route.name] = self.turns.get(route.name, -1) + 1
            shift = turn % len(healthy)
            healthy = healthy[shift:] + healthy[:shift]
            healthy.sort(key=lambda d: self.in_flight.get(d.model, 0))  # stable: ties keep the turn's order
        return healthy + cooling

    def _weighted(self, deployments: list[Deployment]) -> list[Deployment]:
        """A weighted draw without replacement: the first is picked by weight, then the next..."""
        left = list(deployments)
        ordered = []
        while left:
            pick = self.rng.choices(left, weights=[d.weight for d in left])[0]
            ordered.append(pick)
            left.remove(pick)
        return ordered

    def state(self) -> Mapping[str, Any]:
        """For the admin UI and /metrics: each deployment seen, cooling or not."""
        seen = set(self.failures) | set(self.cooled_until) | set(self.in_flight)
        return {
            model: {
                "recent_failures": len(self.failures.get(model, ())),
                "cooling_seconds": self.cooling(model),
                "in_flight": self.in_flight.get(model, 0),
            }
            for model in sorted(seen)
        }
