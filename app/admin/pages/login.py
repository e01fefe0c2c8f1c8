"""Log in and out, in the browser (a form) and for API clients (JSON)."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.auth import safe_next
from app.admin.context import AdminContext, Resource
from app.admin.middleware import COOKIE
from app.admin.render import json, render


def _client(req: falcon.asgi.Request) -> str:
    return req.remote_addr or ""


def set_session(ctx: AdminContext, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> str:
    assert ctx.sessions is not None
    cookie = ctx.sessions.issue()
    resp.set_cookie(
        COOKIE,
        cookie,
        max_age=int(ctx.sessions.lifetime),
        path="/",
        secure=req.scheme == "https",
        http_only=True,
        same_site="Strict",
    )
    return cookie


def api_session(ctx: AdminContext, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> dict[str, Any]:
    """Give an API client a new session: the cookie, and what it needs to use it."""
    cookie = set_session(ctx, req, resp)
    assert ctx.sessions is not None
    session = ctx.sessions.check(cookie)
    assert session is not None
    return {"csrf_token": ctx.sessions.csrf_token(session), "expires": session.expires}


class Login(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await render(self.ctx, req, resp, "login.html", next=safe_next(req.get_param("next")), error=None)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        form = await req.get_media()
        form = form if isinstance(form, dict) else {}
        target = safe_next(form.get("next"))
        error = await attempt(self.ctx, req, str(form.get("password") or ""))
        if error is not None:
            # The form page itself is fine (200); only throttling keeps its status.
            resp.status = 429 if error[0] == 429 else 200
            if error[0] == 429:
                resp.set_header("Retry-After", str(error[2]))
            await render(self.ctx, req, resp, "login.html", next=target, error=error[1])
            return
        set_session(self.ctx, req, resp)
        raise falcon.HTTPSeeOther(target)


async def attempt(ctx: AdminContext, req: falcon.asgi.Request, password: str) -> tuple[int, str, int] | None:
    """None when the password is right; else (status, message, retry-after seconds)."""
    client = _client(req)
    wait = ctx.throttle.retry_after(client)
    if wait:
        return 429, f"Too many failed attempts. Try again in {wait} seconds.", wait
    if not password or not await ctx.check_password(password):
        ctx.throttle.failed(client)
        return 401, "Wrong password.", 0
    ctx.throttle.succeeded(client)
    return None


class Logout:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.unset_cookie(COOKIE, path="/")
        raise falcon.HTTPSeeOther("/login")


class ApiLogin(Resource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await req.get_media()
        password = body.get("password") if isinstance(body, dict) else None
        error = await attempt(self.ctx, req, str(password or ""))
        if error is not None:
            if error[0] == 429:
                resp.set_header("Retry-After", str(error[2]))
            json(resp, {"error": error[1]}, error[0])
            return
        json(resp, api_session(self.ctx, req, resp))


class ApiLogout:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.unset_cookie(COOKIE, path="/")
        json(resp, {"ok": True})


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [
        ("/login", Login(ctx), None),
        ("/logout", Logout(), None),
        ("/api/login", ApiLogin(ctx), None),
        ("/api/logout", ApiLogout(), None),
    ]
