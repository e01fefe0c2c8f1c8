"""The Aliases page (placeholder until it lands)."""

from __future__ import annotations

import falcon.asgi

from app.admin.context import AdminContext
from app.admin.render import render


class Page:
    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await render(self.ctx, req, resp, "stub.html", title="Aliases")


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [("/aliases", Page(ctx), None)]
