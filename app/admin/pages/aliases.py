"""The Aliases page: every alias the relay knows and what it resolves to now; create, edit and
delete the admin's own; set the default model. Each change applies to the next request."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from app.admin.context import AdminContext
from app.admin.pages import aliases_ops as ops
from app.admin.pages.settings_common import FormPage


class Page(FormPage):
    template = "aliases"
    title = "Aliases"

    async def values(self) -> dict[str, Any]:
        return {"aliases": await ops.list_aliases(self.ctx), "default": await ops.get_default(self.ctx)}

    async def on_post_create(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def create(form: dict[str, str]) -> str:
            alias = await ops.create_alias(self.ctx, form.get("name"), form.get("target"))
            return f"Alias {alias['name']} now means {alias['resolves_to']}."

        await self.act(req, resp, create)

    async def on_post_edit(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def edit(form: dict[str, str]) -> str:
            alias, _ = await ops.update_alias(self.ctx, name, form.get("target"))
            return f"Alias {alias['name']} now means {alias['resolves_to']}."

        await self.act(req, resp, edit)

    async def on_post_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def delete(form: dict[str, str]) -> str:
            await ops.delete_alias(self.ctx, name)
            return f"Deleted alias {name}."

        await self.act(req, resp, delete)

    async def on_post_default(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def set_default(form: dict[str, str]) -> str:
            return describe_default(await ops.set_default(self.ctx, default_from_form(form)))

        await self.act(req, resp, set_default)


def default_from_form(form: dict[str, str]) -> str | None:
    """The default-model form: Save (the field), Clear ("", no default) or Reset (None: the
    environment's DEFAULT_MODEL)."""
    action = form.get("action", "save")
    if action == "clear":
        return ""
    if action == "reset":
        return None
    return form.get("model", "")


def describe_default(view: dict[str, object]) -> str:
    if not view["model"]:
        return "No default model: a request for an unknown model gets a 404."
    return f"Default model: {view['model']} (now {view['resolves_to']})."


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    page = Page(ctx)
    return [
        ("/aliases", page, None),
        ("/aliases/new", page, "create"),
        ("/aliases/default", page, "default"),
        ("/aliases/{name}/edit", page, "edit"),
        ("/aliases/{name}/delete", page, "delete"),
    ]
