"""``prompt_log``: append each request of the chosen tags, with the reply's text, its usage and
its cost, to a JSON Lines file of its own.

Where it sits decides what it sees. Listed after ``cost`` it is the outermost layer and logs
the charged cost; listed before ``dispatch`` it logs the request as the stages before it left
it (after ``redact``, say) but runs before the meter and the cost stage, so tokens and cost are
not known yet.

Options: ``path`` (required), ``tags`` (default: every request).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from app.pipeline import (
    Exchange,
    Next,
    Reply,
    StageContext,
    StreamItem,
    after_reply,
    body_text,
    chunk_text,
    wrap_stream,
)


class PromptLogStage:
    name: ClassVar[str] = "prompt_log"
    # It reads each chunk's text, so it wants chunks as dicts, not relayed upstream bytes.
    passthrough_safe: ClassVar[bool] = False

    def __init__(self, ctx: StageContext) -> None:
        self.path = Path(ctx.option("path", kind=str))
        self.tags = set(ctx.option("tags", [], kind=list))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()

    def wanted(self, ex: Exchange) -> bool:
        return not self.tags or bool(self.tags.intersection(ex.tags))

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        # What the stages before this one made of the request. Tags are only known once the
        # tags stage has run, which is inside this call when this stage is listed after it.
        prompt = ex.body.get("messages") or ex.body.get("prompt") or ex.body.get("input")
        try:
            reply = await call_next(ex)
        except BaseException as exc:
            if self.wanted(ex):
                await self._write(self._record(ex, prompt, "", exc))
            raise
        if not self.wanted(ex):
            return reply
        pieces: list[str] = []
        if reply.body is not None:
            pieces.append(body_text(reply.body))
        else:  # wrap_stream closes the upstream's stream however the client's ends
            wrap_stream(reply, lambda stream: self._collect(stream, pieces))

        async def write(ex: Exchange, error: BaseException | None) -> None:
            await self._write(self._record(ex, prompt, "".join(pieces), error))

        return await after_reply(ex, reply, write)

    async def _collect(self, stream: AsyncIterator[StreamItem], pieces: list[str]) -> AsyncIterator[StreamItem]:
        async for item in stream:
            pieces.append(chunk_text(item))
            yield item

    def _record(self, ex: Exchange, prompt: Any, text: str, error: BaseException | None) -> dict[str, Any]:
        return {
            "time": datetime.now(UTC).isoformat(),
            "request_id": ex.request_id,
            "dialect": ex.dialect,
            "stream": ex.stream,
            "tags": ex.tags,
            "model": ex.target.label if ex.target else ex.requested_model,
            "prompt": prompt,
            "reply": text,
            "input_tokens": ex.usage.input,
            "output_tokens": ex.usage.output,
            "cost_nanousd": ex.cost_nanousd,
            "error": repr(error) if error else None,
        }

    async def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        async with self._lock:  # one line at a time; the write itself is off the event loop
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line)
