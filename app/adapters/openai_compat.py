"""OpenAI-compatible chat, completion and embedding APIs: OpenAI, Groq, DeepSeek, Mistral, xAI,
OpenRouter and custom endpoints.

The internal form *is* OpenAI's, so requests pass through almost untouched (nothing the client
sent is dropped); replies are normalised where providers stray from the spec: Mistral's
content arrays, ``reasoning`` for ``reasoning_content``, Perplexity's ``chat.completion.done``
chunk, Mistral tool calls without ``type``, Groq's usage inside ``x_groq``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from typing import Any

import orjson

from app.adapters import responses_native
from app.adapters.base import Adapter, Call, is_json_type
from app.adapters.client import UpstreamClient
from app.adapters.failures import error_from_payload, load_json
from app.adapters.images import ImageLimits
from app.adapters.openai_usage import find_usage, usage_from_openai
from app.adapters.wire import SSEvent, parse_block
from app.errors import UpstreamProtocolError
from app.formats.openai_chat import envelope
from app.formats.openai_chunks import (
    ACT,
    FINISH,
    TOKEN,
    finishes,
    inspect_chunk,
    normalize_chunk,
    normalize_message,
    one_object,
)
from app.internal import Frames, Reply, StreamItem, Usage
from app.providers import Provider

PATHS = {"chat": "/chat/completions", "completion": "/completions", "embedding": "/embeddings"}


class OpenAICompatAdapter(Adapter):
    def __init__(self, provider: Provider, http: UpstreamClient, images: ImageLimits | None = None) -> None:
        super().__init__(provider, http, images)
        self._plain = self._headers(False)  # built once: the provider never changes under an adapter
        self._streaming = self._headers(True)

    def _headers(self, stream: bool) -> dict[str, str]:
        key = self.provider.api_key
        headers = self._json_headers(stream, {"authorization": f"Bearer {key}"} if key else {})
        if self.provider.name == "openrouter":
            headers["x-title"] = "LLM Relay"
        return headers

    dialect = "openai"

    def speaks(self, dialect: str) -> bool:
        # OpenAI's own API also serves the Responses API; other compatible servers may not.
        return dialect == "openai" or (dialect == "responses" and self.provider.name == "openai")

    async def stored_response(self, method: str, path: str, params: Mapping[str, Any]) -> Any:
        """A response OpenAI stored (``GET``/``DELETE /responses/{id}``, its ``cancel`` and
        ``input_items``), as OpenAI answers it."""
        url = self.provider.base_url + "/responses" + path
        response = await self._control(method, url, params=dict(params), headers=self._plain)
        return load_json(self.provider, response.content)

    async def count_input_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's own count of a Responses request's input (``POST /responses/input_tokens``)."""
        data = await self.http.post(
            self.provider, self.provider.base_url + "/responses/input_tokens", orjson.dumps(body), self._plain
        )
        counted = load_json(self.provider, data)
        if not isinstance(counted, dict) or not isinstance(counted.get("input_tokens"), int):
            raise error_from_payload(self.provider, counted if isinstance(counted, dict) else {})
        return counted

    async def send(self, call: Call) -> Reply:
        if call.dialect == "responses" and call.passthrough and call.native is not None and self.speaks("responses"):
            headers = self._streaming if call.stream else self._plain
            url = self.provider.base_url + "/responses"
            return await responses_native.send(self, call, headers, url, responses_native.openai_usage)
        body = {**call.body, "model": call.model}
        if call.dialect != "openai" and call.kind == "chat":
            body["messages"] = _without_null_content(body["messages"])
        if call.kind != "embedding":
            body["stream"] = call.stream
        url = self.provider.base_url + PATHS[call.kind]
        content = orjson.dumps(body)
        if not call.stream:
            data = await self.http.post(self.provider, url, content, self._plain)
            return self._whole(load_json(self.provider, data), call)
        opened = await self.http.stream(self.provider, url, content, self._streaming)
        if is_json_type(opened.content_type):
            # Some servers ignore "stream": answer with the whole body, replayed as chunks.
            data = await opened.read()
            return Reply(stream=_replay(self._whole(load_json(self.provider, data), call)))
        if call.passthrough and call.dialect == "openai":
            return Reply(stream=self._frames(opened.event_batches(), opened.ended, call))
        return Reply(stream=self._chunks(opened.sse(), opened.ended, call))

    def _whole(self, data: Any, call: Call) -> Reply:
        if not isinstance(data, dict):
            raise error_from_payload(self.provider, {"error": {"message": f"unexpected reply {data!r:.200}"}})
        if "error" in data and not data.get("choices") and not data.get("data"):
            raise error_from_payload(self.provider, data)
        if call.kind == "embedding":
            _check_vectors(self.provider.name, data)
        for choice in data.get("choices") or ():
            normalize_message(choice.get("message"))
        raw_usage = find_usage(data)
        return Reply(body=data, usage=_usage(raw_usage, data, call) if raw_usage else None)

    async def _chunks(
        self, events: AsyncGenerator[SSEvent, None], ended: Callable[[], None], call: Call
    ) -> AsyncGenerator[StreamItem, None]:
        """Every event parsed into internal chunks (any client dialect); ``ended`` is told when
        the stream stopped at its own end, [DONE]."""
        finished = False
        try:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    ended()
                    self._ended_early(finished)
                    return
                for item in self._event(event, call):
                    finished = finished or finishes(item)
                    yield item
            self._ended_early(finished)
        finally:
            await events.aclose()

    async def _frames(
        self, batches: AsyncGenerator[list[bytes | SSEvent], None], ended: Callable[[], None], call: Call
    ) -> AsyncGenerator[StreamItem, None]:
        """For OpenAI-dialect clients: events relayed as they came, batched per network chunk;
        only those the relay acts on (see inspect_chunk) become internal chunks."""
        finished = False
        try:
            async for batch in batches:
                plain: list[bytes] = []
                tokens = 0
                done = False
                for event in batch:
                    if isinstance(event, bytes) and one_object(event):
                        # Every such event is parsed (one orjson call costs less than the
                        # substring scans that could skip it) but never re-encoded when relayed.
                        chunk = load_json(self.provider, event[6:])
                        flags = inspect_chunk(chunk)
                        finished = finished or bool(flags & FINISH)
                        if not flags & ACT:
                            plain.append(event)
                            tokens += bool(flags & TOKEN)
                            continue
                        items: Iterator[StreamItem] = self._chunk(chunk, None, call)
                    else:
                        items = self._parsed(event, call)
                    if plain:  # what came before this event goes first
                        yield Frames(b"\n\n".join(plain) + b"\n\n", tokens)
                        plain, tokens = [], 0
                    for item in items:
                        if item is _DONE:
                            done = True
                            break
                        finished = finished or finishes(item)
                        yield item
                    if done:
                        break
                if plain:
                    yield Frames(b"\n\n".join(plain) + b"\n\n", tokens)
                if done:
                    ended()
                    self._ended_early(finished)
                    return
            self._ended_early(finished)
        finally:
            await batches.aclose()

    def _parsed(self, event: bytes | SSEvent, call: Call) -> Iterator[Any]:
        """An event that is not one plain ``data: {...}`` line, parsed the careful way; the
        stream's ``[DONE]`` comes out as _DONE."""
        if event == b"data: [DONE]":  # as nearly every provider spells it: no parser needed
            yield _DONE
            return
        for parsed in parse_block(event) if isinstance(event, bytes) else (event,):
            if parsed.data.strip() == "[DONE]":
                yield _DONE
                return
            yield from self._event(parsed, call)

    def _ended_early(self, finished: bool) -> None:
        """A stream that ends, even with [DONE], before any finish reason was cut off (a reset
        the transport couldn't tell from a close, or a server that stopped generating, as
        llama-cpp-python's does for another request): not to be taken for a whole answer."""
        if not finished:
            raise UpstreamProtocolError(f"{self.provider.name}: the stream ended before the reply was complete")

    def _event(self, event: SSEvent, call: Call) -> Iterator[StreamItem]:
        yield from self._chunk(load_json(self.provider, event.data.strip()), event.event, call)

    def _chunk(self, chunk: Any, event_type: str | None, call: Call) -> Iterator[StreamItem]:
        if not isinstance(chunk, dict):
            return
        raw_usage = find_usage(chunk)
        if event_type == "error" or "error" in chunk:
            if raw_usage:
                yield _usage(raw_usage, chunk, call)
            raise error_from_payload(self.provider, chunk)
        normalize_chunk(chunk, raw_usage)
        if raw_usage:  # before the chunk that carries it, so its cost can ride along
            yield _usage(raw_usage, chunk, call)
        yield chunk

    async def list_models(self) -> list[dict[str, Any]]:
        response = await self._control("GET", self.provider.base_url + "/models", headers=self._headers(False))
        data = load_json(self.provider, response.content)
        return [m for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]


