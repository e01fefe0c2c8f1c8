"""Configuration that lives in the database and takes effect without a restart: quirk
overrides, aliases and price overrides. Reloaded periodically (so every instance behind a load balancer
converges) and at once after an edit through this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal

from app import pricing
from app.pricing.sync import latest_snapshot
from app.quirks import QuirkError, QuirkRule, rule_from_dict
from app.services import Services
from app.stores.models import ModelAlias, PriceOverride, QuirkOverride

log = logging.getLogger("llm_relay.live")
PER_MILLION = Decimal(1_000_000)


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
    def __init__(self, services: Services, interval: float) -> None:
        self.services = services
        self.interval = interval
        self.env_aliases = dict(services.resolver.aliases)
        self.pricing_sync_id = 0  # the pricing sync whose snapshot is active
        self._task: asyncio.Task[None] | None = None

    async def reload(self) -> None:
        with self.services.database.context:
            overrides = await QuirkOverride.filter(enabled=True).order_by("id").values("id", "rule")
            aliases = await ModelAlias.all().values_list("name", "target")
            prices = await PriceOverride.filter(enabled=True).all()
            synced = await latest_snapshot(self.pricing_sync_id)
        if synced is not None:
            self.pricing_sync_id, models = synced
            self.services.catalog.replace_pricing(models, f"pricing sync #{self.pricing_sync_id}")
        rules: list[QuirkRule] = []
        for row in overrides:
            try:
                rules.append(rule_from_dict(row["rule"]))
            except (QuirkError, TypeError, AttributeError) as exc:
                log.error("quirk override %s ignored: %s", row["id"], exc)
        self.services.quirks = self.services.quirks.with_overrides(rules)
        merged = {**self.env_aliases, **{str(name).lower(): str(target) for name, target in aliases}}
        self.services.resolver.aliases = merged
        self.services.pricer.overrides = {(p.provider, p.model.lower()): price_override(p) for p in prices}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="live-config")

    async def _loop(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception:  # the database may be away; keep the last good configuration
                log.exception("reloading live configuration failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
