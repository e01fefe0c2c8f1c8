"""What the Ollama, Aliases and Settings pages share.

Form handling (:class:`FormPage`): every action works as a plain form post (the whole page
comes back) and through htmx (only the page's body fragment comes back, with status 200 so htmx
swaps in an error message too).

Background work: :func:`start_in_db` starts a task that carries the relay's Tortoise context,
entered only around ``create_task`` as :meth:`AdminContext.in_db` does (see there why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import falcon
import falcon.asgi

from app.admin.context import AdminContext, Resource
from app.admin.render import read_form, render


@dataclass(frozen=True)
class Caution:
    """What an action that succeeded with a reservation says: shown as a warning, not a success."""

    text: str


Action = Callable[[dict[str, str]], Awaitable[str | Caution]]


def start_in_db(ctx: AdminContext, job: Callable[[], Awaitable[None]], name: str) -> asyncio.Task[None]:
    """Start a background task that may use the database (the caller keeps the task)."""

    async def run() -> None:
        await job()

    with ctx.services.database.context:
        return asyncio.create_task(run(), name=name)


def iso(timestamp: float | None) -> str | None:
    """A time.time() moment as ISO 8601 UTC, to the second."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def is_htmx(req: falcon.asgi.Request) -> bool:
    return req.get_header("HX-Request") == "true"


def problem(exc: falcon.HTTPError) -> str:
    return f"{exc.title}: {exc.description}" if exc.description else str(exc.title)


class FormPage(Resource):
    """A page (``<template>.html``, its body ``<template>_body.html``) whose form posts answer
    with it and a message."""

    template = ""
    title = ""

    async def values(self) -> dict[str, Any]:
        """What the page shows besides the message, the error and the form."""
        raise NotImplementedError

    def notice(self, req: falcon.asgi.Request) -> str | None:
        """The message when no action gave one (the page arrived by a redirect, say)."""
        return None

    async def show(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        *,
        fragment: bool,
        message: str | None = None,
        warning: str | None = None,
        error: str | None = None,
        form: dict[str, str] | None = None,
    ) -> None:
        await render(
            self.ctx,
            req,
            resp,
            f"{self.template}_body.html" if fragment else f"{self.template}.html",
            title=self.title,
            **await self.values(),
            message=self.notice(req) if message is None and warning is None else message,
            warning=warning,
            error=error,
            form=form or {},
        )

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self.show(req, resp, fragment=False)

    async def act(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, action: Action) -> None:
        """Run an action on the posted form, then show the page with its message or its error
        (the form's values are kept, so a mistake can be corrected)."""
        form = await read_form(req)
        values: dict[str, Any]
        try:
            outcome = await action(form)
            values = {"warning": outcome.text} if isinstance(outcome, Caution) else {"message": outcome}
        except falcon.HTTPError as exc:
            values = {"error": problem(exc), "form": form}
        fragment = is_htmx(req)
        await self.show(req, resp, fragment=fragment, **values)
        if "error" in values and not fragment:
            resp.status = falcon.HTTP_400
