"""Month-to-date spend per tag, summed from the usage rows (what the spend_limit stage and the
admin UI compare with budgets)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app.stores.queries import UsageFilter
from app.stores.rollup import daily_grouped
from app.stores.totals import _utc_text


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s month, in UTC: budgets are calendar months in UTC."""
    moment = now.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def spend_by_tag(
    conn: BaseDBAsyncClient, backend: str, since: datetime, tags: Collection[str] | None = None
) -> dict[str, int]:
    """Nano-dollars charged per tag since ``since``; only ``tags`` when given (None: every tag).
    A request counts in full under each of its tags."""
    postgres = backend == "postgres"
    params: list[object] = [since if postgres else _utc_text(since)]
    where = "r.created_at >= " + ("$1" if postgres else "?")
    if tags is not None:
        if not tags:
            return {}
        names = sorted(tags)
        marks = ", ".join(f"${i}" if postgres else "?" for i in range(2, len(names) + 2))
        where += f" AND t.tag IN ({marks})"
        params.extend(names)
    sql = (
        "SELECT t.tag AS tag, COALESCE(SUM(r.cost_nanousd), 0) AS spent "
        "FROM usage_tag t JOIN usage_record r ON r.request_id = t.request_id "
        f"WHERE {where} GROUP BY t.tag"
    )
    rows = await conn.execute_query_dict(sql, params)
    spent = {str(row["tag"]): int(row["spent"]) for row in rows}
    # Days of the month the retention job already folded into daily totals.
    for row in await daily_grouped(conn, backend, UsageFilter(since=since), ["tag"]):
        tag = str(row["k0"])
        if tags is None or tag in tags:
            spent[tag] = spent.get(tag, 0) + int(row["cost_nanousd"])
    return spent
