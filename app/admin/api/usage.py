"""The usage API (docs/admin-api/usage.md): GET /api/usage/summary, series, breakdown,
requests and export, all taking the same filters. The aggregates are in usage_queries; the
request log and the export are here. The Usage and Dashboard pages call the same functions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import falcon
import falcon.asgi

from app.admin.api.usage_queries import (
    MAX_PER_PAGE,
    PER_PAGE,
    Query,
    Reader,
    Sql,
    breakdown,
    count,
    measured,
    parse_query,
    series,
    summary,
)
from app.admin.context import AdminContext
from app.admin.render import json
from app.pricing import dollars
from app.stores.queries import EXPORT_FIELDS, UsageFilter, export_bytes, take, usage_rows, with_details
from app.stores.usage_models import UsageRecord


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows it: every exported field, and the cost in dollars beside it."""
    out = {name: row[name] for name in EXPORT_FIELDS}
    out["cost_usd"] = dollars(row["cost_nanousd"]) if row["cost_nanousd"] is not None else None
    return out


async def request_log(reader: Reader, q: Query, page: int, per_page: int, total: int | None = None) -> dict[str, Any]:
    """One page of the request log, newest first; ``total`` saves a count the caller has.
    SQL finds the page's ids (with the same filters as the aggregates), the ORM reads them."""
    total = await count(reader, q) if total is None else total
    offset = (page - 1) * per_page
    sql = Sql(reader.backend, tag_in_range=q.tag_in_range(offset + per_page))
    found = await reader.rows(
        f"SELECT r.id FROM usage_record r {sql.where(q.filters)} "
        f"ORDER BY r.created_at DESC, r.id DESC LIMIT {int(per_page)} OFFSET {int(offset)}",
        sql.params,
    )
    ids = [int(row["id"]) for row in found]
    rows = {row["id"]: row for row in await UsageRecord.filter(id__in=ids).values()} if ids else {}
    ordered = await with_details([rows[i] for i in ids if i in rows])
    pages = max(1, -(-total // per_page))
    return {"page": page, "per_page": per_page, "total": total, "pages": pages, "rows": list(map(public_row, ordered))}


def page_numbers(get: Any) -> tuple[int, int]:
    try:
        page = int(get("page") or 1)
        per_page = int(get("per_page") or PER_PAGE)
    except ValueError:
        raise ValueError("page and per_page are whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"page starts at 1; per_page is between 1 and {MAX_PER_PAGE}")
    return page, per_page


async def export(ctx: AdminContext, f: UsageFilter, fmt: str) -> AsyncIterator[bytes]:
    """The filtered rows, oldest first, as CSV or a JSON array, read a thousand at a time."""
    rows = usage_rows(f)

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        while batch := await ctx.in_db(lambda: take(rows, 1000)):
            yield batch

    try:
        async for chunk in export_bytes(batches(), fmt):
            yield chunk
    finally:
        await rows.aclose()


class Endpoint:
    """GET /api/usage/<what>: the filters from the query string, a JSON answer."""

    def __init__(self, ctx: AdminContext, what: str) -> None:
        self.ctx = ctx
        self.what = what

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        try:
            q = parse_query(req.get_param)
            if self.what == "export":
                self._export(req, resp, q)
                return
            answer = await self.ctx.in_db(lambda: self._answer(req, q))
        except ValueError as exc:
            raise falcon.HTTPBadRequest(title="bad filter", description=str(exc)) from None
        json(resp, {"filters": describe(q), **answer})

    async def _answer(self, req: falcon.asgi.Request, q: Query) -> dict[str, Any]:
        reader = Reader.of(self.ctx.services.database)
        if self.what == "requests":
            page, per_page = page_numbers(req.get_param)
            return await request_log(reader, await measured(reader, q), page, per_page)
        if self.what == "breakdown":
            limit = req.get_param_as_int("limit", min_value=1, max_value=1000, default=100)
            return await breakdown(reader, await measured(reader, q), req.get_param("by") or "", limit)
        answer = summary if self.what == "summary" else series
        return await answer(reader, await measured(reader, q))

    def _export(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, q: Query) -> None:
        fmt = req.get_param("format") or "csv"
        if fmt not in ("csv", "json"):
            raise ValueError("format is csv or json")
        name = f"usage-{q.since:%Y%m%dT%H%M}-{q.until:%Y%m%dT%H%M}.{fmt}"
        resp.content_type = "text/csv; charset=utf-8" if fmt == "csv" else falcon.MEDIA_JSON
        resp.set_header("Content-Disposition", f'attachment; filename="{name}"')
        resp.stream = export(self.ctx, q.filters, fmt)


def describe(q: Query) -> dict[str, Any]:
    """The filters in force, defaults included, as an API answer repeats them."""
    f = q.filters
    values = {"from": q.since.isoformat(), "to": q.until.isoformat(), "tag": f.tag, "provider": f.provider}
    return {**values, "model": f.model, "client": f.client, "outcome": f.outcome, "status": f.status}


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        (f"/api/usage/{what}", Endpoint(ctx, what), None)
        for what in ("summary", "series", "breakdown", "requests", "export")
    ]
