"""``llm-relay pricing sync``: fetch LiteLLM's live catalog, record what changed, make it the
active pricing. A failed sync changes nothing and is recorded with its reason. Past requests
keep the rates stored with their rows; admin overrides live in their own table and apply on
top of whatever the catalog says."""

from __future__ import annotations

import asyncio
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


MAX_CATALOG_BYTES = 64 << 20  # LiteLLM's catalog is about 1 MB; a source past this is not a catalog


async def fetch(source: str, http: httpx.AsyncClient) -> bytes:
    """The catalog's bytes from an http(s) URL, a file:// URL or a local path, at most
    MAX_CATALOG_BYTES of them (``/dev/zero`` or an endless reply must not fill memory)."""
    if not source.startswith(("http://", "https://")):
        path = Path(source.removeprefix("file://"))
        try:
            read = await asyncio.to_thread(_read_at_most, path, MAX_CATALOG_BYTES + 1)
        except OSError as exc:
            raise SyncError(f"cannot read {path}: {exc.strerror}") from None
        _within_limit(source, read)
        return read
    try:
        async with http.stream("GET", source, timeout=30, follow_redirects=True) as response:
            if response.status_code != 200:
                raise SyncError(f"cannot fetch {source}: HTTP {response.status_code}")
            data = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: the limit holds for a compressed reply too
                data += chunk
                _within_limit(source, data)
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot fetch {source}: {type(exc).__name__} {exc}".strip()) from None
    return bytes(data)


def _read_at_most(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


def _within_limit(source: str, data: bytes | bytearray) -> None:
    if len(data) > MAX_CATALOG_BYTES:
        raise SyncError(f"{source} is larger than {MAX_CATALOG_BYTES >> 20} MB: not a pricing catalog")


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
