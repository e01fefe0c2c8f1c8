"""Every admin request passes here: a valid session, and for anything that changes state a
same-origin request carrying the session's CSRF token (htmx sends it as a header, forms as a
field). Static files and the login form are the only public paths."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import falcon
import falcon.asgi

from app.admin.context import AdminContext

COOKIE = "relay_admin"
PUBLIC = frozenset({"/login", "/api/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def same_origin(req: falcon.asgi.Request) -> bool:
    """A browser names where a request comes from; it must be this very site."""
    source = req.get_header("Origin") or req.get_header("Referer")
    if not source:
        return True  # not a browser (curl, the API): the CSRF token still has to match
    if source == "null":
        return False
    return urlsplit(source).netloc.lower() == (req.get_header("Host") or "").lower()


class AdminAuth:
    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        req.context.session = None
        if req.path.startswith("/static/"):
            return
        sessions = self.ctx.sessions
        if sessions is None:
            raise falcon.HTTPServiceUnavailable(title="starting", description="the admin UI is starting up")
        session = sessions.check(req.cookies.get(COOKIE))
        req.context.session = session
        unsafe = req.method not in SAFE_METHODS
        if unsafe and not same_origin(req):
            raise falcon.HTTPForbidden(title="cross-site request refused")
        if req.path in PUBLIC:
            return
        if session is None:
            if req.path.startswith("/api/"):
                raise falcon.HTTPUnauthorized(title="log in first", description="POST /api/login")
            target = "/login?next=" + quote(req.relative_uri, safe="")
            if req.get_header("HX-Request"):
                resp.set_header("HX-Redirect", target)
                raise falcon.HTTPUnauthorized(title="session expired")
            raise falcon.HTTPSeeOther(target)
        if unsafe:
            token = req.get_header("X-CSRF-Token")
            if token is None and (req.content_type or "").startswith("application/x-www-form-urlencoded"):
                form = await req.get_media()
                token = form.get("csrf_token") if isinstance(form, dict) else None
            if not sessions.check_csrf(session, token):
                raise falcon.HTTPForbidden(title="missing or wrong CSRF token")
