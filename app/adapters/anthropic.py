"""Anthropic's Messages API (``POST /v1/messages``).

The internal OpenAI chat request is translated by :mod:`app.formats.anthropic_request`;
whole replies and streamed events come back as OpenAI chat bodies and chunks, thinking and
its signatures included, with one :class:`Usage` that keeps Anthropic's cache reads and
writes apart from the rest of the prompt.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app.adapters import anthropic_native as native
from app.adapters.base import Adapter, Call
from app.adapters.client import Opened
from app.adapters.failures import error_from_payload, load_json
from app.errors import BadRequest, UpstreamProtocolError
from app.formats.anthropic_reply import chat_body, error_status
from app.formats.anthropic_request import build_request
from app.formats.anthropic_stream import StreamTranslator
from app.internal import Reply, StreamItem

ANTHROPIC_VERSION = "2023-06-01"
CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")


class AnthropicAdapter(Adapter):
    dialect = "anthropic"

    def _headers(self, stream: bool) -> dict[str, str]:
        key = {"x-api-key": self.provider.api_key} if self.provider.api_key else {}
        return self._json_headers(stream, {"anthropic-version": ANTHROPIC_VERSION, **key})

    def _native_headers(self, call: Call) -> dict[str, str]:
        """An Anthropic client's own version and beta flags go on to Anthropic as it sent them."""
        headers = self._headers(call.stream)
        for name in CLIENT_HEADERS:
            if call.headers.get(name):
                headers[name] = call.headers[name]
        return headers

    async def send(self, call: Call) -> Reply:
        if call.kind != "chat":
            # Anthropic has neither embeddings nor a bare-prompt completion endpoint.
            raise BadRequest(f"{self.provider.name} models serve chat only: use /v1/chat/completions or /api/chat")
        if call.dialect == "anthropic" and call.passthrough and call.native is not None:
            return await native.send(self, call, self._native_headers(call))
        body = build_request(call.body, model=call.model, stream=call.stream, catalog=call.catalog)
        url = self.provider.base_url + "/v1/messages"
        content = orjson.dumps(body)
        if not call.stream:
            data = await self.http.post(self.provider, url, content, self._headers(False))
            return self._whole(load_json(self.provider, data))
        opened = await self.http.stream(self.provider, url, content, self._headers(True))
        return Reply(stream=self._chunks(opened, StreamTranslator(call.request_id)))

    def _whole(self, data: Any) -> Reply:
        if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("content"), list):
            payload = data if isinstance(data, dict) and "error" in data else {"error": {"message": f"{data!r:.200}"}}
            raise error_from_payload(self.provider, payload, error_status(payload))
        body, usage = chat_body(data, created=int(time.time()))
        return Reply(body=body, usage=usage)

    async def _chunks(self, opened: Opened, translate: StreamTranslator) -> AsyncGenerator[StreamItem, None]:
        events = opened.sse()
        try:
            async for event in events:
                data = event.data.strip()  # real streams pad their data lines with spaces
                if not data:
                    continue
                payload = load_json(self.provider, data)
                if not isinstance(payload, dict):
                    continue
                if event.event == "error" or payload.get("type") == "error":
                    raise error_from_payload(self.provider, payload, error_status(payload))
                for item in translate.event(payload):
                    yield item
            if not translate.finished:
                raise UpstreamProtocolError(f"{self.provider.name}: the stream ended before the message did")
        finally:
            await events.aclose()

    async def count_tokens(self, call: Call) -> dict[str, Any] | None:
        if call.native is None:
            return None
        url = self.provider.base_url + "/v1/messages/count_tokens"
        body = {k: v for k, v in call.native.items() if k not in native.NOT_COUNTED}
        data = await self.http.post(
            self.provider, url, orjson.dumps({**body, "model": call.model}), self._native_headers(call)
        )
        counted = load_json(self.provider, data)
        if not isinstance(counted, dict) or not isinstance(counted.get("input_tokens"), int):
            raise error_from_payload(self.provider, counted if isinstance(counted, dict) else {}, error_status(counted))
        return counted

    async def list_models(self) -> list[dict[str, Any]]:
        url = self.provider.base_url + "/v1/models"
        response = await self._control("GET", url, params={"limit": 1000}, headers=self._headers(False))
        data = load_json(self.provider, response.content)
        models = data.get("data") if isinstance(data, dict) else None
        return [m for m in models or () if isinstance(m, dict) and m.get("id")]
