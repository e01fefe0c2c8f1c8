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
        context_fallback: openai/gpt-4.1     # optional: where a prompt too long for one goes

A deployment that fails ``failures`` times within ``window`` seconds is cooled down for
``seconds``: it is tried after every healthy one, and while all are cooling down the one that
recovers first is tried first. Failures and cooldowns are shared by the workers of one machine
(:mod:`app.machine_state`; another worker's cooldown counts here within a second); requests in
flight are counted per worker.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from app.catalog import Catalog, ModelEntry, model_key
from app.custom_providers import providers_file_section
from app.errors import (
    ModelNotFound,
    RateLimited,
    RelayError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.machine_state import MachineState
from app.settings import SettingsError

STRATEGIES = ("ordered", "weighted", "least_in_flight")
FALLBACK_KINDS = frozenset({"connect", "timeout", "429", "5xx"})
REFRESH = 1.0  # seconds between reads of the cooldowns the workers share
MAX_WEIGHT = 1_000_000
MAX_COOLDOWN = 31_536_000  # a year of seconds; failures no more than that either (and no infinity)
_ROUTE_KEYS = {"name", "strategy", "deployments", "fallback_on", "cooldown", "context_fallback"}
# How providers word a prompt too long for the model (OpenAI's code, Anthropic's and others' text).
_TOO_LONG = re.compile(r"context.{0,20}(length|window|limit)|prompt is too long|too many (input )?tokens", re.I)


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
    context_fallback: Deployment | None = None  # where a prompt too long for a deployment goes

    def moves_on(self, error: RelayError) -> bool:
        """Whether this failure, before the first byte, sends the request to the next deployment."""
        if isinstance(error, ModelNotFound):
            return True  # a deployment the relay cannot resolve (gone from its provider, disabled)
        if isinstance(error, RateLimited):
            return error.scope == "deployment" and "429" in self.fallback_on  # not the caller's own limit
        if isinstance(error, UpstreamTimeout):
            return "timeout" in self.fallback_on
        if isinstance(error, UpstreamUnavailable):
            return "connect" in self.fallback_on
        if isinstance(error, UpstreamStatusError):
            return str(error.status) in self.fallback_on or (error.status >= 500 and "5xx" in self.fallback_on)
        return False  # a broken reply, a limit, the caller's error: the next deployment would not fix it

    def larger_for(self, error: RelayError) -> Deployment | None:
        """The deployment a prompt too long for another one goes to, if the route names one."""
        if (
            self.context_fallback is None
            or not isinstance(error, UpstreamStatusError)
            or error.status not in (400, 413)
        ):
            return None
        too_long = error.code == "context_length_exceeded" or bool(_TOO_LONG.search(error.message))
        return self.context_fallback if too_long else None


def ollama_groups(catalog: Catalog, instances: Iterable[str]) -> dict[str, Route]:
    """OLLAMA_GROUP's routes: each model two or more of these Ollama instances serve, a
    least-in-flight route over them, by the model's catalog key (lower case, ``:latest`` added)."""
    served: dict[str, list[ModelEntry]] = {}
    for instance in instances:
        for entry in catalog.models(instance):
            served.setdefault(model_key(entry.id, ollama=True), []).append(entry)
    return {
        key: Route(entries[0].id, tuple(Deployment(f"{e.provider}/{e.id}") for e in entries), "least_in_flight")
        for key, entries in served.items()
        if len(entries) > 1
    }


def load_routes(path: str) -> dict[str, Route]:
    """The routes of ``PROVIDERS_FILE``, by lower-cased name; a clear SettingsError otherwise."""
    entries = providers_file_section(path, "routes")
    routes: dict[str, Route] = {}
    for i, entry in enumerate(entries):
        route = route_from_record(entry, f"PROVIDERS_FILE: routes[{i}]")
        if route.name.lower() in routes:  # the later one silently won
            raise SettingsError(f"PROVIDERS_FILE: routes[{i}]: a route named {route.name!r} is already declared")
        routes[route.name.lower()] = route
    return routes


def route_from_record(entry: Any, where: str) -> Route:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be a mapping")
    unknown = set(entry) - _ROUTE_KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_ROUTE_KEYS)})")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or "@" in name or len(name.strip()) > 128:
        raise SettingsError(f"{where[:160]}: name must be a model name of at most 128 characters (no '@')")
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
    larger = entry.get("context_fallback")
    if larger is not None and not isinstance(larger, str):
        raise SettingsError(f"{where} ({name}): context_fallback must be a model name")
    return Route(
        name.strip(),
        deployments,
        strategy,
        frozenset(kinds),
        _cooldown(entry.get("cooldown"), where),
        Deployment(larger) if larger else None,
    )


def _status(kind: str) -> bool:
    return kind.isdigit() and 400 <= int(kind) <= 599


def _deployment(raw: Any, where: str) -> Deployment:
    if isinstance(raw, str):
        raw = {"model": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str) or set(raw) - {"model", "weight"}:
        raise SettingsError(f"{where} must be a model name or {{model: ..., weight: ...}}")
    weight = raw.get("weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= MAX_WEIGHT:
        raise SettingsError(f"{where}: weight must be a whole number from 1 to {MAX_WEIGHT}")
    return Deployment(raw["model"], weight)


def _cooldown(raw: Any, where: str) -> Cooldown:
    if raw is None:
        return Cooldown()
    if not isinstance(raw, dict) or set(raw) - {"failures", "window", "seconds"}:
        raise SettingsError(f"{where}: cooldown takes failures, window and seconds")
    values = {**asdict(Cooldown()), **raw}
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= MAX_COOLDOWN for v in values.values()
    ):
        raise SettingsError(
            f"{where}: cooldown's failures, window and seconds must be numbers above 0 and at most {MAX_COOLDOWN}"
        )
    return Cooldown(int(values["failures"]), float(values["window"]), float(values["seconds"]))


