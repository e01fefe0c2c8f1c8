"""Anthropic's streamed events as internal ``chat.completion.chunk`` dicts and Usage items.

A stream is message_start, then per content block a content_block_start, its deltas and a
content_block_stop, then message_delta (stop reason, final usage) and message_stop, with
``ping`` anywhere. Errors are the adapter's business; this translator sees only the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.formats.anthropic_reply import (
    add_sources,
    finish_reason,
    merge_usage,
    thinking_block,
    usage_from_anthropic,
)
from app.formats.openai_chat import envelope, source_fields, tool_call
from app.internal import StreamItem


@dataclass
class _Block:
    kind: str
    tool_index: int | None = None  # the OpenAI tool_calls index of a tool_use block
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    sent_arguments: bool = False


class StreamTranslator:
    """One request's stream; :meth:`event` takes each decoded payload in order."""

    def __init__(self, request_id: str) -> None:
        self.id = "chatcmpl-" + request_id
        self.model = ""
        self.created = int(time.time())
        self.blocks: dict[int, _Block] = {}
        self.tool_calls = 0
        self.start_usage: dict[str, Any] = {}
        self.sources: dict[str, str] = {}  # web pages searched or cited, url -> title
        self.finished = False  # message_delta arrived: the answer is whole

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**envelope(self.id, "chat.completion.chunk", self.created, self.model, [choice]), **extra}

    def _sources_chunk(self, items: Any) -> list[StreamItem]:
        """Sources as soon as they are known, all of them so far (dialects dedupe by URL)."""
        return [self._chunk({}, **source_fields(self.sources))] if add_sources(self.sources, items) else []

    def event(self, payload: dict[str, Any]) -> list[StreamItem]:
        kind = payload.get("type")
        if kind == "message_start":
            return self._start(payload.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(payload.get("index"), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(self.blocks.get(_index(payload)), payload.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(self.blocks.get(_index(payload)))
        if kind == "message_delta":
            return self._message_delta(payload)
        return []  # ping, message_stop, and event types newer than this code

    def _start(self, message: dict[str, Any]) -> list[StreamItem]:
        if message.get("id"):
            self.id = str(message["id"])
        self.model = str(message.get("model") or "")
        items: list[StreamItem] = [self._chunk({"role": "assistant", "content": ""})]
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.start_usage = usage
            # Counted now, so a client that leaves mid-stream still has its prompt recorded.
            items.append(usage_from_anthropic(usage))
        return items

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[StreamItem]:
        state = _Block(str(block.get("type") or ""))
        if isinstance(index, int):
            self.blocks[index] = state
        if state.kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if state.kind == "thinking" and block.get("thinking"):
            state.thinking.append(str(block["thinking"]))
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if state.kind == "redacted_thinking":
            return [self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data")}]})]
        if state.kind == "tool_use":
            state.tool_index = self.tool_calls
            self.tool_calls += 1
            call = tool_call(str(block.get("id") or ""), str(block.get("name") or ""), "")
            return [self._chunk({"tool_calls": [{"index": state.tool_index, **call}]})]
        if state.kind == "web_search_tool_result":
            return self._sources_chunk(block.get("content"))
        # server_tool_use and the results of other server tools: the provider's own work, whose
        # outcome the text blocks tell; their deltas are skipped with them.
        return []

    def _delta(self, state: _Block | None, delta: dict[str, Any]) -> list[StreamItem]:
        if state is None:
            return []
        kind = delta.get("type")
        if kind == "text_delta" and state.kind == "text" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and state.kind == "thinking" and delta.get("thinking"):
            state.thinking.append(str(delta["thinking"]))
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and state.kind == "thinking":
            state.signature += str(delta.get("signature") or "")
        elif kind == "input_json_delta" and state.tool_index is not None and delta.get("partial_json"):
            state.sent_arguments = True
            return [self._arguments(state.tool_index, str(delta["partial_json"]))]
        elif kind == "citations_delta":
            return self._sources_chunk([delta.get("citation")])
        return []

    def _block_stop(self, state: _Block | None) -> list[StreamItem]:
        if state is None:
            return []
        if state.kind == "thinking" and state.signature:
            # Only whole and signed can the block go back to Anthropic on the next turn.
            block = thinking_block("".join(state.thinking), state.signature)
            return [self._chunk({"thinking_blocks": [block]})]
        if state.tool_index is not None and not state.sent_arguments:
            return [self._arguments(state.tool_index, "{}")]  # a call without arguments is still JSON
        return []

    def _arguments(self, index: int, fragment: str) -> dict[str, Any]:
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def _message_delta(self, payload: dict[str, Any]) -> list[StreamItem]:
        self.finished = True
        delta = payload.get("delta") or {}
        reason = finish_reason(delta.get("stop_reason"), self.tool_calls > 0)
        items: list[StreamItem] = [self._chunk({}, reason, **source_fields(self.sources))]
        usage = payload.get("usage")
        if isinstance(usage, dict) or self.start_usage:
            items.append(usage_from_anthropic(merge_usage(self.start_usage, usage if isinstance(usage, dict) else {})))
        return items


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    return index if isinstance(index, int) else -1
