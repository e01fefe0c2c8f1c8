"""The Ollama part of the admin API (docs/admin-api/ollama.md): instances, their models, pulls
and model deletion."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.pages import ollama_ops as ops
from app.admin.pages import ollama_pulls as pulls
from app.admin.render import json


async def body_of(req: falcon.asgi.Request) -> dict[str, Any]:
    media = await req.get_media(default_when_empty={})
    if not isinstance(media, dict):
        raise falcon.HTTPBadRequest(title="the body must be a JSON object")
    return media


class Instances(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, {"instances": await ops.list_instances(self.ctx)})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await body_of(req)
        json(resp, await ops.add_instance(self.ctx, body.get("name"), body.get("base_url") or body.get("url")), 201)


class Instance(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        json(resp, ops.get_instance(self.ctx, name))

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await ops.remove_instance(self.ctx, name)
        json(resp, {"removed": name})


class Models(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        ops.instance(self.ctx, name)
        if req.get_param_as_bool("refresh"):
            await ops.refresh(self.ctx, name)
        json(resp, {"instance": name, "models": ops.models_of(self.ctx, name)})


class Pull(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        job = pulls.start_pull(self.ctx, name, (await body_of(req)).get("model"))
        resp.set_header("Location", f"/api/ollama/pulls/{job.id}")
        json(resp, job.view(), 202)


class PullStatus(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, pull_id: str) -> None:
        json(resp, pulls.get_pull(self.ctx, pull_id).view())


class DeleteModel(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        model = await ops.delete_model(self.ctx, name, (await body_of(req)).get("model"))
        json(resp, {"instance": name, "deleted": model})


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/api/ollama/instances", Instances(ctx), None),
        ("/api/ollama/instances/{name}", Instance(ctx), None),
        ("/api/ollama/instances/{name}/models", Models(ctx), None),
        ("/api/ollama/instances/{name}/pull", Pull(ctx), None),
        ("/api/ollama/instances/{name}/delete-model", DeleteModel(ctx), None),
        ("/api/ollama/pulls/{pull_id}", PullStatus(ctx), None),
    ]
