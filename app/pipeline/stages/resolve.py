"""Model resolution: sets ``ex.target`` from the requested model name."""

from __future__ import annotations

from typing import ClassVar

from app.internal import Reply
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.resolver import Resolver


class ResolveStage:
    name: ClassVar[str] = "resolve"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        services = ctx.services
        self.resolver: Resolver = services.resolver

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        ex.target = self.resolver.resolve(ex.body.get("model"))  # type: ignore[arg-type]
        return await call_next(ex)
