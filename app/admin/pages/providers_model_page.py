"""A model's page: what the catalog says and what applies, and three forms for its overrides
(prices, switches, a quirk rule), each saved or removed on its own. Plain forms: a mistake
re-renders the page with the message beside the field; a change redirects back and says so."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.context import Resource
from app.admin.pages.providers_common import Invalid, model_path
from app.admin.pages.providers_overrides import PARTS, apply_changes, canonical, override_view, parse_changes
from app.admin.pages.providers_validate import PRICE_FIELDS, SWITCH_FIELDS, quirk_as_form, quirk_from_form
from app.admin.render import read_form, render

NAMES = {"price": "Price override", "switches": "Switches", "quirk": "Quirk override"}
DONE = {
    f"{part}-{action}": f"{name} {action}. The next request uses it."
    for part, name in NAMES.items()
    for action in ("saved", "removed")
}


def _word(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def forms_of(view: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The current overrides as the forms show them."""
    price = view["price"] or {}
    switches = view["switches"] or {}
    return {
        "price": {name: "" if price.get(name) is None else str(price[name]) for name in PRICE_FIELDS},
        "switches": {
            "enabled": "no" if switches.get("enabled") is False else "yes",
            **{name: _word(switches.get(name)) for name in SWITCH_FIELDS[1:]},
        },
        "quirk": quirk_as_form(view["quirk"]),
    }


def raw_of(part: str, form: dict[str, str]) -> dict[str, Any]:
    if part == "price":
        return {name: form.get(name, "") for name in PRICE_FIELDS}
    if part == "switches":
        return {name: form.get(name, "") for name in SWITCH_FIELDS}
    return quirk_from_form(form)


class ModelPage(Resource):
    async def _page(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        provider: str,
        model: str,
        failed: tuple[str, dict[str, str], dict[str, str]] | None = None,
    ) -> None:
        view = await override_view(self.ctx, provider, model)
        forms = forms_of(view)
        errors: dict[str, dict[str, str]] = {part: {} for part in PARTS}
        if failed is not None:
            part, form, part_errors = failed
            forms[part] = {name: form.get(name, "") for name in forms[part]}
            errors[part] = part_errors
        await render(
            self.ctx,
            req,
            resp,
            "providers_model.html",
            title=f"{view['provider']}/{view['model']}",
            view=view,
            forms=forms,
            errors=errors,
            action=model_path(view["provider"], view["model"]),
            done=DONE.get(req.get_param("done") or ""),
        )

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, provider: str, model: str) -> None:
        await self._page(req, resp, provider, model)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, provider: str, model: str) -> None:
        form = await read_form(req)
        part, remove = form.get("part", ""), form.get("action") == "remove"
        if part not in PARTS:
            raise falcon.HTTPBadRequest(title=f"part must be one of {list(PARTS)}")
        model_id = canonical(self.ctx, provider, model)
        try:
            changes = {part: None} if remove else parse_changes({part: raw_of(part, form)}, provider, model_id)
        except Invalid as exc:
            errors = {("" if k == part else k.removeprefix(f"{part}.")): v for k, v in exc.errors.items()}
            await self._page(req, resp, provider, model_id, (part, form, errors))
            resp.status = falcon.HTTP_400
            return
        await apply_changes(self.ctx, provider, model_id, changes)
        done = f"{part}-{'removed' if remove else 'saved'}"
        raise falcon.HTTPSeeOther(f"{model_path(provider, model_id)}?done={done}#{part}")
