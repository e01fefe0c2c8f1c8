"""Adapter dispatch: the terminal stage, which hands the request to the provider's adapter."""

from __future__ import annotations

from typing import ClassVar

from app.adapters import Call
from app.errors import ModelNotFound
from app.internal import Reply
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.retries import Timeouts, paced, timeouts_by_provider, with_retries, within
from app.upstreams import Upstreams


class DispatchStage:
    name: ClassVar[str] = "dispatch"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream
    terminal: ClassVar[bool] = True

    def __init__(self, ctx: StageContext) -> None:
        services = ctx.services
        self.upstreams: Upstreams = services.upstreams
        settings = services.settings
        self.retries = settings.upstream_retries
        self.budget = settings.upstream_retry_budget
        self.default = Timeouts(0.0, settings.upstream_total_timeout)  # reads: the client's own timeout
        self.timeouts = timeouts_by_provider(settings)

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        if ex.target is None:
            raise ModelNotFound("no model was resolved for this request", param="model")
        adapter = self.upstreams.adapter(ex.target.provider.name)
        if ex.untranslatable is not None and not (ex.passthrough and adapter.speaks(ex.dialect)):
            raise ex.untranslatable
        call = Call(
            model=ex.target.model,
            kind=ex.kind,
            body=ex.body,
            stream=ex.stream,
            request_id=ex.request_id,
            native=ex.native,
            native_endpoint=ex.endpoint if ex.dialect != "openai" else None,
            dialect=ex.dialect,
            headers=ex.headers,
            catalog=ex.target.catalog_entry,
            passthrough=ex.passthrough,
        )
        name = ex.target.provider.name
        limits = self.timeouts.get(name, self.default)
        retries = 0 if "routed" in ex.state else self.retries  # a route moves on to its next deployment instead
        reply = await with_retries(
            lambda: within(adapter.send(call), limits.total, name), retries=retries, budget=self.budget, name=name
        )
        if reply.stream is not None and limits.read > 0:
            reply.stream = paced(reply.stream, limits.read, name)
        return reply
