"""The admin application: its own Falcon app, served on ``ADMIN_PORT`` by the same process
(and the same event loop) as the relay, sharing its services."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, template_environment
from app.admin.middleware import AdminAuth
from app.admin.render import json, render
from app.errors import RelayError

log = logging.getLogger("llm_relay.admin")

# Page and API modules, each with routes(ctx); the order is the order of the navigation.
MODULES = (
    "app.admin.pages.login",
    "app.admin.pages.dashboard",
    "app.admin.pages.providers",
    "app.admin.pages.ollama",
    "app.admin.pages.aliases",
    "app.admin.pages.routes",
    "app.admin.pages.usage",
    "app.admin.pages.pipeline",
    "app.admin.pages.settings_page",
    "app.admin.api.usage",
    "app.admin.api.ollama",
    "app.admin.api.aliases",
    "app.admin.api.routes",
    "app.admin.api.settings",
    "app.admin.api.providers",
)


def create_admin_app(relay: Any) -> falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]:
    """Build the admin app for a relay made by :func:`app.main.create_app`."""
    import importlib

    ctx = AdminContext(relay.services, relay.live, relay.discovery, template_environment())
    ctx.pipeline = relay.pipeline
    relay.on_startup.append(ctx.prepare)
    api = falcon.asgi.App(middleware=[AdminAuth(ctx)])
    api.req_options.strip_url_path_trailing_slash = True
    api.req_options.auto_parse_form_urlencoded = False

    async def http_error(
        req: falcon.asgi.Request, resp: falcon.asgi.Response, error: falcon.HTTPError, params: Any
    ) -> None:
        resp.status = error.status
        for name, value in (error.headers or {}).items() if isinstance(error.headers, dict) else ():
            resp.set_header(name, value)
        message = {"error": error.title, "detail": error.description}
        if req.path.startswith("/api/") or req.get_header("HX-Request"):
            json(resp, message, error.status_code)
        else:
            await render(ctx, req, resp, "error.html", error=message)
            resp.status = error.status

    async def relay_error(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: RelayError, params: Any) -> None:
        await http_error(
            req, resp, falcon.HTTPError(falcon.code_to_http_status(error.status), title=error.message), params
        )

    async def unexpected(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any) -> None:
        log.exception("admin error on %s %s", req.method, req.path)
        await http_error(req, resp, falcon.HTTPInternalServerError(title="internal error; see the log"), params)

    api.add_error_handler(Exception, unexpected)
    api.add_error_handler(RelayError, relay_error)
    api.add_error_handler(falcon.HTTPError, http_error)
    for name in MODULES:
        for path, resource, suffix in importlib.import_module(name).routes(ctx):
            api.add_route(path, resource, suffix=suffix) if suffix else api.add_route(path, resource)
    api.add_static_route("/static", str(resources.files("web").joinpath("static")))
    relay.admin = ctx  # tests and the CLI reach the admin context through the relay
    return api
