"""A batch of usage rows into the database, with its tags and rate cards, idempotent on
``request_id``: PostgreSQL takes it in one statement, SQLite in multi-row inserts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from itertools import chain, islice
from operator import itemgetter
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.stores.usage_row import RECORD_COLUMNS

_COLUMNS = ", ".join(f'"{column}"' for column in RECORD_COLUMNS)

# PostgreSQL parses the batch, one JSON array of rows, itself: with a parameter per column and
# row, asyncpg would convert and encode every value on the event loop's thread.
POSTGRES_BATCH = f"""
WITH batch AS (SELECT r FROM jsonb_array_elements($1::jsonb) AS r),
cards AS (
    INSERT INTO "usage_rates" (id, rates)
    SELECT DISTINCT (r->>'rates_id')::bigint, (r->>'rates')::jsonb FROM batch WHERE r->>'rates_id' IS NOT NULL
    ON CONFLICT (id) DO NOTHING
),
records AS (
    INSERT INTO "usage_record" ({_COLUMNS})
    SELECT {_COLUMNS} FROM batch, jsonb_populate_record(NULL::"usage_record", r)
    ON CONFLICT (request_id) DO NOTHING
)
INSERT INTO "usage_tag" (request_id, tag)
SELECT r->>'request_id', tag FROM batch, jsonb_array_elements_text(r->'tags') AS tag
ON CONFLICT (request_id, tag) DO NOTHING
"""


async def write_postgres(connection: BaseDBAsyncClient, rows: Iterable[bytes | dict[str, Any]]) -> int:
    """One statement, atomic without a transaction around it; returns how many rows it took.
    A row is a dict, or the JSON object of one as its journal line holds it."""
    lines = [_postgres_json(row) for row in rows]
    await connection.execute_query(POSTGRES_BATCH, [(b"[%b]" % b",".join(lines)).decode()])
    return len(lines)


def _postgres_json(row: bytes | dict[str, Any]) -> bytes:
    line = row if isinstance(row, bytes) else orjson.dumps(row)
    if b"\\u0000" in line:  # PostgreSQL refuses NUL in text: it becomes U+FFFD, a character that could not be kept
        line = orjson.dumps({key: _without_nul(value) for key, value in orjson.loads(line).items()})
    return line


def _without_nul(value: Any) -> Any:
    if isinstance(value, list):  # the tags
        return [_without_nul(item) for item in value]
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


# SQLite: rows per INSERT, largest first; a few fixed sizes keep the statements SQLite compiles
# few (each stays cached). A batch is decoded and inserted a chunk at a time, the event loop
# taking turns in between: larger chunks made the relay pay more per row (bench/RESULTS.md).
BLOCK_ROWS = (16, 4, 1)
CHUNK_ROWS = BLOCK_ROWS[0]
_KEYS = {"usage_record": "request_id", "usage_tag": "request_id, tag", "usage_rates": "id"}  # unique: replays skip
_record_values = itemgetter(*RECORD_COLUMNS)
_CREATED_AT, _FLAGS = (
    RECORD_COLUMNS.index("created_at"),
    [RECORD_COLUMNS.index(c) for c in ("usage_reported", "streamed")],
)


def sqlite_time(text: str) -> str:
    """A journal line's time (ISO 8601) as Tortoise stores it in SQLite: in UTC, a space for the T."""
    if isinstance(text, str) and text.endswith("+00:00"):  # as rows' times are
        return text.replace("T", " ", 1)
    return datetime.fromisoformat(text).astimezone(UTC).isoformat(sep=" ")


def sqlite_values(row: dict[str, Any]) -> list[Any]:
    """The row's values in ``RECORD_COLUMNS`` order, as Tortoise stores them in SQLite."""
    values = list(_record_values(row))
    values[_CREATED_AT] = sqlite_time(values[_CREATED_AT])
    for at in _FLAGS:
        values[at] = int(values[at])
    return values


@cache
def _insert(table: str, columns: tuple[str, ...], rows: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    names = ", ".join(f'"{column}"' for column in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES {", ".join([one] * rows)} ON CONFLICT ({_KEYS[table]}) DO NOTHING'


def _blocks(values: Sequence[Sequence[Any]]) -> Iterator[tuple[int, list[list[Any]]]]:
    """The values in blocks of ``BLOCK_ROWS``: (rows per block, each block's parameters)."""
    start = 0
    for size in BLOCK_ROWS:
        stop = start + (len(values) - start) // size * size
        if stop > start:
            yield size, [list(chain.from_iterable(values[at : at + size])) for at in range(start, stop, size)]
            start = stop


async def write_sqlite(rows: Iterable[dict[str, Any]]) -> int:
    """One transaction, on Tortoise's connection (and under its lock), ``CHUNK_ROWS`` rows at a
    time; returns how many rows it took."""
    count = 0
    cards: dict[int, str] = {}
    rows = iter(rows)
    async with in_transaction() as connection:

        async def insert(table: str, columns: tuple[str, ...], values: Sequence[Sequence[Any]]) -> None:
            for size, parameters in _blocks(values):
                await connection.execute_many(_insert(table, columns, size), parameters)

        while chunk := list(islice(rows, CHUNK_ROWS)):
            count += len(chunk)
            cards.update((row["rates_id"], row["rates"]) for row in chunk if row["rates_id"] is not None)
            await insert("usage_record", RECORD_COLUMNS, [sqlite_values(row) for row in chunk])
            await insert(
                "usage_tag", ("request_id", "tag"), [(row["request_id"], tag) for row in chunk for tag in row["tags"]]
            )
        await insert("usage_rates", ("id", "rates"), list(cards.items()))
    return count