class DeploymentHealth:
    """Each deployment's recent failures and cooldown, shared by the workers of one machine
    (:mod:`app.machine_state`), and the requests it has in flight in this process."""

    def __init__(
        self, state: MachineState, clock: Callable[[], float] = time.time, rng: random.Random | None = None
    ) -> None:
        self.state = state
        self.clock = clock  # wall-clock time: the workers compare each other's
        self.rng = rng or random.Random()
        self.in_flight: dict[str, int] = {}
        self.turns: dict[str, int] = {}  # per route, for least_in_flight's ties
        # The cooldowns as last read from the shared file, read again at most every REFRESH
        # seconds (a read per routed request cost ~50 us under load); this worker's own changes
        # apply at once, the other workers' within REFRESH.
        self._cooldowns: dict[str, float] = {}
        self._read_at = -REFRESH

    def failed(self, route: Route, deployment: Deployment) -> None:
        now = self.clock()
        db = self.state.connection()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "DELETE FROM failures WHERE deployment = ? AND at <= ?", (deployment.model, now - route.cooldown.window)
            )
            db.execute("INSERT INTO failures (deployment, at) VALUES (?, ?)", (deployment.model, now))
            (count,) = db.execute("SELECT count(*) FROM failures WHERE deployment = ?", (deployment.model,)).fetchone()
            if count >= route.cooldown.failures:
                db.execute(
                    "INSERT INTO cooldowns (deployment, until) VALUES (?, ?) "
                    "ON CONFLICT (deployment) DO UPDATE SET until = excluded.until",
                    (deployment.model, now + route.cooldown.seconds),
                )
                db.execute("DELETE FROM failures WHERE deployment = ?", (deployment.model,))
                self._cooldowns[deployment.model] = now + route.cooldown.seconds

    def succeeded(self, deployment: Deployment, was_cooling: bool) -> None:
        """A deployment tried while cooling down that answers is healthy again at once."""
        if was_cooling:
            with self.state.connection() as db:
                db.execute("DELETE FROM cooldowns WHERE deployment = ?", (deployment.model,))
            self._cooldowns.pop(deployment.model, None)

    def cooling(self, models: Iterable[str]) -> dict[str, float]:
        """Seconds until each of these deployments is tried in turn again, for those cooling."""
        now = self.clock()
        if time.monotonic() - self._read_at >= REFRESH:
            rows = self.state.connection().execute("SELECT deployment, until FROM cooldowns WHERE until > ?", (now,))
            self._cooldowns = dict(rows)
            self._read_at = time.monotonic()
        cooldowns = self._cooldowns
        return {name: until - now for name in models if (until := cooldowns.get(name, 0.0)) > now}

    def order(self, route: Route) -> tuple[list[Deployment], dict[str, float]]:
        """The deployments in the order to try them (the healthy ones as the strategy ranks
        them, then those cooling down, the one that recovers first first), and which cool."""
        cooling = self.cooling(d.model for d in route.deployments)
        healthy = [d for d in route.deployments if d.model not in cooling]
        resting = sorted((d for d in route.deployments if d.model in cooling), key=lambda d: cooling[d.model])
        if route.strategy == "weighted" and len(healthy) > 1:
            healthy = self._weighted(healthy)
        elif route.strategy == "least_in_flight" and len(healthy) > 1:
            # Ties go round in turn, so requests one at a time spread too.
            turn = self.turns[route.name] = self.turns.get(route.name, -1) + 1
            shift = turn % len(healthy)
            healthy = healthy[shift:] + healthy[:shift]
            healthy.sort(key=lambda d: self.in_flight.get(d.model, 0))  # stable: ties keep the turn's order
        return healthy + resting, cooling

    def _weighted(self, deployments: list[Deployment]) -> list[Deployment]:
        """A weighted draw without replacement: the first is picked by weight, then the next..."""
        left = list(deployments)
        ordered = []
        while left:
            pick = self.rng.choices(left, weights=[d.weight for d in left])[0]
            ordered.append(pick)
            left.remove(pick)
        return ordered

    def state_of(self, routes: Iterable[Route]) -> dict[str, dict[str, Any]]:
        """For the admin UI and /metrics: each route's deployments, cooling or not, and their
        failures within the cooldown window (the longest, for one in several routes)."""
        windows: dict[str, float] = {}
        for route in routes:
            for d in route.deployments:
                windows[d.model] = max(windows.get(d.model, 0.0), route.cooldown.window)
        models = sorted(windows)
        if not models:
            return {}
        cooling = self.cooling(models)
        now = self.clock()
        marks = ",".join("?" * len(models))
        failures: dict[str, int] = {}
        for model, at in self.state.connection().execute(
            f"SELECT deployment, at FROM failures WHERE deployment IN ({marks})", models
        ):
            if at > now - windows[model]:
                failures[model] = failures.get(model, 0) + 1
        return {
            model: {
                "recent_failures": int(failures.get(model, 0)),
                "cooling_seconds": round(cooling.get(model, 0.0), 3),
                "in_flight": self.in_flight.get(model, 0),
            }
            for model in models
        }
