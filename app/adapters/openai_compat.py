"""OpenAI-compatible chat, completion and embedding APIs: OpenAI, Groq, DeepSeek, Mistral, xAI,
OpenRouter and custom endpoints.

The internal form *is* OpenAI's, so requests pass through almost untouched (nothing the client
sent is dropped); replies are normalised where providers stray from the spec: Mistral's
content arrays, ``reasoning`` for ``reasoning_content``, Perplexity's ``chat.completion.done``
chunk, Mistral tool calls without ``type``, Groq's usage inside ``x_groq``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app.adapters.base import (
    Adapter,
    Call,
    error_from_body,
    error_from_payload,
    is_json_response,
    iter_body,
    load_json,
    open_stream,
    upstream_errors,
)
from app.adapters.openai_usage import find_usage, usage_from_openai
from app.adapters.wire import iter_sse
from app.pipeline.core import Reply, StreamItem, Usage

PATHS = {"chat": "/chat/completions", "completion": "/completions", "embedding": "/embeddings"}


class OpenAICompatAdapter(Adapter):
    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.provider.api_key:
            headers["authorization"] = f"Bearer {self.provider.api_key}"
        if stream:
            headers["accept"] = "text/event-stream"
        if self.provider.name == "openrouter":
            headers["x-title"] = "LLM Relay"
        return headers

    async def send(self, call: Call) -> Reply:
        body = {**call.body, "model": call.model}
        if call.kind != "embedding":
            body["stream"] = call.stream
        url = self.provider.base_url + PATHS[call.kind]
        content = orjson.dumps(body)
        if not call.stream:
            with upstream_errors(self.provider):
                response = await self.http.post(url, content=content, headers=self._headers(False))
            if response.status_code >= 400:
                raise error_from_body(self.provider, response.status_code, response.content)
            return self._whole(load_json(self.provider, response.content), call)
        request = self.http.build_request("POST", url, content=content, headers=self._headers(True))
        response = await open_stream(self.http, self.provider, request)
        if is_json_response(response):
            # Some servers ignore "stream": answer with the whole body, replayed as chunks.
            data = b"".join([chunk async for chunk in iter_body(self.provider, response)])
            return Reply(stream=_replay(self._whole(load_json(self.provider, data), call)))
        return Reply(stream=self._chunks(iter_body(self.provider, response), call))

    def _whole(self, data: Any, call: Call) -> Reply:
        if not isinstance(data, dict):
            raise error_from_payload(self.provider, {"error": {"message": f"unexpected reply {data!r:.200}"}})
        if "error" in data and not data.get("choices") and not data.get("data"):
            raise error_from_payload(self.provider, data)
        for choice in data.get("choices") or ():
            normalize_message(choice.get("message"))
        raw_usage = find_usage(data)
        return Reply(body=data, usage=_usage(raw_usage, data, call) if raw_usage else None)

    async def _chunks(self, body: AsyncGenerator[bytes, None], call: Call) -> AsyncGenerator[StreamItem, None]:
        events = iter_sse(body)
        try:
            async for event in events:
                data = event.data.strip()
                if data == "[DONE]":
                    break
                chunk = load_json(self.provider, data)
                if not isinstance(chunk, dict):
                    continue
                raw_usage = find_usage(chunk)
                if event.event == "error" or "error" in chunk:
                    if raw_usage:
                        yield _usage(raw_usage, chunk, call)
                    raise error_from_payload(self.provider, chunk)
                normalize_chunk(chunk, raw_usage)
                if raw_usage:  # before the chunk that carries it, so its cost can ride along
                    yield _usage(raw_usage, chunk, call)
                yield chunk
        finally:
            await events.aclose()

    async def list_models(self) -> list[dict[str, Any]]:
        with upstream_errors(self.provider):
            response = await self.http.get(self.provider.base_url + "/models", headers=self._headers(False))
        if response.status_code >= 400:
            raise error_from_body(self.provider, response.status_code, response.content)
        data = load_json(self.provider, response.content)
        return [m for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]


def _usage(raw: dict[str, Any], payload: dict[str, Any], call: Call) -> Usage:
    """Usage plus what pricing needs beside the counts: the service tier that served the
    request and the web search a search model or Sonar ran."""
    usage = usage_from_openai(raw)
    tier = payload.get("service_tier")
    usage.service_tier = tier if isinstance(tier, str) else None
    options = call.body.get("web_search_options")
    if usage.search_context_size is None and isinstance(options, dict):
        usage.web_search_requests = max(usage.web_search_requests, 1)
        size = options.get("search_context_size")
        usage.search_context_size = size if isinstance(size, str) else "medium"
    return usage


async def _replay(reply: Reply) -> AsyncGenerator[StreamItem, None]:
    """A whole chat body as the chunks a stream would have carried."""
    body = reply.body or {}
    for choice in body.get("choices") or ():
        message = dict(choice.get("message") or {})
        for call_index, tool_call in enumerate(message.get("tool_calls") or ()):
            tool_call.setdefault("index", call_index)
        yield {
            "id": body.get("id"),
            "object": "chat.completion.chunk",
            "created": body.get("created"),
            "model": body.get("model"),
            "choices": [
                {"index": choice.get("index", 0), "delta": message, "finish_reason": choice.get("finish_reason")}
            ],
        }
    if reply.usage:
        yield reply.usage


def normalize_chunk(chunk: dict[str, Any], raw_usage: dict[str, Any] | None) -> None:
    if chunk.get("object") == "chat.completion.done":
        chunk["object"] = "chat.completion.chunk"
    if raw_usage is not None and "usage" not in chunk:
        chunk["usage"] = raw_usage
    for choice in chunk.get("choices") or ():
        normalize_message(choice.get("delta"))


def normalize_message(message: Any) -> None:
    """Bring a message or delta to the fields OpenAI clients read."""
    if not isinstance(message, dict):
        return
    content = message.get("content")
    if isinstance(content, list):
        text, thinking = _flatten(content)
        message["content"] = text
        if thinking and not message.get("reasoning_content"):
            message["reasoning_content"] = thinking
    reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning and not message.get("reasoning_content"):
        message["reasoning_content"] = reasoning
    for tool_call in message.get("tool_calls") or ():
        if isinstance(tool_call, dict) and tool_call.get("id") and not tool_call.get("type"):
            tool_call["type"] = "function"
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), dict):
            function["arguments"] = orjson.dumps(function["arguments"]).decode()


def _flatten(parts: list[Any]) -> tuple[str, str]:
    """Mistral's content arrays: text parts, and thinking parts holding text parts."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking.extend(p["text"] for p in inner if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "".join(text), "".join(thinking)
