"""``llm-relay pricing sync`` and ``llm-relay pricing history``."""

from __future__ import annotations

import sys

import httpx

from app.catalog import load_pricing_snapshot
from app.pricing.sync import SyncError, latest_snapshot, sync_pricing
from app.settings import Settings
from app.stores.db import opened
from app.stores.models import PricingSync


async def sync(settings: Settings, source: str) -> int:
    try:
        async with opened(settings.resolved_database_url), httpx.AsyncClient() as http:
            latest = await latest_snapshot()
            current = latest[1] if latest else load_pricing_snapshot()
            result = await sync_pricing(source, current, http)
    except SyncError as exc:
        print(f"llm-relay: pricing sync failed, prices unchanged: {exc}", file=sys.stderr)
        return 1
    print(
        f"pricing sync #{result.id} from {source}: {result.added} models added, {result.removed} removed, "
        f"{result.changed} with changed prices; running relays apply it within CONFIG_REFRESH_SECONDS"
    )
    return 0


async def history(settings: Settings) -> int:
    async with opened(settings.resolved_database_url):
        rows = await PricingSync.all().order_by("-id").limit(50)
    if not rows:
        print("no pricing sync yet: prices come from the snapshot bundled with this version")
    for row in rows:
        outcome = f"+{row.added} -{row.removed} ~{row.changed}" if row.status == "ok" else f"failed: {row.error}"
        print(f"#{row.id} {row.started_at:%Y-%m-%d %H:%M:%S} {row.source}  {outcome}")
    return 0
