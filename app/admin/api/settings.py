"""The settings part of the admin API (docs/admin-api/settings.md): run-time settings,
retention, pricing sync and the admin password."""

from __future__ import annotations

import falcon
import falcon.asgi

from app.admin.api.ollama import body_of
from app.admin.context import AdminContext, Resource
from app.admin.pages import settings_ops as ops
from app.admin.pages.login import api_session
from app.admin.render import json


class Settings(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await ops.current(self.ctx))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await ops.update(self.ctx, await body_of(req)))


class Retention(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await ops.run_retention(self.ctx))


class PricingSync(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, await ops.sync_status(self.ctx))

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        job = ops.start_sync(self.ctx, (await body_of(req)).get("url"))
        json(resp, job.view(), 202)


class Password(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await body_of(req)
        await ops.change_password(
            self.ctx, req.remote_addr or "", body.get("current"), body.get("new"), body.get("confirm")
        )
        json(resp, {"ok": True, **api_session(self.ctx, req, resp)})  # this client stays logged in


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/api/settings", Settings(ctx), None),
        ("/api/settings/retention/run", Retention(ctx), None),
        ("/api/pricing/sync", PricingSync(ctx), None),
        ("/api/password", Password(ctx), None),
    ]
