"""Totals by tag, provider, model, client or day, computed from the usage rows themselves so
they always agree with them. A request counts once in the overall total and once under each
of its tags; aliases never count twice because only requests have rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.pricing import summed_cost
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
    unpriced_requests: int  # requests without a cost (failed ones too): what cost_nanousd leaves out
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_nanousd: int | None  # None when not one request had a price: unpriced, never $0


COUNTS = ("requests", "errors", "unpriced", "priced")


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
        f"COUNT(r.cost_nanousd) AS priced, {sums} FROM usage_record r {joins} "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + (f"GROUP BY {key}" if by else "")
    )
    found: dict[str, dict[str, int]] = {}
    for row in await conn.execute_query_dict(sql, params):
        if row["requests"]:
            _add(found, str(row["key"]), row)
    # Days the retention job folded into daily totals.
    for row in await daily_grouped(conn, backend, UsageFilter(since, until), [by] if by else []):
        daily = {**row, "errors": int(row["requests"]) - int(row["ok"])}
        _add(found, str(row["k0"]) if by else "all", daily)
    made = [_total(key, sums_of) for key, sums_of in found.items()]
    return sorted(made, key=lambda t: (-(t.cost_nanousd or 0), t.key))


def _add(found: dict[str, dict[str, int]], key: str, row: dict[str, Any]) -> None:
    into = found.setdefault(key, dict.fromkeys((*COUNTS, *SUMS), 0))
    for name in into:
        into[name] += int(row[name] or 0)


def _total(key: str, sums: dict[str, int]) -> Total:
    return Total(
        key=key,
        requests=sums["requests"],
        errors=sums["errors"],
        unpriced=sums["unpriced"],
        unpriced_requests=sums["requests"] - sums["priced"],
        **{column: sums[column] for column in SUMS if column != "cost_nanousd"},
        cost_nanousd=summed_cost(sums["requests"], sums["priced"], sums["cost_nanousd"]),
    )