_DONE: Any = object()  # the stream's own end, [DONE], among a parsed event's items


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


def _check_vectors(provider: str, data: dict[str, Any]) -> None:
    """Each embedding one vector of numbers (or base64 text): llama-cpp-python's server without
    pooling sends a vector per token, which no client can read, and the row must not say ok."""
    for item in data.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str) or (isinstance(vector, list) and (not vector or isinstance(vector[0], int | float))):
            continue
        raise UpstreamProtocolError(f"{provider}: an embedding is not one vector of numbers ({type(vector).__name__})")


def _without_null_content(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A translated conversation's assistant turns that only call tools, with an empty text:
    the spec takes null or "", but llama.cpp's server refuses null and its chat templates
    fail on a message with no content at all."""
    return [{**m, "content": ""} if m.get("content") is None and m.get("tool_calls") else m for m in messages]


async def _replay(reply: Reply) -> AsyncGenerator[StreamItem, None]:
    """A whole chat or completion body as the chunks a stream would have carried."""
    body = reply.body or {}
    completion = body.get("object") == "text_completion"
    for choice in body.get("choices") or ():
        if completion:  # a completion chunk is the choice itself
            streamed = {key: choice.get(key) for key in ("index", "text", "logprobs", "finish_reason")}
        else:
            # Fields the provider sent as null (Mistral's tool_calls) are left out: a delta's
            # tool_calls must be a list when present.
            message = {k: v for k, v in (choice.get("message") or {}).items() if v is not None or k == "content"}
            for call_index, tool_call in enumerate(message.get("tool_calls") or ()):
                tool_call.setdefault("index", call_index)
            streamed = {"index": choice.get("index", 0), "delta": message, "finish_reason": choice.get("finish_reason")}
        obj = "text_completion" if completion else "chat.completion.chunk"
        yield envelope(body.get("id"), obj, body.get("created"), body.get("model"), [streamed])
    if reply.usage:
        yield reply.usage
