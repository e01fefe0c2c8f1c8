"""Reading usage back: the export, the admin UI and the tests use these."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from app.stores.usage_models import UsageRates, UsageRecord, UsageTag

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
    "client_host",
    "attempts",
)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which usage rows to read; None means any. ``until`` is exclusive, ``model`` is the
    resolved model (provider/model) and ``status`` the HTTP status the caller got."""

    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    provider: str | None = None
    model: str | None = None
    client: str | None = None
    outcome: str | None = None
    status: int | None = None

    def apply(self, query: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        if self.since is not None:
            query = query.filter(created_at__gte=self.since)
        if self.until is not None:
            query = query.filter(created_at__lt=self.until)
        if self.tag is not None:
            # A subquery, not a list of ids: a busy tag has more rows than SQLite takes parameters.
            query = query.filter(request_id__in=Subquery(UsageTag.filter(tag=self.tag).values("request_id")))
        for column, value in self.equalities():
            query = query.filter(**{column: value})
        return query

    def equalities(self) -> list[tuple[str, Any]]:
        """(column, value) of the filters that ask for one value of a usage_record column."""
        pairs = (
            ("provider", self.provider),
            ("resolved_model", self.model),
            ("client", self.client),
            ("outcome", self.outcome),
            ("status", self.status),
        )
        return [(column, value) for column, value in pairs if value is not None]


async def usage_rows(
    filters: UsageFilter | None = None, *, request_ids: list[str] | None = None, page: int = 1000
) -> AsyncGenerator[dict[str, Any], None]:
    """Usage rows oldest first, each with its tags, fetched a page at a time."""
    filters = filters or UsageFilter()
    last_id = 0
    while True:
        query = filters.apply(UsageRecord.filter(id__gt=last_id))
        if request_ids is not None:
            query = query.filter(request_id__in=request_ids)
        rows = await query.order_by("id").limit(page).values()
        if not rows:
            return
        for row in await with_details(rows):
            last_id = row["id"]
            yield {name: row[name] for name in EXPORT_FIELDS}


async def with_details(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as they are read back: each with its tags and the rates it was priced with."""
    return await with_tags(await with_rates(rows))


async def with_tags(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each with ``tags``: its tag names in the order they were recorded."""
    tags: dict[str, list[str]] = defaultdict(list)
    found = UsageTag.filter(request_id__in=[r["request_id"] for r in rows]).order_by("id")
    for request_id, name in await found.values_list("request_id", "tag"):
        tags[str(request_id)].append(str(name))
    return [{**row, "tags": tags.get(row["request_id"], [])} for row in rows]


async def with_rates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each with the ``rates`` it was priced with: rows hold them by id, stored once
    in usage_rates (app/stores/rate_cards.py); rows written before that hold them themselves."""
    ids = {row["rates_id"] for row in rows if row["rates"] is None and row["rates_id"] is not None}
    if not ids:
        return rows
    cards = dict(await UsageRates.filter(id__in=ids).values_list("id", "rates"))
    return [row if row["rates"] is not None else {**row, "rates": cards.get(row["rates_id"])} for row in rows]


async def take(rows: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The next ``n`` rows (fewer at the end, none when done)."""
    batch: list[dict[str, Any]] = []
    async for row in rows:
        batch.append(row)
        if len(batch) == n:
            break
    return batch


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


async def export_bytes(batches: AsyncIterator[list[dict[str, Any]]], fmt: str) -> AsyncGenerator[bytes, None]:
    """Exported rows as CSV (a header line, then the rows) or as a JSON array, a batch at a
    time, so an export of any size holds one batch in memory: the CLI's and the admin API's."""
    yield (",".join(EXPORT_FIELDS) + "\r\n").encode() if fmt == "csv" else b"["
    first = True
    async for batch in batches:  # none empty
        if fmt == "csv":
            out = io.StringIO()
            csv.DictWriter(out, fieldnames=EXPORT_FIELDS).writerows({k: _cell(v) for k, v in r.items()} for r in batch)
            yield out.getvalue().encode()
        else:
            yield (b"\n" if first else b",\n") + b",\n".join(orjson.dumps(row) for row in batch)
        first = False
    if fmt != "csv":
        yield b"\n]\n"
