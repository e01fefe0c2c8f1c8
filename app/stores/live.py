"""Configuration that lives in the database and takes effect without a restart: quirk
overrides and aliases. Reloaded periodically (so every instance behind a load balancer
converges) and at once after an edit through this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.quirks import QuirkError, QuirkRule, rule_from_dict
from app.services import Services
from app.stores.models import ModelAlias, QuirkOverride

log = logging.getLogger("llm_relay.live")


class LiveConfig:
    def __init__(self, services: Services, interval: float) -> None:
        self.services = services
        self.interval = interval
        self.env_aliases = dict(services.resolver.aliases)
        self._task: asyncio.Task[None] | None = None

    async def reload(self) -> None:
        with self.services.database.context:
            overrides = await QuirkOverride.filter(enabled=True).order_by("id").values("id", "rule")
            aliases = await ModelAlias.all().values_list("name", "target")
        rules: list[QuirkRule] = []
        for row in overrides:
            try:
                rules.append(rule_from_dict(row["rule"]))
            except (QuirkError, TypeError, AttributeError) as exc:
                log.error("quirk override %s ignored: %s", row["id"], exc)
        self.services.quirks = self.services.quirks.with_overrides(rules)
        merged = {**self.env_aliases, **{str(name).lower(): str(target) for name, target in aliases}}
        self.services.resolver.aliases = merged

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
