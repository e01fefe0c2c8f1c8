"""One usage row: its fields, its journal line, and PostgreSQL's batch (SQLite's: app/stores/sqlite_values.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from app.fieldtuple import tuple_getter
from app.stores.rate_cards import rate_card


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


RECORD_COLUMNS = tuple(f for f in UsageRow.__dataclass_fields__ if f not in ("tags", "rates"))
JOURNAL_COLUMNS = tuple(UsageRow.__dataclass_fields__)
journal_values = tuple_getter(JOURNAL_COLUMNS)  # a row's journal line, as an array in this order
_NAMES = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)


def journal_line(row: UsageRow) -> bytes:
    """The row's journal line: the JSON array of its values in ``JOURNAL_COLUMNS`` order."""
    return orjson.dumps(journal_values(row), option=orjson.OPT_APPEND_NEWLINE)


# PostgreSQL: one statement takes the whole batch as one JSON array of the rows' journal lines,
# made once per row for the journal anyway, and inserts both tables; the database parses it.
# (With a parameter per column and row, asyncpg converted and encoded every value on the event
# loop's thread, ~2x the relay's CPU per row; encoding the rows a second time for the batch cost
# ~3 us a row more than joining their lines.)
_PG_VALUE = {
    "str": "r->>{i}",
    "int": "(r->>{i})::bigint",
    "bool": "COALESCE((r->>{i})::boolean, false)",  # as in SQLite: a row holding None must not fail its batch
    "datetime": "(r->>{i})::timestamptz",
}


# A None where a value is required is stored as an empty one, as on SQLite: a NOT NULL
# violation would fail the batch on every retry and hold up every row behind it.
_PG_EMPTY = {"str": "''", "int": "0", "datetime": "now()"}


def _pg_value(column: str) -> str:
    kind = str(UsageRow.__dataclass_fields__[column].type)
    value = _PG_VALUE[kind.removesuffix(" | None")].format(i=JOURNAL_COLUMNS.index(column))
    if kind.endswith(" | None") or kind not in _PG_EMPTY:
        return value
    return f"COALESCE({value}, {_PG_EMPTY[kind]})"


_RATES_ID = _pg_value("rates_id")
POSTGRES_BATCH = (
    "WITH batch AS (SELECT r FROM jsonb_array_elements($1::jsonb) AS r), "
    f'cards AS (INSERT INTO "usage_rates" (id, rates) SELECT DISTINCT ON ({_RATES_ID}) {_RATES_ID}, '
    f"(r->>{JOURNAL_COLUMNS.index('rates')})::jsonb FROM batch WHERE {_RATES_ID} IS NOT NULL "
    "ON CONFLICT (id) DO NOTHING), "
    f'records AS (INSERT INTO "usage_record" ({_NAMES}) '
    f"SELECT {', '.join(map(_pg_value, RECORD_COLUMNS))} FROM batch ON CONFLICT (request_id) DO NOTHING) "
    f'INSERT INTO "usage_tag" (request_id, tag) SELECT {_pg_value("request_id")}, t '
    f"FROM batch, jsonb_array_elements_text(r->{JOURNAL_COLUMNS.index('tags')}) AS t "
    "ON CONFLICT (request_id, tag) DO NOTHING"
)


def joined(lines: bytes | memoryview) -> bytes:
    """Journal lines (each ending in a newline, which JSON never leaves unescaped inside a
    value) as one JSON array, in two copies (the lines would otherwise be copied four times)."""
    return b"".join((b"[", lines[:-1], b"]")).replace(b"\n", b",")


def chunks(lines: bytes, count: int, cuts: Sequence[int] | None = None) -> Iterator[memoryview]:
    """The journal lines ``count`` at a time (the last chunk may hold fewer), as views of
    ``lines``. ``cuts`` (where every ``count`` lines end, from the journal that holds them)
    spares a search for each line's end."""
    view = memoryview(lines)
    if cuts is None:
        cuts = _cuts(lines, count)
    start = 0
    for end in cuts:
        yield view[start:end]
        start = end
    if start < len(lines):
        yield view[start:]


def _cuts(lines: bytes, count: int) -> list[int]:
    found: list[int] = []
    end = -1
    while True:
        for _ in range(count):
            end = lines.find(b"\n", end + 1)
            if end < 0:
                return found
        found.append(end + 1)


def decode_lines(lines: bytes | memoryview) -> list[list[Any]]:
    """Journal lines back to their rows' values, in ``JOURNAL_COLUMNS`` order."""
    values: list[list[Any]] = orjson.loads(joined(lines))
    return values


def encode_values(values: list[list[Any]]) -> bytes:
    """Rows' values as journal lines again (after the writer changed some of them)."""
    return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in values)


def postgres_batch(lines: bytes) -> str:
    """The rows as one JSON array of their journal lines."""
    payload = joined(lines)
    if b"\\u0000" in payload:  # rare: a caller's model name, tag or error text with a NUL in it
        payload = orjson.dumps([_without_nul(row) for row in orjson.loads(payload)])
    return payload.decode()


_TEXT = [JOURNAL_COLUMNS.index(c) for c, f in UsageRow.__dataclass_fields__.items() if str(f.type).startswith("str")]
_TAGS = JOURNAL_COLUMNS.index("tags")
_REQUEST_ID = JOURNAL_COLUMNS.index("request_id")


def _without_nul(row: list[Any]) -> list[Any]:
    """PostgreSQL's text and JSON refuse NUL; one in a row would fail its batch on every retry
    and hold up every row after it. It becomes U+FFFD, the mark of a character that could not
    be kept."""
    for at in _TEXT:
        if isinstance(value := row[at], str) and "\x00" in value:
            row[at] = value.replace("\x00", "\ufffd")
    if any("\x00" in tag for tag in row[_TAGS]):
        row[_TAGS] = [tag.replace("\x00", "\ufffd") for tag in row[_TAGS]]
    return row


def row_of_values(values: list[Any]) -> UsageRow:
    """A row decoded from its journal line (for the writer's listeners)."""
    row = UsageRow(*values)
    row.created_at = datetime.fromisoformat(values[1])
    return row


def decode(record: dict[str, Any]) -> UsageRow:
    """A row from a journal record (adopted: written by this version or an earlier one)."""
    values = dict(record)
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    values.setdefault("rates_id", None)
    if isinstance(rates := values.get("rates"), dict):  # journalled before rates were stored once
        values["rates_id"], values["rates"] = rate_card(rates)
    return UsageRow(**values)
