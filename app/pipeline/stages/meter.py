"""Stream metering: takes the provider's usage reports out of the reply and into ``ex.usage``,
and notes the time of the first token."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import ClassVar

from app.internal import Frames, Reply, StreamItem, Usage, carries_token
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next


class MeterStage:
    name: ClassVar[str] = "meter"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        reply = await call_next(ex)
        if reply.stream is None:
            ex.mark_first_token()
            if reply.usage is not None:
                ex.usage.merge(reply.usage)
            return reply
        reply.stream = self._meter(ex, reply.stream)
        return reply

    async def _meter(self, ex: Exchange, source: AsyncGenerator[StreamItem, None]) -> AsyncGenerator[StreamItem, None]:
        try:
            async for item in source:
                if isinstance(item, Frames):
                    if item.tokens:
                        ex.pieces += item.tokens
                        if ex.first_token_at is None:
                            ex.mark_first_token()
                    yield item
                    continue
                if isinstance(item, Usage):
                    ex.usage.merge(item)
                    continue
                if carries_token(item):
                    ex.pieces += 1
                    if ex.first_token_at is None:
                        ex.mark_first_token()
                yield item
        finally:
            await source.aclose()
