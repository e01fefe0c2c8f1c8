"""Totals by tag, provider, model, client or day, computed from the usage rows themselves so
they always agree with them. A request counts once in the overall total and once under each
of its tags; aliases never count twice because only requests have rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.stores.queries import UsageFilter
from app.stores.rollup import DAY, SUMS, daily_grouped

GROUPS = {
    "provider": "COALESCE(r.provider, '')",
    "model": "COALESCE(r.resolved_model, '')",
    "client": "r.client",
    "tag": "t.tag",
    "outcome": "r.outcome",
}


@dataclass(frozen=True, slots=True)
class Total:
    key: str
    requests: int
    errors: int
    unpriced: int  # successful requests without a known price
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_nanousd: int


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(sep=" ")


async def totals(
    conn: BaseDBAsyncClient,
    backend: str,
    *,
    by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Total]:
    """Totals grouped ``by`` tag, provider, model, client, outcome or day; one row overall when
    ``by`` is None. Largest cost first."""
    if by == "day":
        key = DAY[backend]
    elif by is None:
        key = "'all'"
    else:
        key = GROUPS[by]
    joins = "JOIN usage_tag t ON t.request_id = r.request_id" if by == "tag" else ""
    where, params = [], []
    for column, op, value in (("created_at", ">=", since), ("created_at", "<", until)):
        if value is not None:
            params.append(value if backend == "postgres" else _utc_text(value))
            placeholder = f"${len(params)}" if backend == "postgres" else "?"
            where.append(f"r.{column} {op} {placeholder}")
    sums = ", ".join(f"COALESCE(SUM(r.{column}), 0) AS {column}" for column in SUMS)
    sql = (
        f"SELECT {key} AS key, COUNT(*) AS requests, "
        "SUM(CASE WHEN r.outcome = 'ok' THEN 0 ELSE 1 END) AS errors, "
        "SUM(CASE WHEN r.outcome = 'ok' AND r.cost_nanousd IS NULL THEN 1 ELSE 0 END) AS unpriced, "
        f"{sums} FROM usage_record r {joins} "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + (f"GROUP BY {key} ORDER BY cost_nanousd DESC, key" if by else "")
    )
    rows = await conn.execute_query_dict(sql, params)
    found = {str(row["key"]): _total(row) for row in rows if row["requests"]}
    # Days the retention job folded into daily totals.
    for row in await daily_grouped(conn, backend, UsageFilter(since, until), [by] if by else []):
        key = str(row["k0"]) if by else "all"
        found[key] = _add(found.get(key), row)
    return sorted(found.values(), key=lambda t: (-t.cost_nanousd, t.key))


def _add(total: Total | None, daily: dict[str, Any]) -> Total:
    base = total or Total(key="", requests=0, errors=0, unpriced=0, **dict.fromkeys(SUMS, 0))
    requests = int(daily["requests"])
    return Total(
        key=str(daily["k0"]) if "k0" in daily else "all",
        requests=base.requests + requests,
        errors=base.errors + requests - int(daily["ok"]),
        unpriced=base.unpriced + int(daily["unpriced"]),
        **{column: getattr(base, column) + int(daily[column]) for column in SUMS},
    )


def _total(row: dict[str, Any]) -> Total:
    return Total(
        key=str(row["key"]),
        requests=int(row["requests"]),
        errors=int(row["errors"] or 0),
        unpriced=int(row["unpriced"] or 0),
        **{column: int(row[column]) for column in SUMS},
    )
