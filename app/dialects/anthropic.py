"""The Anthropic dialect: ``/v1/messages`` requests in, Messages replies and events out.

Requests are translated by :mod:`app.formats.anthropic_inbound`. A reply from Anthropic itself
comes back as Anthropic sent it (a native body, or :class:`Frames` of its own events); any
other reply is the internal form, rebuilt here as a ``message`` or as the event sequence
message_start, ping, per block content_block_start/delta/stop, message_delta, message_stop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app import estimate
from app.errors import RelayError
from app.formats.anthropic_reply import ERROR_STATUS
from app.internal import Frames, StreamItem
from app.pipeline.core import Exchange

log = logging.getLogger("llm_relay.anthropic")

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {status: kind for kind, status in ERROR_STATUS.items()} | {502: "api_error", 503: "overloaded_error"}


def error_type(err: RelayError) -> str:
    """Anthropic's name for the error: the provider's own when it was Anthropic's, else by status."""
    if ERROR_STATUS.get(err.type) == err.status:
        return err.type
    return ERROR_TYPES.get(err.status, "api_error" if err.status >= 500 else "invalid_request_error")


def error_body(err: RelayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(err), "message": err.message}}


def model_name(ex: Exchange) -> str:
    return str(ex.body.get("model") or ex.requested_model)


def message_id(ex: Exchange) -> str:
    return "msg_" + ex.request_id


def usage_body(ex: Exchange) -> dict[str, int]:
    """Anthropic's usage: ``input_tokens`` leaves out the prompt read from or written to a cache.
    Without a report from the provider, the relay's own estimate."""
    usage = estimate.usage_so_far(ex.usage, ex.body, ex.pieces)
    return {
        "input_tokens": max(usage.input - usage.cached_input, 0),
        "output_tokens": usage.output,
        "cache_read_input_tokens": usage.cache_read + usage.cached_input,
        "cache_creation_input_tokens": usage.cache_write,
    }


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def whole(ex: Exchange, body: dict[str, Any]) -> dict[str, Any]:
    """An internal chat body as a Messages ``message``."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(ex),
        "type": "message",
        "role": "assistant",
        "model": model_name(ex),
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_body(ex),
    }


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class _Blocks:
    """The content blocks of one streamed message: which is open, and how each opens."""

    def __init__(self) -> None:
        self.count = 0
        self.open: tuple[str, int] | None = None  # (kind, tool call index or -1)
        self.stop_reason = "end_turn"
        self.saw_tool = False

    def switch(self, kind: str, tool: int = -1, start: dict[str, Any] | None = None) -> list[bytes]:
        """Close the open block unless it is this one; open this one with ``start``."""
        if self.open == (kind, tool):
            return []
        out = self.close()
        self.open = (kind, tool)
        out.append(event("content_block_start", {"index": self.count, "content_block": start or {}}))
        return out

    def close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        self.count += 1
        return [event("content_block_stop", {"index": self.count - 1})]

    def delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"index": self.count, "delta": delta})

    def chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out += self.switch("thinking", start={"type": "thinking", "thinking": "", "signature": ""})
                out.append(self.delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
            if delta.get("content"):
                out += self.switch("text", start={"type": "text", "text": ""})
                out.append(self.delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index", 0)
        function = call.get("function") or {}
        start: dict[str, Any] = {
            "type": "tool_use",
            "id": call.get("id") or "",
            "name": function.get("name") or "",
            "input": {},
        }
        out = self.switch("tool_use", index, start)
        self.saw_tool = True
        if function.get("arguments"):
            out.append(self.delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
        return out


async def events(ex: Exchange, items: AsyncGenerator[StreamItem, None]) -> AsyncGenerator[bytes, None]:
    """Internal chunks as Messages events; Anthropic's own events (Frames) as they came."""
    blocks = _Blocks()
    started = native = False
    try:
        async for item in items:
            if isinstance(item, Frames):
                native = True
                yield item.data
                continue
            if not isinstance(item, dict):
                continue
            if not started:
                started = True
                yield _message_start(ex) + event("ping", {})
            out = blocks.chunk(item)
            if out:
                yield b"".join(out)
        if native:
            return  # Anthropic's own events, message_stop included
        if not started:
            yield _message_start(ex)
        reason = "tool_use" if blocks.saw_tool and blocks.stop_reason == "end_turn" else blocks.stop_reason
        tail = blocks.close()
        tail.append(
            event("message_delta", {"delta": {"stop_reason": reason, "stop_sequence": None}, "usage": usage_body(ex)})
        )
        tail.append(event("message_stop", {}))
        yield b"".join(tail)
    except RelayError as err:
        yield event("error", {"error": error_body(err)["error"]})
    except Exception as exc:  # a bug must still end the stream in the client's dialect
        log.exception("stream %s failed", ex.request_id)
        yield event("error", {"error": {"type": "api_error", "message": f"internal error ({type(exc).__name__})"}})
    finally:
        await items.aclose()


def _message_start(ex: Exchange) -> bytes:
    message: dict[str, Any] = {
        "id": message_id(ex),
        "type": "message",
        "role": "assistant",
        "model": model_name(ex),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return event("message_start", {"message": message})
