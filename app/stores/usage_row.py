"""One usage row: its fields, and how it is stored (the writer's inserts, the journal's replay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import orjson


@dataclass(slots=True)
class UsageRow:
    request_id: str
    created_at: datetime
    endpoint: str
    dialect: str
    client: str
    requested_model: str
    resolved_model: str | None
    provider: str | None
    route: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    usage_reported: bool
    cache_write_1h_tokens: int
    web_search_requests: int
    service_tier: str | None
    cost_nanousd: int | None
    cost_source: str
    computed_cost_nanousd: int | None
    provider_cost_nanousd: int | None
    cost_input_nanousd: int | None
    cost_cached_input_nanousd: int | None
    cost_cache_read_nanousd: int | None
    cost_cache_write_nanousd: int | None
    cost_output_nanousd: int | None
    cost_request_nanousd: int | None
    cost_search_nanousd: int | None
    pricing_tier: str | None
    rates: dict[str, Any] | None
    latency_ms: int | None
    ttft_ms: int | None
    streamed: bool
    status: int
    outcome: str
    error: str | None
    tags: list[str] = field(default_factory=list)
    client_host: str | None = None


RECORD_COLUMNS = tuple(f for f in UsageRow.__dataclass_fields__ if f != "tags")


def insert_sql(table: str, columns: tuple[str, ...], postgres: bool) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1)) if postgres else ", ".join("?" * len(columns))
    conflict = "(request_id)" if table == "usage_record" else "(request_id, tag)"
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks}) ON CONFLICT {conflict} DO NOTHING'


_VALUES = attrgetter(*RECORD_COLUMNS)
# Columns whose Python value is not what the database takes as it is (by their declared type).
_CONVERTED = [
    i
    for i, c in enumerate(RECORD_COLUMNS)
    if str(UsageRow.__dataclass_fields__[c].type).startswith(("datetime", "bool", "dict"))
]


def db_record(row: UsageRow, postgres: bool) -> list[Any]:
    values = list(_VALUES(row))
    for index in _CONVERTED:
        values[index] = _db_value(values[index], postgres)
    return values


def _db_value(value: Any, postgres: bool) -> Any:
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return utc if postgres else utc.isoformat(sep=" ")  # the text Tortoise stores in SQLite
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, bool) and not postgres:
        return int(value)
    return value


def decode(record: dict[str, Any]) -> UsageRow:
    values = dict(record)
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return UsageRow(**values)
