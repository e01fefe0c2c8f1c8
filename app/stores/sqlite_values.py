"""A usage batch as SQLite takes it: multi-row inserts and their parameters, values converted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from datetime import UTC, datetime
from typing import Any

import orjson

from app.fieldtuple import tuple_getter
from app.stores.usage_row import JOURNAL_COLUMNS, RECORD_COLUMNS, UsageRow

log = logging.getLogger("llm_relay.usage")
_TAGS = JOURNAL_COLUMNS.index("tags")
_REQUEST_ID = JOURNAL_COLUMNS.index("request_id")


# SQLite's records: a parameter per column and row. The same JSON array through json_each() cost
# 4x as much, SQLite re-parsing the row's object for every column it extracts.
_AT = {column: i for i, column in enumerate(JOURNAL_COLUMNS)}
_NULLABLE = {c for c in RECORD_COLUMNS if "None" in str(UsageRow.__dataclass_fields__[c].type)}
_FLAGS = ("usage_reported", "streamed")  # bound as 0 or 1, None as 0
_REQUIRED = [c for c in RECORD_COLUMNS if c not in _NULLABLE and c not in _FLAGS]


def stored_time(at: datetime) -> str:
    """``at`` as the text Tortoise stores in SQLite: ``at.astimezone(UTC).isoformat(sep=" ")``,
    formatted by orjson in a third of the time (the same text: see the tests)."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return orjson.dumps(at).decode()[1:-1].replace("T", " ", 1)


def stored_text(at: str) -> str:
    """A journal line's time (orjson's text of the row's datetime) as Tortoise stores it in
    SQLite: the same text with a space for the T when it is in UTC, as rows' times are."""
    if at.endswith("+00:00"):
        return at.replace("T", " ", 1)
    return stored_time(datetime.fromisoformat(at))


def _flag(value: Any) -> int:
    return 1 if value else 0  # not int(): a row that somehow holds None must not fail its batch


def _missing(column: str) -> Any:
    """What a row that somehow holds None in a column that must have a value stores there:
    it would otherwise be lost (under OR IGNORE SQLite skips a row that breaks NOT NULL)."""
    kind = str(UsageRow.__dataclass_fields__[column].type)
    if kind == "datetime":
        return datetime.now(UTC).isoformat()  # as in a journal line
    return "" if kind == "str" else 0


# The time as the text Tortoise stores, booleans as 0 and 1.
_SQLITE_VALUE: dict[str, Callable[[Any], Any]] = {"created_at": stored_text} | dict.fromkeys(_FLAGS, _flag)

# The sqlite3 module binds exact ints, floats and strings directly; anything else, None and
# booleans included, goes through its adapter lookup (~3,000 instructions a value, some 10
# values a row: a quarter of the insert's cost, measured with callgrind). SQLite stores a NaN
# bound as a double as NULL, so a NULL goes in as NaN. A column that must have a value and
# holds None (which no row should) stays None: SQLite skips that row (OR IGNORE, below) and
# :func:`sqlite_missing` gives it values to be stored with.
_NULL = float("nan")
_NULLS = {column: _NULL for column in _NULLABLE} | {"created_at": None}  # None must not reach stored_text()

# Rows per multi-row INSERT. One statement for many rows keeps SQLite's cursors on the table and
# its six indexes open from row to row, where executemany() resets the statement and reopens
# them for every row: 98k -> 73k instructions a row with its tag (callgrind, standalone; 32
# rows ~71k). Only two sizes (a block, and one row for the rest) keep the sqlite3 module's
# statement cache from compiling a statement per batch size: compiling costs about 1.5x
# executing it. Every row takes the same statement whatever it holds (rows grouped by which
# columns were NULL, each group with its own statements, went in one by one whenever a group
# was smaller than a block, as in mixed traffic most were; and telling the groups apart cost
# ~1 us a row).
#
# OR IGNORE, not ON CONFLICT DO NOTHING: a multi-row statement that may stop half-way with an
# error (a NOT NULL column, under DO NOTHING) makes SQLite copy every page it touches into a
# statement journal first, to undo its earlier rows: ~8% of a row's cost (standalone writer,
# 10.5 -> 9.7 us a row). Under OR IGNORE a row is skipped when its request id is already
# written (a replayed row, as intended) or when it breaks NOT NULL (see _NULLS).
BLOCK_ROWS = 16
_COLUMNS = ", ".join(f'"{column}"' for column in RECORD_COLUMNS)
_INSERT = f'INSERT OR IGNORE INTO "usage_record" ({_COLUMNS}) VALUES '
_ONE = f"({', '.join('?' * len(RECORD_COLUMNS))})"
INSERT_ONE = _INSERT + _ONE
INSERT_BLOCK = _INSERT + ", ".join([_ONE] * BLOCK_ROWS)
_values = tuple_getter(RECORD_COLUMNS, _SQLITE_VALUE, at=_AT, nulls=_NULLS)
_block_values = tuple_getter(RECORD_COLUMNS, _SQLITE_VALUE, objects=BLOCK_ROWS, at=_AT, nulls=_NULLS)


