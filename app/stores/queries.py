"""Reading usage back: the export and the tests use these (the admin UI will too)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from app.stores.models import UsageRecord, UsageTag

EXPORT_FIELDS = (
    "request_id",
    "created_at",
    "endpoint",
    "dialect",
    "client",
    "tags",
    "requested_model",
    "resolved_model",
    "provider",
    "route",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "usage_reported",
    "cache_write_1h_tokens",
    "web_search_requests",
    "service_tier",
    "cost_nanousd",
    "cost_source",
    "computed_cost_nanousd",
    "provider_cost_nanousd",
    "cost_input_nanousd",
    "cost_cached_input_nanousd",
    "cost_cache_read_nanousd",
    "cost_cache_write_nanousd",
    "cost_output_nanousd",
    "cost_request_nanousd",
    "cost_search_nanousd",
    "pricing_tier",
    "rates",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "status",
    "outcome",
    "error",
)


async def usage_rows(
    *,
    since: datetime | None = None,
    request_ids: list[str] | None = None,
    tag: str | None = None,
    page: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """Usage rows oldest first, each with its tags, fetched a page at a time."""
    if tag is not None:
        tagged = await UsageTag.filter(tag=tag).values_list("request_id", flat=True)
        request_ids = [str(r) for r in tagged if request_ids is None or str(r) in request_ids]
    last_id = 0
    while True:
        query = UsageRecord.filter(id__gt=last_id)
        if since is not None:
            query = query.filter(created_at__gte=since)
        if request_ids is not None:
            query = query.filter(request_id__in=request_ids)
        rows = await query.order_by("id").limit(page).values()
        if not rows:
            return
        tags: dict[str, list[str]] = defaultdict(list)
        found = UsageTag.filter(request_id__in=[r["request_id"] for r in rows]).order_by("id")
        for request_id, name in await found.values_list("request_id", "tag"):
            tags[str(request_id)].append(str(name))
        for row in rows:
            last_id = row["id"]
            yield {name: (tags.get(row["request_id"], []) if name == "tags" else row[name]) for name in EXPORT_FIELDS}
