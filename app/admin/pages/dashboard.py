"""The Dashboard (GET /) and its JSON twin (GET /api/dashboard): what is configured, and what
today (UTC) has cost so far, overall and for the top providers, models, clients and tags."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import falcon.asgi

from app.admin.api.usage_queries import Query, Reader, summary
from app.admin.context import AdminContext, Resource
from app.admin.pages.usage import HELPERS
from app.admin.render import NAV, json, render
from app.listing import visible
from app.pricing import dollars
from app.stores.queries import UsageFilter
from app.stores.totals import Total, totals

TOP = 5
GROUPS = ("provider", "model", "client", "tag")


def servable_models(ctx: AdminContext) -> list[str]:
    """Models the relay lists to clients, less those an admin switched off."""
    disabled = ctx.services.resolver.disabled
    return [e.label for e in visible(ctx.services) if (e.provider, e.id.lower()) not in disabled]


def _top(total: Total) -> dict[str, Any]:
    row = asdict(total)
    row["cost_usd"] = None if total.cost_nanousd is None else dollars(total.cost_nanousd)
    return row


async def dashboard(ctx: AdminContext) -> dict[str, Any]:
    """The dashboard's figures (run it with :meth:`AdminContext.in_db`)."""
    db = ctx.services.database
    start = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    end = start + timedelta(days=1)
    today = await summary(Reader.of(db), Query(UsageFilter(since=start, until=end), start, end))
    top = {}
    for by in GROUPS:
        found = await totals(db.connection, db.backend, by=by, since=start, until=end)
        top[by] = [_top(t) for t in found[:TOP]]
    return {
        "day": start.date().isoformat(),
        "providers": sorted(ctx.services.upstreams.providers),
        "provider_count": len(ctx.services.upstreams.providers),
        "model_count": len(servable_models(ctx)),
        "today": today,
        "top": top,
    }


class Page(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        figures = await self.ctx.in_db(lambda: dashboard(self.ctx))
        day = figures["day"]

        def drill(by: str, key: str) -> str:
            """The Usage page for today, narrowed to one provider, model, client or tag."""
            return "/usage?" + urlencode({"from": day, "to": day, by: key})

        values = {"d": figures, "drill": drill, "pages": NAV[1:]}
        await render(self.ctx, req, resp, "dashboard.html", title="Dashboard", **values, **HELPERS)


class Api(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await self.ctx.in_db(lambda: dashboard(self.ctx)))


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [("/", Page(ctx), None), ("/api/dashboard", Api(ctx), None)]