def sqlite_inserts(rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """The rows (as :func:`decode_lines` gives them) as SQLite takes them: statements and their
    parameter sets, for executemany(), ``BLOCK_ROWS`` rows at a time and the rest one by one.
    A block's values come from one compiled call (:mod:`app.fieldtuple`) for all its rows."""
    blocked = len(rows) - len(rows) % BLOCK_ROWS
    inserts: list[tuple[str, list[Any]]] = []
    if blocked:
        inserts.append(
            (INSERT_BLOCK, [_block_values(*rows[at : at + BLOCK_ROWS]) for at in range(0, blocked, BLOCK_ROWS)])
        )
    if blocked < len(rows):
        inserts.append((INSERT_ONE, list(map(_values, rows[blocked:]))))
    return inserts


def sqlite_missing(rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """The inserts of the rows that hold None where a value is required, which SQLite skipped:
    each with an empty value there instead (logged as an error). Their batch would otherwise
    lose them, or fail on every retry and hold up every row behind it."""
    fixed = []
    for row in rows:
        if empty := [column for column in _REQUIRED if row[_AT[column]] is None]:
            log.error("usage row %s with no value for %s: stored with an empty one", row[_REQUEST_ID], ", ".join(empty))
            row = list(row)
            for column in empty:
                row[_AT[column]] = _missing(column)
            fixed.append(_values(row))
    return [(INSERT_ONE, fixed)] if fixed else []


# SQLite: a batch's tags as multi-row inserts of BLOCK_ROWS pairs, the rest a pair at a time.
# One statement per pair cost ~7,000 instructions more per tag (the sqlite3 module's work per
# execution); one JSON array of every pair through json_each() ~0.5 us a row more than blocks.
_TAG_INSERT = 'INSERT OR IGNORE INTO "usage_tag" (request_id, tag) VALUES {}'
_TAG_ONE = _TAG_INSERT.format("(?, ?)")
_TAG_BLOCK = _TAG_INSERT.format(", ".join(["(?, ?)"] * BLOCK_ROWS))


def sqlite_tags(rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """The rows' tags (rows as :func:`decode_lines` gives them) as inserts and their parameter sets."""
    flat = [value for row in rows for tag in row[_TAGS] for value in (row[_REQUEST_ID], tag)]
    count = len(flat) // 2
    blocked = count - count % BLOCK_ROWS
    inserts: list[tuple[str, list[Any]]] = []
    if blocked:
        size = 2 * BLOCK_ROWS
        inserts.append((_TAG_BLOCK, [tuple(flat[at : at + size]) for at in range(0, 2 * blocked, size)]))
    if blocked < count:
        inserts.append((_TAG_ONE, [tuple(flat[at : at + 2]) for at in range(2 * blocked, 2 * count, 2)]))
    return inserts


# Rate cards (app/stores/rate_cards.py): each set of rates once, under its id.
CARD_INSERT = 'INSERT OR IGNORE INTO "usage_rates" (id, rates) VALUES (?, ?)'
_RATES_ID = JOURNAL_COLUMNS.index("rates_id")
_RATES = JOURNAL_COLUMNS.index("rates")


def sqlite_cards(rows: list[list[Any]], known: Container[int] = ()) -> dict[int, str]:
    """The rate cards of these rows (as :func:`decode_lines` gives them) not in ``known``, by id."""
    return {row[_RATES_ID]: row[_RATES] for row in rows if row[_RATES_ID] is not None and row[_RATES_ID] not in known}
