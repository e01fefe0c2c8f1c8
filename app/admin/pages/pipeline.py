"""The Pipeline page and ``GET /api/pipeline`` (docs/admin-api/pipeline.md): the stages every
request passes, in order, where each came from, its options, and what it reports (budgets and
month-to-date spend for spend_limit)."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.render import json, render
from app.pipeline.hookspecs import hook

# Option names whose values are never shown: a custom stage may be given a DSN or a token.
_SECRET = re.compile(r"key|secret|password|token|dsn|credential", re.I)


def _masked(options: Any) -> Any:
    if isinstance(options, dict):
        return {k: ("••••" if _SECRET.search(str(k)) else _masked(v)) for k, v in options.items()}
    if isinstance(options, list):
        return [_masked(v) for v in options]
    return options


def pipeline_view(ctx: AdminContext) -> dict[str, Any]:
    pipeline = ctx.pipeline
    if pipeline is None:
        return {"stages": [], "passthrough": False}
    stages = []
    for position, (stage, info) in enumerate(zip(pipeline.stages, pipeline.info, strict=True), start=1):
        status = hook(stage, "status")
        stages.append(
            {
                "position": position,
                "name": info.name,
                "target": info.target,
                "source": info.source,
                "terminal": bool(hook(stage, "terminal")),
                "passthrough_safe": bool(hook(stage, "passthrough_safe")),
                "options": _masked(dict(info.options)),
                "status": status() if callable(status) else None,
            }
        )
    return {"stages": stages, "passthrough": pipeline.passthrough}


class Page(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await render(self.ctx, req, resp, "pipeline.html", title="Pipeline", view=pipeline_view(self.ctx))


class Api(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json(resp, pipeline_view(self.ctx))


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [("/pipeline", Page(ctx), None), ("/api/pipeline", Api(ctx), None)]
