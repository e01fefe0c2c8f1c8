"""Configuration that lives in the database and takes effect without a restart: quirk and
price overrides, aliases, per-model switches, run-time settings, Ollama instances and custom
providers added by an admin, and the active pricing sync. Reloaded periodically (so every
instance behind a load balancer converges) and at once after an edit through this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app import pricing
from app.catalog import ModelEntry
from app.custom_providers import provider_from_record
from app.discovery import Discovery
from app.keys import KeyBook, KeyInfo
from app.pricing.sync import latest_snapshot
from app.providers import BUILTIN_BY_NAME, Provider
from app.quirks import QuirkError, QuirkRule, rule_from_dict
from app.routing import Route, route_from_record
from app.runtime import ModelSwitch
from app.services import Services
from app.settings import SettingsError
from app.stores.models import (
    ApiKey,
    CustomProvider,
    ModelAlias,
    ModelSetting,
    OllamaInstance,
    PriceOverride,
    QuirkOverride,
    RelaySetting,
    RouteRecord,
)
from app.stores.rollup import day_start, fold_and_purge

log = logging.getLogger("llm_relay.live")
PER_MILLION = Decimal(1_000_000)
RETENTION_EVERY = 3600.0  # seconds between purges of expired usage rows


def price_override(row: PriceOverride) -> pricing.PriceOverride:
    """A stored override (USD per million tokens, as people write prices) as per-token rates."""

    def per_token(value: Decimal | None) -> Decimal | None:
        return None if value is None else Decimal(value) / PER_MILLION

    return pricing.PriceOverride(
        input=per_token(row.input_per_mtok),
        output=per_token(row.output_per_mtok),
        cache_read=per_token(row.cache_read_per_mtok),
        cache_write=per_token(row.cache_write_per_mtok),
        cache_read_multiplier=row.cache_read_multiplier,
        cache_write_multiplier=row.cache_write_multiplier,
        request_fee=row.request_fee_usd,
        tier_threshold=row.tier_threshold,
    )


class LiveConfig:
    def __init__(self, services: Services, discovery: Discovery, interval: float) -> None:
        self.services = services
        self.discovery = discovery
        self.interval = interval
        self.env_aliases = dict(services.resolver.aliases)
        self.env_runtime = services.runtime
        self.pricing_sync_id = 0  # the pricing sync whose snapshot is active
        self.provider_errors: dict[str, str] = {}  # admin providers that can't be built, and why
        self.file_routes = dict(services.routes)  # PROVIDERS_FILE's, read once at start
        self.route_errors: dict[str, str] = {}  # admin routes that can't be built, and why
        self._purged_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._reloading = asyncio.Lock()

    async def reload(self) -> None:
        """Read the admin's configuration and apply it. One at a time: a periodic reload that read
        before an admin's change and finished after the reload that change asked for would
        otherwise put the old configuration back until the next refresh."""
        async with self._reloading:
            await self._reload()

    async def _reload(self) -> None:
        with self.services.database.context:
            overrides = await QuirkOverride.filter(enabled=True).order_by("id").values("id", "rule")
            aliases = await ModelAlias.all().values_list("name", "target")
            prices = await PriceOverride.filter(enabled=True).all()
            switches = await ModelSetting.all()
            settings = await RelaySetting.read_all()
            instances = await OllamaInstance.all().order_by("name")
            customs = await CustomProvider.all().order_by("name")
            keys = await ApiKey.all()
            routes = await RouteRecord.all().order_by("name").values_list("name", "spec")
            synced = await latest_snapshot(self.pricing_sync_id)
        services = self.services
        if synced is not None:
            self.pricing_sync_id, models = synced
            services.catalog.replace_pricing(models, f"pricing sync #{self.pricing_sync_id}")
        services.quirks = services.quirks.with_overrides(self._rules(overrides))
        services.resolver.aliases = {**self.env_aliases, **{str(n).lower(): str(t) for n, t in aliases}}
        services.pricer.overrides = {(p.provider, p.model.lower()): price_override(p) for p in prices}
        services.model_switches = {
            (s.provider, s.model.lower()): ModelSwitch(
                s.enabled, s.supports_vision, s.supports_reasoning, s.supports_tools
            )
            for s in switches
        }
        services.resolver.disabled = frozenset(k for k, s in services.model_switches.items() if not s.enabled)
        services.keys = KeyBook(
            (k.key_hash, KeyInfo(k.id, k.name, tuple(k.tags), k.expires_at, k.revoked_at is not None)) for k in keys
        )
        services.runtime = self.env_runtime.updated(settings)
        services.resolver.default_model = services.runtime.default_model
        services.routes = {**self._routes(routes), **self.file_routes}  # the file's win: they can't be edited here
        await self._providers(instances, customs)

    def _routes(self, records: list[tuple[str, Any]]) -> dict[str, Route]:
        routes, errors = {}, {}
        for name, spec in records:
            try:
                route = route_from_record({**(spec if isinstance(spec, dict) else {}), "name": name}, f"route {name}")
            except SettingsError as exc:
                errors[name] = str(exc)
                continue
            routes[route.name.lower()] = route
        self.route_errors = errors
        return routes

    def _rules(self, overrides: list[dict[str, Any]]) -> list[QuirkRule]:
        rules = []
        for row in overrides:
            try:
                rules.append(rule_from_dict(row["rule"]))
            except (QuirkError, TypeError, AttributeError) as exc:
                log.error("quirk override %s ignored: %s", row["id"], exc)
        return rules

    async def _providers(self, instances: list[OllamaInstance], customs: list[CustomProvider]) -> None:
        wanted: list[Provider] = []
        errors: dict[str, str] = {}
        for instance in instances:
            wanted.append(
                Provider(instance.name, "ollama", instance.base_url, kind="ollama", discover=True, origin="admin")
            )
        for custom in customs:
            record = {
                "name": custom.name,
                "api": custom.api,
                "base_url": custom.base_url,
                "api_key_env": custom.api_key_env,
                "api_key_file": custom.api_key_file,
                "models": custom.models,
            }
            try:
                wanted.append(provider_from_record(record, f"custom provider {custom.name}", origin="admin"))
            except SettingsError as exc:
                errors[custom.name] = str(exc)
        wanted = [p for p in wanted if p.name not in BUILTIN_BY_NAME]
        self.provider_errors = errors
        upstreams, catalog = self.services.upstreams, self.services.catalog
        changed, removed = upstreams.set_admin_providers(wanted)
        for name in removed:
            catalog.remove_provider(name)
            self.discovery.status.pop(name, None)
        for provider in changed:
            catalog.add_provider(provider.name, None, ollama=provider.is_ollama)
            if provider.models:
                declared = [ModelEntry(provider.name, m, "chat", {}, discovered=True) for m in provider.models]
                catalog.set_discovered(provider.name, declared)
        if changed:
            await asyncio.gather(*(self.discovery.refresh_one(p.name) for p in changed if p.discover))

    async def purge_expired(self) -> int:
        """Fold usage rows older than the retention period into daily totals and delete them."""
        days = self.services.runtime.retention_days
        if days <= 0:
            return 0
        # Whole UTC days only, so each folded day's totals are complete.
        cutoff = day_start(datetime.now(UTC) - timedelta(days=days))
        database = self.services.database
        with database.context:
            return await fold_and_purge(database.backend, cutoff)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="live-config")

    async def _loop(self) -> None:
        while True:
            try:
                await self.reload()
                if time.monotonic() - self._purged_at > RETENTION_EVERY:
                    self._purged_at = time.monotonic()
                    deleted = await self.purge_expired()
                    if deleted:
                        log.info("retention: deleted %d usage rows", deleted)
            except Exception as exc:  # the database may be away; keep the last good configuration
                log.error("reloading live configuration failed: %r", exc)
                await self.services.database.reset()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
