"""Ollama's replies (``/api/chat``, ``/api/generate`` lines and bodies, ``/api/embed``) as
internal (OpenAI-shaped) bodies and chunks, with one :class:`Usage` carrying Ollama's real
counts and timings."""

from __future__ import annotations

import time
from typing import Any

from app.formats.ollama_messages import tool_calls_from_ollama
from app.formats.ollama_params import finish_reason
from app.formats.openai_chat import assistant_message, embedding_list, envelope
from app.internal import Reply, StreamItem, Usage, token_count

_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class ReplyTranslator:
    """Ollama reply lines -> internal chat/completion chunks, for one request."""

    def __init__(self, *, request_id: str, chat: bool, loading: bool = False) -> None:
        self.chat = chat
        self.loading = loading  # keep a load's or unload's done_reason (see finish_reason)
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id
        self.created = int(time.time())
        self.tool_calls = 0

    def _chunk(self, data: dict[str, Any], choice: dict[str, Any]) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return envelope(self.id, obj, self.created, data.get("model", ""), [{"index": 0, **choice}])

    def line(self, data: dict[str, Any]) -> list[StreamItem]:
        items: list[StreamItem] = []
        if self.chat:
            message = message_of(data)
            calls = tool_calls_from_ollama(
                message.get("tool_calls"), prefix=f"call_{self.id[-8:]}_", start=self.tool_calls
            )
            self.tool_calls += len(calls)
            delta = assistant_message(message.get("content", ""), message.get("thinking"), calls)
            if delta["content"] or len(delta) > 2 or not data.get("done"):
                items.append(self._chunk(data, {"delta": delta, "finish_reason": None}))
            if data.get("done"):
                reason = finish_reason(data.get("done_reason"), self.tool_calls > 0)
                items.append(self._chunk(data, {"delta": {}, "finish_reason": reason}))
        else:
            choice: dict[str, Any] = {"text": data.get("response", ""), "finish_reason": None}
            if data.get("thinking"):
                choice["reasoning_content"] = data["thinking"]
            if data.get("done"):
                choice["finish_reason"] = finish_reason(data.get("done_reason"), False)
            items.append(self._chunk(data, choice))
        if data.get("done"):
            items.append(usage_of(data))
        return items

    def whole(self, data: Any) -> Reply:
        if not isinstance(data, dict):
            data = {}
        usage = usage_of(data)
        message = message_of(data)
        if self.chat:
            calls = tool_calls_from_ollama(message.get("tool_calls"), prefix=f"call_{self.id[-8:]}_")
            unindexed = [{k: v for k, v in c.items() if k != "index"} for c in calls]
            out = assistant_message(message.get("content", ""), message.get("thinking"), unindexed)
            choice: dict[str, Any] = {
                "message": out,
                "finish_reason": finish_reason(data.get("done_reason"), bool(calls), loading=self.loading),
            }
        else:
            reason = finish_reason(data.get("done_reason"), False, loading=self.loading)
            choice = {"text": data.get("response", ""), "finish_reason": reason}
            if data.get("thinking"):
                choice["reasoning_content"] = data["thinking"]
        body = self._chunk(data, choice)
        body["object"] = "chat.completion" if self.chat else "text_completion"
        body["usage"] = {
            "prompt_tokens": usage.input,
            "completion_tokens": usage.output,
            "total_tokens": usage.input + usage.output,
        }
        return Reply(body=body, usage=usage)


def message_of(data: dict[str, Any]) -> dict[str, Any]:
    """A chat line's message; a generate line's response read as one."""
    message = data.get("message")
    if isinstance(message, dict):
        return message
    return {"content": data.get("response", ""), "thinking": data.get("thinking")}


def usage_of(data: dict[str, Any]) -> Usage:
    durations = {k: v for k in _DURATIONS if isinstance(v := data.get(k), int)}
    reported = "prompt_eval_count" in data or "eval_count" in data
    return Usage(
        input=token_count(data.get("prompt_eval_count")),
        output=token_count(data.get("eval_count")),
        reported=reported,
        durations=durations or None,
    )


def embedding_reply(data: Any, model: str) -> Reply:
    data = data if isinstance(data, dict) else {}
    vectors = data.get("embeddings") or []
    usage = usage_of(data)
    return Reply(body=embedding_list(vectors, data.get("model", model), usage.input), usage=usage)
