"""Rendering pages (every template gets the CSRF token, the navigation and where it is),
answering with JSON, and reading a posted form."""

from __future__ import annotations

from typing import Any

import falcon.asgi
import orjson

from app.admin.context import AdminContext

NAV = (
    ("/", "Dashboard"),
    ("/providers", "Providers & models"),
    ("/ollama", "Ollama"),
    ("/aliases", "Aliases"),
    ("/routes", "Routes"),
    ("/usage", "Usage"),
    ("/pipeline", "Pipeline"),
    ("/settings", "Settings"),
)


async def render(
    ctx: AdminContext, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str, **values: Any
) -> None:
    session = req.context.session
    csrf = ctx.sessions.csrf_token(session) if (session and ctx.sessions) else ""
    template = ctx.templates.get_template(name)
    resp.content_type = "text/html; charset=utf-8"
    resp.text = await template.render_async(
        csrf_token=csrf,
        hx_headers=orjson.dumps({"X-CSRF-Token": csrf}).decode(),
        nav=NAV,
        path=req.path,
        logged_in=session is not None,
        htmx=req.get_header("HX-Request") == "true",
        **values,
    )


def json(resp: falcon.asgi.Response, payload: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(payload)


async def read_form(req: falcon.asgi.Request) -> dict[str, str]:
    """A form (or JSON) body as strings; a repeated field keeps its last value."""
    media = await req.get_media(default_when_empty={})
    if not isinstance(media, dict):
        return {}
    return {str(k): str(v[-1] if isinstance(v, list) and v else v) for k, v in media.items()}
