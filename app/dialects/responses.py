"""The Responses dialect: ``/v1/responses`` requests in, ``response`` objects and events out.

Requests are translated by :mod:`app.formats.responses_inbound`. A reply from a provider that
speaks the Responses API comes back as it sent it (a native body, or :class:`Frames`); any
other is the internal form, rebuilt here as a ``response`` (reasoning, message and tool call
items); :mod:`app.dialects.responses_stream` rebuilds a stream as the events of one.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from app import estimate
from app.errors import RelayError
from app.formats.responses_inbound import NAMESPACE_SEPARATOR, Translated
from app.pipeline.core import Exchange

log = logging.getLogger("llm_relay.responses")


def error_body(err: RelayError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


def usage_body(ex: Exchange) -> dict[str, Any]:
    usage = estimate.usage_so_far(ex.usage, ex.body, ex.pieces)
    prompt = usage.prompt_total
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cached_input + usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": prompt + usage.output,
    }


class Items:
    """The output items of one response, built from internal chunks or a whole body."""

    def __init__(self, ex: Exchange, translated: Translated) -> None:
        self.ex = ex
        self.translated = translated
        self.base = ex.request_id
        self.items: list[dict[str, Any]] = []
        self.calls: dict[int, dict[str, Any]] = {}  # internal tool call index -> its item
        self.finish: str | None = None

    def response(self, status: str, with_usage: bool) -> dict[str, Any]:
        body = self.ex.native or {}
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": "resp_" + self.base,
            "object": "response",
            "created_at": int(self.ex.created_at.timestamp()),
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": str(self.ex.body.get("model") or self.ex.requested_model),
            "output": self.items if status != "in_progress" else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": False,
            "temperature": body.get("temperature"),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p"),
            "usage": usage_body(self.ex) if with_usage else None,
        }

    @property
    def status(self) -> str:
        return "incomplete" if self.finish == "length" else "completed"

    def reasoning(self) -> dict[str, Any]:
        item = {"type": "reasoning", "id": f"rs_{self.base}_{len(self.items)}", "summary": []}
        self.items.append(item)
        return item

    def message(self) -> dict[str, Any]:
        item = {
            "type": "message",
            "id": f"msg_{self.base}_{len(self.items)}",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self.items.append(item)
        return item

    def call(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        namespace, sep, short = name.partition(NAMESPACE_SEPARATOR)
        item: dict[str, Any] = {"id": f"fc_{self.base}_{len(self.items)}", "call_id": call_id, "status": "in_progress"}
        if sep and namespace in self.translated.namespaces:
            item["namespace"], name = namespace, short
        if name in self.translated.custom_tools or f"{namespace}{sep}{name}" in self.translated.custom_tools:
            item.update(type="custom_tool_call", name=name, input="")
        else:
            item.update(type="function_call", name=name, arguments="")
        self.items.append(item)
        self.calls[index] = item
        return item


def custom_input(arguments: str) -> str:
    """The freeform input of a custom tool, from the one-string function that stood for it (a
    model that ignored that function's shape gets its arguments passed on as they are)."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    return str(parsed["input"]) if isinstance(parsed, dict) and "input" in parsed else arguments


def finish_call(item: dict[str, Any]) -> None:
    item["status"] = "completed"
    if item["type"] == "custom_tool_call":
        item["input"] = custom_input(item.pop("arguments", "") or item.get("input", ""))


def whole(ex: Exchange, body: dict[str, Any], translated: Translated) -> dict[str, Any]:
    """An internal chat body as a ``response`` object."""
    items = Items(ex, translated)
    choice = (body.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    items.finish = choice.get("finish_reason")
    if message.get("reasoning_content"):
        items.reasoning()["summary"] = [{"type": "summary_text", "text": message["reasoning_content"]}]
    if message.get("content"):
        item = items.message()
        item["status"] = "completed"
        item["content"] = [{"type": "output_text", "text": message["content"], "annotations": [], "logprobs": []}]
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        item = items.call(index, str(call.get("id") or ""), str(function.get("name") or ""))
        item["arguments"] = str(function.get("arguments") or "")
        finish_call(item)
    return items.response(items.status, with_usage=True)
