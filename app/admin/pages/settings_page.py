"""The Settings page: run-time settings, retention, pricing sync (started in the background;
its fragment polls itself every 500 ms while it runs) and the admin password."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext
from app.admin.pages import settings_ops as ops
from app.admin.pages.login import set_session
from app.admin.pages.settings_common import FormPage, is_htmx, problem
from app.admin.render import read_form, render

CHANGED = "/settings?password=changed"


def runtime_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The settings form's fields (an unticked checkbox is not sent at all)."""
    days = form.get("retention_days", "0").strip() or "0"
    if not days.isdigit():
        raise falcon.HTTPBadRequest(title="the retention must be a whole number of days (0: keep forever)")
    return {
        "default_model": form.get("default_model", "").strip(),
        "usage_tracking": "usage_tracking" in form,
        "resolve_hostnames": "resolve_hostnames" in form,
        "retention_days": int(days),
    }


class Page(FormPage):
    """The page, its form posts, and the pricing sync fragment: its status (polling itself
    while a sync runs) and history."""

    template = "settings"
    title = "Settings"

    async def values(self) -> dict[str, Any]:
        return {"settings": await ops.current(self.ctx), "sync": await ops.sync_status(self.ctx, limit=5)}

    def notice(self, req: falcon.asgi.Request) -> str | None:
        if req.get_param("password") == "changed":
            return "Password changed. Every other session has ended; this one continues."
        return None

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def save(form: dict[str, str]) -> str:
            # Only what the admin changed is stored: the rest keeps following the environment.
            runtime = self.ctx.services.runtime
            changed = {k: v for k, v in runtime_from_form(form).items() if getattr(runtime, k) != v}
            await ops.update(self.ctx, changed)
            return "Settings saved; they apply from the next request." if changed else "Nothing changed."

        await self.act(req, resp, save)

    async def on_post_retention(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def retention(form: dict[str, str]) -> str:
            done = await ops.run_retention(self.ctx)
            if not done["retention_days"]:
                return "Retention is off (0 days): nothing was deleted."
            return f"Deleted {done['deleted']} usage rows older than {done['retention_days']} days."

        await self.act(req, resp, retention)

    async def on_post_password(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        form = await read_form(req)
        try:
            await ops.change_password(
                self.ctx, req.remote_addr or "", form.get("current"), form.get("new"), form.get("confirm", "")
            )
        except falcon.HTTPError as exc:
            await self.show(req, resp, fragment=is_htmx(req), error=problem(exc))
            if not is_htmx(req):
                resp.status = exc.status
            return
        set_session(self.ctx, req, resp)  # this browser stays logged in; every other session ends
        if is_htmx(req):
            resp.set_header("HX-Redirect", CHANGED)  # a full load: the page's CSRF token changed too
            resp.text = ""
            return
        raise falcon.HTTPSeeOther(CHANGED)

    async def _sync_fragment(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **values: Any) -> None:
        values.setdefault("error", None)
        await render(self.ctx, req, resp, "settings_sync.html", sync=await ops.sync_status(self.ctx, limit=5), **values)

    async def on_get_sync(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._sync_fragment(req, resp)

    async def on_post_sync(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        form = await read_form(req)
        error = None
        try:
            ops.start_sync(self.ctx, form.get("url"))
        except falcon.HTTPError as exc:
            error = problem(exc)
        if is_htmx(req):
            await self._sync_fragment(req, resp, error=error)
        elif error:
            await self.show(req, resp, fragment=False, error=error)
            resp.status = falcon.HTTP_400
        else:
            raise falcon.HTTPSeeOther("/settings#pricing")


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    page = Page(ctx)
    return [
        ("/settings", page, None),
        ("/settings/retention", page, "retention"),
        ("/settings/password", page, "password"),
        ("/settings/pricing-sync", page, "sync"),
    ]
