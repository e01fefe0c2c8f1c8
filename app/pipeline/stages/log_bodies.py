"""Request and reply bodies in the log, for debugging: off unless this stage is listed. The
relay logs no bodies otherwise, since prompts and replies are often personal or secret.

Each request logs one line as it leaves (the request as the stages before this one left it:
list it after ``redact`` to log redacted prompts) and one when its reply is complete (the whole
body, or a stream's text; relayed upstream bytes are logged as they came). Headers are never
logged. Options: ``max_chars`` (default 4000) cuts each body; ``level`` (default "INFO").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import ClassVar

import orjson

from app.internal import Frames, Reply, StreamItem
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next, PipelineError
from app.pipeline.helpers import after_reply, chunk_text, wrap_stream

log = logging.getLogger("llm_relay.bodies")


class LogBodiesStage:
    name: ClassVar[str] = "log_bodies"
    passthrough_safe: ClassVar[bool] = True  # logs relayed bytes as they are

    def __init__(self, ctx: StageContext) -> None:
        self.max_chars = ctx.option("max_chars", 4000)
        level = ctx.option("level", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING"):
            raise PipelineError(f"stage {ctx.name!r}: level is DEBUG, INFO or WARNING, not {level!r}")
        self.level = getattr(logging, level)

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        return f"{text[: self.max_chars]}... ({len(text) - self.max_chars} more characters)"

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        if not log.isEnabledFor(self.level):
            return await call_next(ex)
        log.log(self.level, "request %s %s %s: %s", ex.request_id, ex.dialect, ex.endpoint, self._dump(ex.body))
        reply = await call_next(ex)
        pieces: list[str] = []
        wrap_stream(reply, lambda stream: _collect(stream, pieces))

        def done(ex: Exchange, error: BaseException | None) -> None:
            text = self._dump(reply.body) if reply.body is not None else self._cut("".join(pieces))
            ending = f" (ended by {type(error).__name__})" if error is not None else ""
            log.log(self.level, "reply %s%s: %s", ex.request_id, ending, text)

        return await after_reply(ex, reply, done)

    def _dump(self, body: object) -> str:
        return self._cut(orjson.dumps(body, default=str).decode())


async def _collect(stream: AsyncIterator[StreamItem], pieces: list[str]) -> AsyncIterator[StreamItem]:
    async for item in stream:
        if isinstance(item, Frames):
            pieces.append(item.data.decode("utf-8", "replace"))
        else:
            pieces.append(chunk_text(item))
        yield item
