"""The Providers & models pages: every configured provider with its status and a connection
test, the model catalog (searched as you type, 50 a page), a model's overrides
(providers_model_page) and custom providers (providers_custom_page). The JSON API
(app/admin/api/providers.py) calls the same functions."""

from __future__ import annotations

import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.pages.providers_catalog import catalog_providers, search
from app.admin.pages.providers_custom_page import CustomAdd, CustomDelete, CustomEdit, render_providers
from app.admin.pages.providers_model_page import ModelPage
from app.admin.pages.providers_status import test_connection
from app.admin.render import render

RESULTS = "catalog-results"  # the element the catalog's search and pager replace


class ProvidersPage(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await render_providers(self.ctx, req, resp)


class TestButton(Resource):
    """htmx: the result of a connection test, swapped in next to the button."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        result = await test_connection(self.ctx, name)
        await render(self.ctx, req, resp, "providers_test.html", result=result)


class CatalogPage(Resource):
    """The whole page, or (for the search box and the pager) just the results."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        data = search(
            self.ctx,
            q=(req.get_param("q") or "").strip(),
            provider=(req.get_param("provider") or "").strip(),
            page=req.get_param("page") or 1,
        )
        partial = req.get_header("HX-Target") == RESULTS and not req.get_header("HX-History-Restore-Request")
        template = "providers_catalog_rows.html" if partial else "providers_catalog.html"
        await render(
            self.ctx, req, resp, template, title="Model catalog", data=data, providers=catalog_providers(self.ctx)
        )


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/providers", ProvidersPage(ctx), None),
        ("/providers/test/{name}", TestButton(ctx), None),
        ("/providers/catalog", CatalogPage(ctx), None),
        ("/providers/models/{provider}/{model:path}", ModelPage(ctx), None),
        ("/providers/custom", CustomAdd(ctx), None),
        ("/providers/custom/{name}", CustomEdit(ctx), None),
        ("/providers/custom/{name}/delete", CustomDelete(ctx), None),
    ]
