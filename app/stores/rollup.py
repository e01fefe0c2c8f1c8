"""Daily totals that outlive the rows: the retention job folds whole days of usage rows into
``usage_daily`` and deletes them in the same transaction, so every total (the Usage page, the
CLI, spend limits) still adds up over ranges whose rows are gone. Purged days keep day
resolution: an hourly chart shows a purged day's totals at midnight.

Several instances may run the job at once: PostgreSQL serialises it with an advisory lock, and
SQLite with its single writer, so no row is counted twice. A row written after its day was
folded (a journal replayed late) is added to that day's totals by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.stores.queries import UsageFilter

DAY = {
    "sqlite": "substr(r.created_at, 1, 10)",  # stored as UTC text, 'YYYY-MM-DD HH:MM:SS...'
    "postgres": "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
SUMS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_nanousd",
)
KEYS = ("day", "tag", "provider", "resolved_model", "client", "outcome", "status")
MEASURES = ("requests", "ok", "unpriced", "priced", *SUMS)
LOCK_ID = 0x11A7_0001  # pg_advisory_xact_lock key of the retention job
_SELECT_MEASURES = (
    "COUNT(*), SUM(CASE WHEN r.outcome = 'ok' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.outcome = 'ok' AND r.cost_nanousd IS NULL THEN 1 ELSE 0 END), COUNT(r.cost_nanousd), "
    + ", ".join(f"COALESCE(SUM(r.{c}), 0)" for c in SUMS)
)


def day_start(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


def _ceil_day(moment: datetime) -> str:
    """The first UTC day starting at or after ``moment``."""
    start = day_start(moment)
    return (start if start == moment.astimezone(UTC) else start + timedelta(days=1)).date().isoformat()


def _fold(backend: str, *, tagged: bool) -> str:
    postgres = backend == "postgres"
    cutoff = "$1" if postgres else "?"
    groups = [DAY[backend], "COALESCE(r.provider, '')", "COALESCE(r.resolved_model, '')", "r.client"]
    groups += ["r.outcome", "r.status"]
    if tagged:
        groups.insert(1, "t.tag")
    # PostgreSQL refuses a constant in GROUP BY: the untagged rows' '' is only selected.
    selected = groups if tagged else [groups[0], "''", *groups[1:]]
    join = "JOIN usage_tag t ON t.request_id = r.request_id " if tagged else ""
    add = ", ".join(f"{m} = usage_daily.{m} + excluded.{m}" for m in MEASURES)
    return (
        f"INSERT INTO usage_daily ({', '.join(KEYS + MEASURES)}) "
        f"SELECT {', '.join(selected)}, {_SELECT_MEASURES} FROM usage_record r {join}"
        f"WHERE r.created_at < {cutoff} GROUP BY {', '.join(groups)} "
        f"ON CONFLICT ({', '.join(KEYS)}) DO UPDATE SET {add}"
    )


async def fold_and_purge(backend: str, cutoff: datetime) -> int:
    """Fold every row before ``cutoff`` (a day start) into daily totals, then delete the rows
    and their tags; one transaction, so a failure leaves both as they were. Returns the number
    of usage rows deleted."""
    param: Any = cutoff if backend == "postgres" else cutoff.astimezone(UTC).isoformat(sep=" ")
    mark = "$1" if backend == "postgres" else "?"
    async with in_transaction() as tx:  # the caller enters the database's context
        if backend == "postgres":
            await tx.execute_query(f"SELECT pg_advisory_xact_lock({LOCK_ID})")
        await tx.execute_query(_fold(backend, tagged=False), [param])
        await tx.execute_query(_fold(backend, tagged=True), [param])
        await tx.execute_query(
            "DELETE FROM usage_tag WHERE request_id IN "
            f"(SELECT request_id FROM usage_record WHERE created_at < {mark})",
            [param],
        )
        deleted, _ = await tx.execute_query(f"DELETE FROM usage_record WHERE created_at < {mark}", [param])
    return int(deleted)


@dataclass
class DailyQuery:
    """A query over ``usage_daily`` matching one over the rows: same filters, same groups."""

    backend: str
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?" if self.backend == "sqlite" else f"${len(self.params)}"

    def where(self, f: UsageFilter, *, by_tag: bool) -> str:
        clauses = []
        if f.since is not None:
            clauses.append(f"d.day >= {self.param(_ceil_day(f.since))}")
        if f.until is not None:
            clauses.append(f"d.day < {self.param(_ceil_day(f.until))}")
        if f.tag is not None:
            clauses.append(f"d.tag = {self.param(f.tag)}")
        else:
            clauses.append("d.tag <> ''" if by_tag else "d.tag = ''")
        clauses += [f"d.{column} = {self.param(value)}" for column, value in f.equalities()]
        return "WHERE " + " AND ".join(clauses)


# The row queries' grouping keys, over usage_daily.
COLUMNS = {
    "day": "d.day",
    "hour": "d.day || ' 00'",
    "tag": "d.tag",
    "provider": "d.provider",
    "model": "d.resolved_model",
    "client": "d.client",
    "outcome": "d.outcome",
}


async def daily_grouped(
    conn: BaseDBAsyncClient, backend: str, f: UsageFilter, columns: list[str]
) -> list[dict[str, Any]]:
    """Summed measures per combination of ``columns`` (keys of COLUMNS), as ``k0, k1...``."""
    query = DailyQuery(backend)
    select = "".join(f"{COLUMNS[c]} AS k{i}, " for i, c in enumerate(columns))
    sums = ", ".join(f"COALESCE(SUM(d.{m}), 0) AS {m}" for m in MEASURES)
    group = f" GROUP BY {', '.join(COLUMNS[c] for c in columns)}" if columns else ""
    where = query.where(f, by_tag="tag" in columns)
    rows = await conn.execute_query_dict(f"SELECT {select}{sums} FROM usage_daily d {where}{group}", query.params)
    return [row for row in rows if int(row["requests"] or 0)]
