"""What the composition root builds once and hands to stages and resources."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.catalog import Catalog
from app.inflight import InFlight
from app.keys import KeyBook
from app.limits import Limiter
from app.machine_state import MachineState
from app.metrics import Metrics
from app.pricing import Pricer
from app.quirks import QuirkBook
from app.resolver import Resolver
from app.routing import DeploymentHealth, Route, ollama_groups
from app.runtime import ModelSwitch, Runtime
from app.settings import Settings
from app.stores.db import Database
from app.stores.usage import UsageWriter
from app.upstreams import Upstreams


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    upstreams: Upstreams
    resolver: Resolver
    database: Database
    usage: UsageWriter
    quirks: QuirkBook
    pricer: Pricer
    runtime: Runtime = field(default_factory=Runtime)
    keys: KeyBook = field(default_factory=KeyBook)
    model_switches: dict[tuple[str, str], ModelSwitch] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    routes: dict[str, Route] = field(default_factory=dict)  # by lower-cased name (app/routing.py)
    machine: MachineState = field(default_factory=lambda: MachineState(""))  # shared by a machine's workers
    health: DeploymentHealth = field(
        default_factory=lambda: DeploymentHealth(MachineState(""))
    )  # the deployments' health
    limiter: Limiter = field(default_factory=lambda: Limiter((), MachineState("")))  # rate limits
    requests: InFlight = field(default_factory=InFlight)  # its body budget set by create_app
    _groups: tuple[int, dict[str, Route]] = field(default_factory=lambda: (-1, {}), init=False, repr=False)

    def ollama_groups(self) -> dict[str, Route]:
        """With OLLAMA_GROUP, the models several Ollama instances serve as routes over them, by
        catalog key (:func:`app.routing.ollama_groups`), made again when the catalog changes."""
        if not self.settings.ollama_group:
            return {}
        version, groups = self._groups
        if version != self.catalog.version:
            groups = ollama_groups(self.catalog, [p.name for p in self.upstreams.ollama])
            self._groups = (self.catalog.version, groups)
        return groups

    def routes_in_effect(self) -> list[Route]:
        """The declared routes, then OLLAMA_GROUP's that no declared route shadows: what the admin
        UI and /metrics show."""
        grouped = [r for r in self.ollama_groups().values() if r.name.lower() not in self.routes]
        return [*self.routes.values(), *grouped]
