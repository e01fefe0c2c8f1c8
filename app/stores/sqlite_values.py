"""A usage batch as SQLite takes it: multi-row inserts and their parameters, values converted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.fieldtuple import none_getter, tuple_getter
from app.stores.usage_row import JOURNAL_COLUMNS, RECORD_COLUMNS, UsageRow

log = logging.getLogger("llm_relay.usage")
_TAGS = JOURNAL_COLUMNS.index("tags")
_REQUEST_ID = JOURNAL_COLUMNS.index("request_id")


# SQLite's records: a parameter per column and row. The same JSON array through json_each() cost
# 4x as much, SQLite re-parsing the row's object for every column it extracts.
_AT = {column: i for i, column in enumerate(JOURNAL_COLUMNS)}
_NULLABLE = {c for c in RECORD_COLUMNS if "None" in str(UsageRow.__dataclass_fields__[c].type)}
_NULLS = none_getter(RECORD_COLUMNS, at=_AT)  # which of a row's columns are None
_MAX_SHAPES = 256


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


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _flag(value: Any) -> int:
    return 1 if value else 0  # not int(): a row that somehow holds None must not fail its batch


def _missing(column: str) -> Callable[[Any], Any]:
    """What a row that somehow holds None in a column that must have a value stores there:
    its batch would otherwise fail on every retry and hold up every row behind it."""
    kind = str(UsageRow.__dataclass_fields__[column].type)
    if kind == "datetime":
        return lambda _: stored_time(datetime.now(UTC))
    return (lambda _: "") if kind == "str" else (lambda _: 0)


# The time as the text Tortoise stores, the rates as JSON text, booleans as 0 and 1.
_SQLITE_VALUE: dict[str, Callable[[Any], Any]] = {
    "created_at": stored_text,
    "rates": _json_text,
    "usage_reported": _flag,
    "streamed": _flag,
}


# Rows per multi-row INSERT. One statement for many rows keeps SQLite's cursors on the table and
# its six indexes open from row to row, where executemany() resets the statement and reopens
# them for every row: 98k -> 73k instructions a row with its tag (callgrind, standalone; 32
# rows ~71k). Only two sizes per shape (a block, and one row for the rest) keep the sqlite3
# module's statement cache from compiling a statement per batch size: compiling costs about
# 1.5x executing it.
#
# OR IGNORE, not ON CONFLICT DO NOTHING: a multi-row statement that may stop half-way with an
# error (a NOT NULL column, under DO NOTHING) makes SQLite copy every page it touches into a
# statement journal first, to undo its earlier rows: ~8% of a row's cost (standalone writer,
# 10.5 -> 9.7 us a row). Under OR IGNORE the only constraint that can fail is the request id's
# (a replayed row, skipped as intended): no NOT NULL column is ever bound None (_missing), and
# the tables have no other constraints.
BLOCK_ROWS = 16


@dataclass(slots=True)
class _Shape:
    """The inserts for rows whose None columns are the same ones: NULL columns are left out of
    them (a required one is given a value instead, see :func:`_missing`)."""

    sql: str  # one row
    block_sql: str  # BLOCK_ROWS rows
    values: Any  # a row's other values, converted, in the statements' order
    block: Any  # the same for BLOCK_ROWS rows, one after the other in one tuple


_shapes: dict[tuple[bool, ...], _Shape] = {}


def _shape(nulls: tuple[bool, ...]) -> _Shape:
    none = {column for column, null in zip(RECORD_COLUMNS, nulls, strict=True) if null}
    keep = [column for column in RECORD_COLUMNS if column not in none & _NULLABLE]
    convert = dict(_SQLITE_VALUE)
    if missing := sorted(none - _NULLABLE):
        log.error("usage rows with no value for %s: stored with an empty one", ", ".join(missing))
        convert.update({column: _missing(column) for column in missing})
    names = ", ".join(f'"{column}"' for column in keep)
    one = f"({', '.join('?' * len(keep))})"
    insert = f'INSERT OR IGNORE INTO "usage_record" ({names}) VALUES '
    if len(_shapes) >= _MAX_SHAPES:
        _shapes.clear()
    getters = (
        tuple_getter(keep, convert, at=_AT),
        tuple_getter(keep, convert, objects=BLOCK_ROWS, at=_AT),
    )
    shape = _shapes[nulls] = _Shape(insert + one, insert + ", ".join([one] * BLOCK_ROWS), *getters)
    return shape


def sqlite_inserts(rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """The rows (as :func:`decode_lines` gives them) as SQLite takes them: statements and their
    parameter sets, for executemany(). Rows are grouped by the NULLs they hold, each group
    inserted ``BLOCK_ROWS`` at a time and the rest one by one. NULLs and booleans are left out
    or converted because the sqlite3 module binds only exact ints, floats and strings directly;
    anything else goes through its adapter lookup (~3,000 instructions a value, some 10 values
    a row: a quarter of the insert's cost, measured with callgrind). Each shape's values come
    from compiled functions (:mod:`app.fieldtuple`), a block's from one call for all its rows."""
    groups: dict[tuple[bool, ...], list[list[Any]]] = {}
    for row in rows:
        nulls = _NULLS(row)
        group = groups.get(nulls)
        if group is None:
            group = groups[nulls] = []
        group.append(row)
    inserts: list[tuple[str, list[Any]]] = []
    for nulls, group in groups.items():
        shape = _shapes.get(nulls) or _shape(nulls)
        blocked = len(group) - len(group) % BLOCK_ROWS
        if blocked:
            block, size = shape.block, BLOCK_ROWS
            inserts.append((shape.block_sql, [block(*group[at : at + size]) for at in range(0, blocked, size)]))
        if blocked < len(group):
            inserts.append((shape.sql, list(map(shape.values, group[blocked:]))))
    return inserts


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
