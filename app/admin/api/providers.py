"""The JSON API for providers, the catalog, model overrides and custom providers
(docs/admin-api/providers.md). The pages call the same functions."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.pages import providers_custom as custom
from app.admin.pages.providers_catalog import search
from app.admin.pages.providers_common import Invalid, read_json
from app.admin.pages.providers_overrides import PARTS, apply_changes, canonical, override_view, parse_changes
from app.admin.pages.providers_status import provider_views, test_connection
from app.admin.render import json

SUFFIX = "/override"


async def respond(resp: falcon.asgi.Response, work: Awaitable[Any], status: int = 200) -> None:
    """Answer with what ``work`` returns, or with the input errors it found."""
    try:
        payload = await work
    except Invalid as exc:
        json(resp, exc.payload(), exc.status)
        return
    json(resp, payload, status)


class Providers(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, {"providers": await provider_views(self.ctx)})


class ProviderTest(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        json(resp, await test_connection(self.ctx, name))


class Catalog(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(
            resp,
            search(
                self.ctx,
                q=(req.get_param("q") or "").strip(),
                provider=(req.get_param("provider") or "").strip(),
                page=req.get_param("page") or 1,
                per_page=req.get_param("per_page") or 50,
            ),
        )


class ModelOverride(Resource):
    """/api/models/{provider}/{model}/override; model ids may hold '/', so the route takes the
    rest of the path and the responder takes ``/override`` off its end."""

    def _model(self, provider: str, rest: str) -> str:
        if not rest.endswith(SUFFIX) or rest == SUFFIX:
            raise falcon.HTTPNotFound(title="expected /api/models/{provider}/{model}/override")
        return canonical(self.ctx, provider, rest.removesuffix(SUFFIX))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, provider: str, rest: str) -> None:
        json(resp, await override_view(self.ctx, provider, self._model(provider, rest)))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, provider: str, rest: str) -> None:
        model = self._model(provider, rest)
        body = await read_json(req)

        async def work() -> dict[str, Any]:
            await apply_changes(self.ctx, provider, model, parse_changes(body, provider, model))
            return await override_view(self.ctx, provider, model)

        await respond(resp, work())

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, provider: str, rest: str) -> None:
        model = self._model(provider, rest)
        await apply_changes(self.ctx, provider, model, dict.fromkeys(PARTS))
        json(resp, await override_view(self.ctx, provider, model))


class CustomProviders(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, {"providers": await custom.custom_views(self.ctx)})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await respond(resp, custom.create(self.ctx, await read_json(req)), 201)


class CustomProvider(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        json(resp, await custom.custom_view(self.ctx, name))

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await respond(resp, custom.update(self.ctx, name, await read_json(req)))

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def work() -> dict[str, Any]:
            await custom.delete(self.ctx, name)
            return {"deleted": name}

        await respond(resp, work())


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/api/providers", Providers(ctx), None),
        ("/api/providers/{name}/test", ProviderTest(ctx), None),
        ("/api/catalog", Catalog(ctx), None),
        ("/api/models/{provider}/{rest:path}", ModelOverride(ctx), None),
        ("/api/custom-providers", CustomProviders(ctx), None),
        ("/api/custom-providers/{name}", CustomProvider(ctx), None),
    ]
