"""The routes part of the admin API (docs/admin-api/routes.md)."""

from __future__ import annotations

import falcon.asgi

from app.admin.api.ollama import body_of
from app.admin.context import AdminContext, Resource
from app.admin.pages import routes_ops as ops
from app.admin.render import json


class Routes(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, {"routes": await ops.list_routes(self.ctx)})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await body_of(req)
        view, _ = await ops.save_route(self.ctx, body.get("name"), body, create=True)
        json(resp, view, 201)


class OneRoute(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        json(resp, await ops.get_route(self.ctx, name))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        view, created = await ops.save_route(self.ctx, name, await body_of(req), create=False)
        json(resp, view, 201 if created else 200)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await ops.delete_route(self.ctx, name)
        json(resp, {"deleted": name.strip()})


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/api/routes", Routes(ctx), None),
        ("/api/routes/{name:path}", OneRoute(ctx), None),  # a route's name may hold a '/'
    ]
