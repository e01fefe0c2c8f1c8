"""Stage classes for the loader's tests, loaded by dotted path (``tests.stage_samples:Name``)."""

from __future__ import annotations

from typing import Any, ClassVar

from app.pipeline import Exchange, Next, Reply, StageContext


class Marker:
    """A well-formed stage that notes it ran, with one typed option."""

    name: ClassVar[str] = "marker"
    passthrough_safe: ClassVar[bool] = True

    def __init__(self, ctx: StageContext) -> None:
        self.label = ctx.option("label", "marked")

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        ex.state.setdefault("marks", []).append(self.label)
        return await call_next(ex)


class NoContext:
    name: ClassVar[str] = "no_context"

    def __init__(self) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        return await call_next(ex)


class NotCallable:
    name: ClassVar[str] = "not_callable"

    def __init__(self, ctx: StageContext) -> None:
        pass


class SyncCall:
    name: ClassVar[str] = "sync_call"

    def __init__(self, ctx: StageContext) -> None:
        pass

    def __call__(self, ex: Exchange, call_next: Next) -> Any:
        return call_next(ex)


class SecondDispatch:
    name: ClassVar[str] = "second_dispatch"
    terminal: ClassVar[bool] = True

    def __init__(self, ctx: StageContext) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        return Reply(body={})


not_a_class = 42


class Stamp:
    """Adds response headers through the reply, one of them clashing with the relay's own."""

    name: ClassVar[str] = "stamp"
    passthrough_safe: ClassVar[bool] = True

    def __init__(self, ctx: StageContext) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        reply = await call_next(ex)
        reply.headers["x-stamp"] = f"seen {ex.requested_model}"
        reply.headers["x-relay-model"] = "not/this"
        return reply
