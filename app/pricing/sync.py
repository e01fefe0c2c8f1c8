"""``llm-relay pricing sync``: fetch LiteLLM's live catalog, record what changed, make it the
active pricing. A failed sync changes nothing and is recorded with its reason. Past requests
keep the rates stored with their rows; admin overrides live in their own table and apply on
top of whatever the catalog says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.pricing.catalog_build import CatalogFormatError, Models, build_models, diff
from app.stores.models import PricingSync


class SyncError(Exception):
    """The sync failed; the current prices stay."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    id: int
    added: int
    removed: int
    changed: int


async def fetch(source: str, http: httpx.AsyncClient) -> bytes:
    """The catalog's bytes from an http(s) URL, a file:// URL or a local path."""
    if not source.startswith(("http://", "https://")):
        path = Path(source.removeprefix("file://"))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SyncError(f"cannot read {path}: {exc.strerror}") from None
    try:
        response = await http.get(source, timeout=30, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot fetch {source}: {type(exc).__name__} {exc}".strip()) from None
    if response.status_code != 200:
        raise SyncError(f"cannot fetch {source}: HTTP {response.status_code}")
    return response.content


def parse(data: bytes) -> Models:
    try:
        return build_models(orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        raise SyncError(f"the catalog is not JSON: {exc}") from None
    except CatalogFormatError as exc:
        raise SyncError(str(exc)) from None


async def sync_pricing(source: str, current: Models, http: httpx.AsyncClient) -> SyncResult:
    """Fetch, compare with ``current`` and record the sync (in the active Tortoise context)."""
    started = datetime.now(UTC)
    try:
        models = parse(await fetch(source, http))
    except SyncError as exc:
        await PricingSync.create(
            started_at=started, finished_at=datetime.now(UTC), source=source, status="failed", error=str(exc)
        )
        raise
    changes = diff(current, models)
    row = await PricingSync.create(
        started_at=started,
        finished_at=datetime.now(UTC),
        source=source,
        status="ok",
        added=len(changes["added"]),
        removed=len(changes["removed"]),
        changed=len(changes["changed"]),
        changes=changes,
        snapshot={"models": models},
    )
    return SyncResult(row.id, row.added, row.removed, row.changed)


async def latest_snapshot(after_id: int = 0) -> tuple[int, Models] | None:
    """The newest successful sync newer than ``after_id``, if any."""
    row = await PricingSync.filter(status="ok", id__gt=after_id).order_by("-id").first()
    if row is None or not row.snapshot:
        return None
    models: Any = row.snapshot.get("models")
    return (row.id, models) if isinstance(models, dict) else None
