"""The Routes page: every route, its deployments and their health; add, replace and delete the
admin's own (those of PROVIDERS_FILE are read-only). Each change applies to the next request."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from app.admin.context import AdminContext
from app.admin.pages import routes_ops as ops
from app.admin.pages.settings_common import FormPage
from app.routing import STRATEGIES


class Page(FormPage):
    template = "routes"
    title = "Routes"

    async def values(self) -> dict[str, Any]:
        return {"routes": await ops.list_routes(self.ctx), "strategies": STRATEGIES}

    async def on_post_save(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def save(form: dict[str, str]) -> str:
            view, created = await ops.save_route(
                self.ctx, form.get("name"), ops.spec_from_form(form), create=form.get("mode") != "edit"
            )
            served = ", ".join(d["model"] for d in view["deployments"])
            return f"Route {view['name']} {'added' if created else 'saved'}: {served}."

        await self.act(req, resp, save)

    async def on_post_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def delete(form: dict[str, str]) -> str:
            # The name comes in the form, not the path: a route's name may hold '/', '%' or '?',
            # which a path would split or decode into another route's name.
            name = form.get("name", "")
            await ops.delete_route(self.ctx, name)
            return f"Deleted route {name}."

        await self.act(req, resp, delete)


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    page = Page(ctx)
    return [("/routes", page, None), ("/routes/save", page, "save"), ("/routes/delete", page, "delete")]
