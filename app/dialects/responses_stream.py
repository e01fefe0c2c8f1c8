"""The Responses dialect's streams: internal chunks as the event sequence a Responses stream
has (response.created, response.in_progress, per item output_item.added, its parts and deltas,
output_item.done, then response.completed or response.incomplete), every event numbered by
``sequence_number``; a Responses provider's own events (Frames) pass as they came."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app.dialects.responses import Items, error_body, finish_call
from app.errors import RelayError
from app.formats.responses_inbound import Translated
from app.internal import Frames, StreamItem
from app.pipeline.core import Exchange

log = logging.getLogger("llm_relay.responses")


async def events(
    ex: Exchange, source: AsyncGenerator[StreamItem, None], translated: Translated
) -> AsyncGenerator[bytes, None]:
    """Internal chunks as Responses events; a Responses provider's own events (Frames) as they came."""
    stream = _EventStream(Items(ex, translated))
    native = False
    try:
        async for item in source:
            if isinstance(item, Frames):
                native = True
                yield item.data
            elif isinstance(item, dict):
                out = stream.chunk(item)
                if out:
                    yield b"".join(out)
        if not native:
            yield b"".join(stream.end())
    except RelayError as err:
        yield stream.failed(error_body(err)["error"])
    except Exception as exc:  # a bug must still end the stream in the client's dialect
        log.exception("stream %s failed", ex.request_id)
        error = {"type": "server_error", "code": "server_error", "message": f"internal error ({type(exc).__name__})"}
        yield stream.failed({**error, "param": None})
    finally:
        await source.aclose()


class _EventStream:
    def __init__(self, items: Items) -> None:
        self.items = items
        self.sequence = 0
        self.started = False
        self.open: dict[str, Any] | None = None  # the item receiving deltas
        self.text: list[str] = []

    def event(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = orjson.dumps({"type": kind, **payload, "sequence_number": self.sequence})
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def _start(self) -> list[bytes]:
        self.started = True
        response = self.items.response("in_progress", with_usage=False)
        return [
            self.event("response.created", {"response": response}),
            self.event("response.in_progress", {"response": response}),
        ]

    def _index(self, item: dict[str, Any]) -> int:
        return self.items.items.index(item)

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.open, self.text = item, []
        out.append(self.event("response.output_item.added", {"output_index": self._index(item), "item": dict(item)}))
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(self._part("response.content_part.added", item, part))
        elif item["type"] == "reasoning":
            out.append(
                self._summary("response.reasoning_summary_part.added", item, {"type": "summary_text", "text": ""})
            )
        return out

    def _part(self, kind: str, item: dict[str, Any], part: dict[str, Any]) -> bytes:
        return self.event(
            kind, {"item_id": item["id"], "output_index": self._index(item), "content_index": 0, "part": part}
        )

    def _summary(self, kind: str, item: dict[str, Any], part: dict[str, Any]) -> bytes:
        return self.event(
            kind, {"item_id": item["id"], "output_index": self._index(item), "summary_index": 0, "part": part}
        )

    def _delta(self, kind: str, item: dict[str, Any], delta: str, **extra: Any) -> bytes:
        self.text.append(delta)
        return self.event(kind, {"item_id": item["id"], "output_index": self._index(item), **extra, "delta": delta})

    def _close(self) -> list[bytes]:
        item, self.open = self.open, None
        if item is None:
            return []
        text = "".join(self.text)
        where = {"item_id": item["id"], "output_index": self._index(item)}
        out: list[bytes] = []
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out.append(
                self.event("response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []})
            )
            out.append(self._part("response.content_part.done", item, part))
            item["content"], item["status"] = [part], "completed"
        elif item["type"] == "reasoning":
            part = {"type": "summary_text", "text": text}
            out.append(self.event("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text}))
            out.append(self._summary("response.reasoning_summary_part.done", item, part))
            item["summary"] = [part]
        elif item["type"] == "function_call":
            item["arguments"] = text
            out.append(self.event("response.function_call_arguments.done", {**where, "arguments": text}))
            finish_call(item)
        else:
            item["arguments"] = text
            finish_call(item)
            out.append(self.event("response.custom_tool_call_input.done", {**where, "input": item["input"]}))
        out.append(self.event("response.output_item.done", {"output_index": self._index(item), "item": item}))
        return out

    def chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out = [] if self.started else self._start()
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out += self._text("reasoning", delta["reasoning_content"])
            if delta.get("content"):
                out += self._text("message", delta["content"])
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self.items.finish = choice["finish_reason"]
        return out

    def _text(self, kind: str, text: str) -> list[bytes]:
        """A piece of reasoning summary or answer text, in an item of its kind."""
        out: list[bytes] = []
        item = self.open
        if item is None or item["type"] != kind:
            item = self.items.reasoning() if kind == "reasoning" else self.items.message()
            out += self._open(item)
        if kind == "reasoning":
            out.append(self._delta("response.reasoning_summary_text.delta", item, text, summary_index=0))
        else:
            out.append(self._delta("response.output_text.delta", item, text, content_index=0, logprobs=[]))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out: list[bytes] = []
        item = self.items.calls.get(index)
        if item is None:
            item = self.items.call(index, str(call.get("id") or ""), str(function.get("name") or ""))
            out += self._open(item)
        if function.get("arguments") and item is self.open:
            kind = "response.function_call_arguments.delta" if item["type"] == "function_call" else None
            if kind:
                out.append(self._delta(kind, item, function["arguments"]))
            else:
                self.text.append(function["arguments"])  # a custom tool's input is whole only at the end
        return out

    def failed(self, error: dict[str, Any]) -> bytes:
        """An ``error`` event, then ``response.failed``, as OpenAI ends a stream that fails."""
        ex = self.items.ex
        # As the row: a reply that failed before any text was generated is not estimated.
        counted = ex.usage.reported or ex.pieces > 0
        response = {
            **self.items.response("failed", with_usage=counted),
            "error": {k: error[k] for k in ("code", "message")},
        }
        return self.event("error", {"error": error}) + self.event("response.failed", {"response": response})

    def end(self) -> list[bytes]:
        out = ([] if self.started else self._start()) + self._close()
        status = self.items.status
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        out.append(self.event(kind, {"response": self.items.response(status, with_usage=True)}))
        return out
