"""The Ollama page: instances and their models, adding and removing instances, pulling models
with a live progress bar (the page polls a fragment every 500 ms), deleting models.

Actions answer with the page, or with ``#ollama-body`` to htmx (see settings_common).
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.pages import ollama_ops as ops
from app.admin.pages import ollama_pulls as pulls
from app.admin.pages.settings_common import Caution, FormPage
from app.admin.render import render


class Page(FormPage):
    """The page, its body (which the page re-reads) and its form posts."""

    template = "ollama"
    title = "Ollama"

    async def values(self) -> dict[str, Any]:
        return {"instances": await ops.list_instances(self.ctx), "pulls": pulls.pulls_by_instance(self.ctx)}

    async def on_get_body(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self.show(req, resp, fragment=True)

    async def on_post_add(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def add(form: dict[str, str]) -> str | Caution:
            added = await ops.add_instance(self.ctx, form.get("name"), form.get("base_url"))
            if added["status"] == "ok":
                return f"Added instance {added['name']}: {added['model_count']} models found."
            reason = str(added["error"] or "no answer").removeprefix(f"{added['name']}: ")
            return Caution(
                f"Added instance {added['name']}, but it cannot be reached: {reason}. "
                "Its models appear once it answers (Refresh models)."
            )

        await self.act(req, resp, add)

    async def on_post_remove(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def remove(form: dict[str, str]) -> str:
            await ops.remove_instance(self.ctx, name)
            return f"Removed instance {name}."

        await self.act(req, resp, remove)

    async def on_post_refresh(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def refresh(form: dict[str, str]) -> str:
            view = await ops.refresh(self.ctx, name)
            if view["status"] != "ok":
                return f"{name}: the model list could not be read ({view['error']})."
            return f"{name}: {view['model_count']} models."

        await self.act(req, resp, refresh)

    async def on_post_pull(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def pull(form: dict[str, str]) -> str:
            job = pulls.start_pull(self.ctx, name, form.get("model"))
            return f"Pulling {job.model} on {name}."

        await self.act(req, resp, pull)

    async def on_post_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        async def delete(form: dict[str, str]) -> str:
            model = await ops.delete_model(self.ctx, name, form.get("model"))
            return f"Deleted {model} from {name}."

        await self.act(req, resp, delete)


class PullFragment(Resource):
    """A pull's progress bar; while the pull runs the fragment asks for itself again."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, pull_id: str) -> None:
        job = pulls.get_pull(self.ctx, pull_id)
        values: dict[str, Any] = {"job": job.view()}
        await render(self.ctx, req, resp, "ollama_pull.html", **values)
        if job.done:
            resp.set_header("HX-Trigger", "ollama-changed")  # the page re-reads the model lists


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    page = Page(ctx)
    return [
        ("/ollama", page, None),
        ("/ollama/body", page, "body"),
        ("/ollama/instances", page, "add"),
        ("/ollama/instances/{name}/remove", page, "remove"),
        ("/ollama/instances/{name}/refresh", page, "refresh"),
        ("/ollama/instances/{name}/pull", page, "pull"),
        ("/ollama/instances/{name}/delete-model", page, "delete"),
        ("/ollama/pulls/{pull_id}", PullFragment(ctx), None),
    ]
