"""Pages for custom providers: the add form on /providers, a provider's own page (its status,
what discovery found, the edit form) and removal. Plain forms, so they work without scripts;
a mistake re-renders the form with the message next to the field."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.pages.providers_common import Invalid, custom_path, model_path
from app.admin.pages.providers_custom import FIELDS, create, custom_view, custom_views, delete, update
from app.admin.pages.providers_status import provider_views
from app.admin.render import read_form, render

DONE = {
    "added": "Custom provider added and made live.",
    "saved": "Custom provider saved and made live.",
    "removed": "Custom provider removed; requests for its models now get a 404.",
}


def _form(view: dict[str, Any]) -> dict[str, str]:
    """A provider's record as the form shows it (models one per line)."""
    values = {name: "" if view.get(name) is None else str(view[name]) for name in FIELDS}
    values["models"] = "\n".join(view.get("models") or ())
    values["base_url_hidden"] = "yes" if view.get("base_url_hidden") else ""
    return values


def _submitted(form: dict[str, str]) -> dict[str, str]:
    return {name: form.get(name, "") for name in FIELDS}


async def render_providers(
    ctx: AdminContext,
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> None:
    await render(
        ctx,
        req,
        resp,
        "providers.html",
        title="Providers",
        providers=await provider_views(ctx),
        custom=await custom_views(ctx),
        form=form or {"api": "openai"},
        errors=errors or {},
        done=DONE.get(req.get_param("done") or ""),
    )


class CustomAdd(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise falcon.HTTPSeeOther("/providers#add-custom")

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        form = _submitted(await read_form(req))
        try:
            view = await create(self.ctx, form)
        except Invalid as exc:
            await render_providers(self.ctx, req, resp, form=form, errors=exc.errors)
            resp.status = falcon.code_to_http_status(exc.status)
            return
        raise falcon.HTTPSeeOther(custom_path(view["name"]) + "?done=added")


class CustomEdit(Resource):
    async def _page(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        name: str,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        view = await custom_view(self.ctx, name)
        models = [{"id": m, "url": model_path(name, m)} for m in view["discovered"]]
        await render(
            self.ctx,
            req,
            resp,
            "providers_custom.html",
            title=f"Custom provider {name}",
            view=view,
            models=models,
            form={**_form(view), **(form or {})},
            errors=errors or {},
            action=custom_path(name),
            done=DONE.get(req.get_param("done") or ""),
        )

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await self._page(req, resp, name)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        form = _submitted(await read_form(req))
        form["name"] = name
        try:
            await update(self.ctx, name, form)
        except Invalid as exc:
            await self._page(req, resp, name, form, exc.errors)
            resp.status = falcon.code_to_http_status(exc.status)
            return
        raise falcon.HTTPSeeOther(custom_path(name) + "?done=saved")


class CustomDelete(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        try:
            await delete(self.ctx, name)
        except Invalid as exc:
            raise falcon.HTTPConflict(title=exc.summary) from None
        raise falcon.HTTPSeeOther("/providers?done=removed")
