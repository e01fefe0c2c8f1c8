"""Ollama servers through Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``).

A client that already speaks Ollama has its body passed through untouched (options, keep_alive,
think, images, raw, suffix all reach the server); an OpenAI-dialect body is translated. Replies
become internal chunks plus one :class:`Usage` carrying Ollama's real counts and timings.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

import orjson

from app.adapters.base import Adapter, Call, is_json_type
from app.adapters.failures import error_from_body, load_json, upstream_errors
from app.adapters.images import image_base64
from app.adapters.wire import iter_ndjson
from app.errors import BadRequest
from app.formats.images import image_url, image_urls
from app.formats.ollama_messages import messages_to_ollama
from app.formats.ollama_params import options_from_openai, think_from_effort
from app.formats.ollama_reply import ReplyTranslator, embedding_reply
from app.formats.openai_chat import json_format
from app.internal import Reply, StreamItem

JSON = {"content-type": "application/json"}

# Fields of a native Ollama body that the internal (OpenAI) form has no place for.
CHAT_EXTRAS = ("keep_alive", "think", "format", "truncate", "shift")
GENERATE_EXTRAS = ("raw", "suffix", "template", "context")
EMBED_EXTRAS = ("keep_alive", "truncate", "dimensions", "options")


def _extras(native: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: native[name] for name in names if native.get(name) is not None}


def generate_fields(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """``/api/generate`` takes one prompt (the last user turn) and an optional system text."""
    fields: dict[str, Any] = {"prompt": ""}
    for message in messages:
        if message.get("role") == "system":
            fields["system"] = message.get("content", "")
        elif message.get("role") == "user":
            fields["prompt"] = message.get("content", "")
            if message.get("images"):
                fields["images"] = message["images"]
    return fields


class OllamaAdapter(Adapter):
    async def send(self, call: Call) -> Reply:
        path, body = self._request(await self._inline_images(call))
        url = self.provider.base_url + path
        if call.kind == "embedding":
            data = await self._post(url, body)
            return embedding_reply(data, call.model)
        loading = call.dialect == "ollama"  # an Ollama caller hears a load's own done_reason
        translate = ReplyTranslator(request_id=call.request_id, chat=call.kind == "chat", loading=loading)
        if not call.stream:
            data = await self._post(url, {**body, "stream": False})
            return translate.whole(data)
        opened = await self.http.stream(self.provider, url, orjson.dumps({**body, "stream": True}), JSON)
        if is_json_type(opened.content_type):
            # A server that answered a stream with one JSON document: a stream of one line.
            data = await opened.read()
            return Reply(stream=self._chunks(_single(orjson.dumps(load_json(self.provider, data))), translate))
        return Reply(stream=self._chunks(opened.ndjson(), translate))

    async def _inline_images(self, call: Call) -> Call:
        """Ollama takes image bytes only: fetch http(s) image URLs (within the size/time limits)."""
        fetched: dict[str, dict[str, Any]] = {}  # url -> the part that replaces it
        for url in image_urls(call.body.get("messages")):
            if url.startswith("http"):
                mime, data = await image_base64(self.http, url, self.images)
                fetched[url] = {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
        if not fetched:
            return call
        return replace(call, body={**call.body, "messages": [_inlined(m, fetched) for m in call.body["messages"]]})

    def _request(self, call: Call) -> tuple[str, dict[str, Any]]:
        """Build Ollama's body from the internal one (which stages may have rewritten), then
        add what only an Ollama-speaking client can ask for (keep_alive, raw, extra options)."""
        body = call.body
        native = (call.native or {}) if call.dialect == "ollama" else {}
        if call.kind == "embedding":
            request: dict[str, Any] = {"model": call.model, "input": body.get("input", "")}
            return "/api/embed", {**_extras(native, EMBED_EXTRAS), **request}
        options = {**(native.get("options") or {}), **options_from_openai(body)}
        request = {"model": call.model, "options": options}
        fmt = json_format(body.get("response_format"))
        if fmt is not None:
            request["format"] = fmt
        # An Ollama client's own think value (true/false or a level) is what its server expects.
        think = native["think"] if "think" in native else think_from_effort(body.get("reasoning_effort"))
        if think is not None:
            request["think"] = think
        if body.get("logprobs"):
            request["logprobs"] = True
            if body.get("top_logprobs"):
                request["top_logprobs"] = body["top_logprobs"]
        request = {**_extras(native, CHAT_EXTRAS), **request}
        if call.kind == "completion":
            prompt = body.get("prompt", "")
            if not isinstance(prompt, str):
                raise BadRequest("Ollama models take one prompt string", param="prompt")
            request["prompt"] = prompt
            if body.get("suffix"):
                request["suffix"] = body["suffix"]
            return "/api/generate", request
        messages = messages_to_ollama(body.get("messages") or [])
        if call.native_endpoint == "/api/generate":
            request.update(generate_fields(messages))
            return "/api/generate", {**_extras(native, GENERATE_EXTRAS), **request}
        request["messages"] = messages
        tools = body.get("tools")
        if tools and body.get("tool_choice") != "none":
            request["tools"] = tools
        return "/api/chat", request

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        return load_json(self.provider, await self.http.post(self.provider, url, orjson.dumps(body), JSON))

    async def _chunks(
        self, lines: AsyncGenerator[bytes, None], translate: ReplyTranslator
    ) -> AsyncGenerator[StreamItem, None]:
        objects = self._objects(lines)  # Ollama reports a failure mid-stream as an error line
        try:
            async for data in objects:
                for item in translate.line(data):
                    yield item
        finally:
            await objects.aclose()

    async def list_models(self) -> list[dict[str, Any]]:
        return list((await self.get_json("/api/tags")).get("models") or [])

    async def get_json(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path)

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", path, body)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        content = None if body is None else orjson.dumps(body)
        response = await self._control(method, self.provider.base_url + path, content=content)
        data = load_json(self.provider, response.content) if response.content else {}
        return data if isinstance(data, dict) else {}

    async def pull(self, model: str) -> AsyncGenerator[dict[str, Any], None]:
        """``POST /api/pull``: each progress object the server streams, as it comes."""
        url = self.provider.base_url + "/api/pull"
        content = orjson.dumps({"model": model, "stream": True})
        with upstream_errors(self.provider):
            async with self.http.control.stream("POST", url, content=content) as response:
                if response.status_code >= 400:
                    raise error_from_body(self.provider, response.status_code, await response.aread())
                lines = iter_ndjson(response.aiter_bytes(), source=self.provider.name)  # type: ignore[arg-type]
                objects = self._objects(lines)
                try:
                    async for data in objects:
                        yield data
                finally:
                    await objects.aclose()

    async def delete_model(self, model: str) -> None:
        """``DELETE /api/delete``: 200 when deleted, 404 when the server has no such model."""
        await self._json("DELETE", "/api/delete", {"model": model})


def _inlined(message: Any, fetched: dict[str, dict[str, Any]]) -> Any:
    """The message with each image part whose URL was fetched in its inline form."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return message
    parts = [
        fetched.get(image_url(p), p) if isinstance(p, dict) and p.get("type") == "image_url" else p for p in content
    ]
    return {**message, "content": parts}


async def _single(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data
