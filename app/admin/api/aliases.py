"""The aliases part of the admin API (docs/admin-api/aliases.md): aliases and the default model."""

from __future__ import annotations

import falcon
import falcon.asgi

from app.admin.api.ollama import body_of
from app.admin.context import AdminContext, Resource
from app.admin.pages import aliases_ops as ops
from app.admin.render import json


class Aliases(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, {"aliases": await ops.list_aliases(self.ctx), "default_model": await ops.get_default(self.ctx)})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await body_of(req)
        json(resp, await ops.create_alias(self.ctx, body.get("name"), body.get("target")), 201)


class Alias(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        json(resp, await ops.get_alias(self.ctx, name))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        view, created = await ops.update_alias(self.ctx, name, (await body_of(req)).get("target"))
        json(resp, view, 201 if created else 200)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await ops.delete_alias(self.ctx, name)
        json(resp, {"deleted": name.strip().lower()})


class DefaultModel(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await ops.get_default(self.ctx))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await body_of(req)
        if "model" not in body:
            raise falcon.HTTPBadRequest(
                title='the body needs "model" (a model, "" for none, null for the environment\'s)'
            )
        json(resp, await ops.set_default(self.ctx, body["model"]))


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/api/aliases", Aliases(ctx), None),
        ("/api/aliases/{name}", Alias(ctx), None),
        ("/api/default-model", DefaultModel(ctx), None),
    ]
