"""One usage row: its fields, its journal line, and the row the writer stores from a line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson

from app.stores.rate_cards import rate_card

log = logging.getLogger("llm_relay.usage")


@dataclass  # no __slots__: orjson encodes an instance's __dict__ faster than slots read one by one
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
    rates_id: int | None  # the rates priced with (app/stores/rate_cards.py) ...
    rates: str | None  # ... and their JSON text, stored once per id in usage_rates
    latency_ms: int | None
    ttft_ms: int | None
    streamed: bool
    status: int
    outcome: str
    error: str | None
    tags: list[str] = field(default_factory=list)
    client_host: str | None = None
    attempts: str | None = None  # a route's failed attempts before the one that served, as JSON


FIELDS = tuple(f.name for f in fields(UsageRow))
RECORD_COLUMNS = tuple(name for name in FIELDS if name not in ("tags", "rates"))  # usage_record's, in this order
# The columns that must hold a value, by type (annotations are text here: see the __future__ import).
REQUIRED = {f.name: str(f.type) for f in fields(UsageRow) if "None" not in str(f.type) and f.name != "tags"}
_EMPTY = {"str": "", "int": 0, "bool": False}
_NO_VALUES = dict.fromkeys(FIELDS)
_required_values = itemgetter(*REQUIRED)


def journal_line(row: UsageRow) -> bytes:
    """The row's journal line: one JSON object, newline-terminated (orjson encodes the dataclass)."""
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


def stored_row(record: Any) -> dict[str, Any]:
    """The row the writer stores for a journal record (of this version or an earlier one), with
    every field. A value missing where the database requires one is filled with an empty one and
    named in the row's ``error`` (and logged): the row is kept, its problem visible. Raises
    ValueError or TypeError for a record that is no usage row at all."""
    if not isinstance(record, dict) or not isinstance(record.get("request_id"), str):
        raise ValueError("not a usage row (no request_id)")
    row = {**_NO_VALUES, **record}
    if len(row) > len(FIELDS):  # a field this version no longer has
        row = {name: row[name] for name in FIELDS}
    row["tags"] = row["tags"] or []
    if isinstance(row["rates"], dict):  # journalled before rates were stored once
        row["rates_id"], row["rates"] = rate_card(row["rates"])
    if None in _required_values(row):
        missing = [name for name in REQUIRED if row[name] is None]
        log.error("usage row %s with no value for %s: stored with an empty one", row["request_id"], ", ".join(missing))
        for name in missing:
            kind = REQUIRED[name]
            row[name] = datetime.now(UTC).isoformat() if kind == "datetime" else _EMPTY[kind]
        problem = f"usage row had no value for {', '.join(missing)}"
        row["error"] = f"{row['error']}; {problem}" if row["error"] else problem
    datetime.fromisoformat(row["created_at"])  # raises for a row whose time is no time
    return row


def usage_row(row: dict[str, Any]) -> UsageRow:
    """A stored row as a :class:`UsageRow` again (for the writer's listeners)."""
    return UsageRow(**{**row, "created_at": datetime.fromisoformat(row["created_at"])})
