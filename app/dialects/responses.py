"""The Responses dialect: ``/v1/responses`` requests in, ``response`` objects and events out.

Requests are translated by :mod:`app.formats.responses_inbound`. A reply from a provider that
speaks the Responses API comes back as it sent it (a native body, or :class:`Frames`); any
other is the internal form, rebuilt here as a ``response`` (reasoning, message and tool call
items) or as the event sequence a Responses stream has: response.created, response.in_progress,
per item output_item.added, its parts and deltas, output_item.done, then response.completed
(or response.incomplete), every event numbered by ``sequence_number``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app import estimate
from app.errors import RelayError
from app.formats.responses_inbound import NAMESPACE_SEPARATOR, Translated
from app.internal import Frames, StreamItem, Usage
from app.pipeline.core import Exchange

log = logging.getLogger("llm_relay.responses")


def error_body(err: RelayError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


def usage_body(ex: Exchange) -> dict[str, Any]:
    usage = ex.usage if ex.usage.reported else Usage(input=estimate.prompt_tokens(ex.body), output=ex.pieces)
    prompt = usage.prompt_total
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cached_input + usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": prompt + usage.output,
    }


class _Items:
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


def _finish_call(item: dict[str, Any]) -> None:
    item["status"] = "completed"
    if item["type"] == "custom_tool_call":
        item["input"] = custom_input(item.pop("arguments", "") or item.get("input", ""))


def whole(ex: Exchange, body: dict[str, Any], translated: Translated) -> dict[str, Any]:
    """An internal chat body as a ``response`` object."""
    items = _Items(ex, translated)
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
        _finish_call(item)
    return items.response(items.status, with_usage=True)


async def events(
    ex: Exchange, source: AsyncGenerator[StreamItem, None], translated: Translated
) -> AsyncGenerator[bytes, None]:
    """Internal chunks as Responses events; a Responses provider's own events (Frames) as they came."""
    stream = _EventStream(_Items(ex, translated))
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
    def __init__(self, items: _Items) -> None:
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
            _finish_call(item)
        else:
            item["arguments"] = text
            _finish_call(item)
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
        response = {
            **self.items.response("failed", with_usage=True),
            "error": {k: error[k] for k in ("code", "message")},
        }
        return self.event("error", {"error": error}) + self.event("response.failed", {"response": response})

    def end(self) -> list[bytes]:
        out = ([] if self.started else self._start()) + self._close()
        status = self.items.status
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        out.append(self.event(kind, {"response": self.items.response(status, with_usage=True)}))
        return out
