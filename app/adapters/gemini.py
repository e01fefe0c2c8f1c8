"""Google's Gemini API (``generativelanguage.googleapis.com``), spoken natively.

Chat and completion requests become ``generateContent`` / ``streamGenerateContent?alt=sse``
bodies, embeddings ``batchEmbedContents``; replies come back in the internal form with one
:class:`Usage` per report (Gemini repeats the cumulative counts on every streamed response).

Thought signatures must return with the function calls they came on. They ride in the tool
call id; clients that drop ids (the ollama SDK keeps none) are served from a small memory
keyed by everything that led to the call, so one conversation can never receive another's.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

import orjson

from app.adapters.base import Adapter, Call, is_json_type
from app.adapters.client import Opened, UpstreamClient
from app.adapters.failures import load_json
from app.adapters.images import ImageLimits, image_base64
from app.adapters.wire import split
from app.errors import BadRequest
from app.formats.gemini_reply import ReplyTranslator, embedding_reply
from app.formats.gemini_request import (
    build_request,
    completion_messages,
    embed_request,
    function_calls,
    split_call_id,
)
from app.formats.images import image_urls
from app.formats.json_array import JSONArraySplitter
from app.internal import Reply, StreamItem
from app.providers import Provider

# Google's documented stand-in for a signature we do not have; Gemini 3 refuses a replayed
# function call step without one, earlier models never ask.
SKIP_SIGNATURE = "skip_thought_signature_validator"
_STRICT_SIGNATURES = re.compile(r"^gemini-(\d+)")
_MAX_PAGES = 50  # the model list is a few pages; a server repeating itself must not loop us


def _needs_signature(model: str) -> bool:
    match = _STRICT_SIGNATURES.match(model)
    return match is not None and int(match.group(1)) >= 3


class SignatureMemory:
    """Recently seen signatures by call key, bounded (least recently used goes first)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()

    def remember(self, key: str, signature: str) -> None:
        self._items[key] = signature
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def recall(self, key: str) -> str | None:
        signature = self._items.get(key)
        if signature is not None:
            self._items.move_to_end(key)
        return signature


def call_key(model: str, request: dict[str, Any], upto: int, name: str, args: Any) -> str:
    """A function call's identity: the model, the instruction and every turn before it
    (signatures aside, as a replay may lack them), its name and its arguments."""
    history = [_unsigned(content) for content in request["contents"][:upto]]
    material = [model, request.get("systemInstruction"), history, name, args]
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _unsigned(content: dict[str, Any]) -> dict[str, Any]:
    parts = [{k: v for k, v in p.items() if k != "thoughtSignature"} for p in content.get("parts") or ()]
    return {**content, "parts": parts}


class GeminiAdapter(Adapter):
    def __init__(self, provider: Provider, http: UpstreamClient, images: ImageLimits | None = None) -> None:
        super().__init__(provider, http, images)
        self.signatures = SignatureMemory()

    def _headers(self, stream: bool = False) -> dict[str, str]:
        return self._json_headers(stream, {"x-goog-api-key": self.provider.api_key} if self.provider.api_key else {})

    def _url(self, model: str, method: str) -> str:
        # Google's own ids read "models/x"; a client copying one must not get models/models/x.
        return f"{self.provider.base_url}/v1beta/models/{model_segment(model)}:{method}"

    async def send(self, call: Call) -> Reply:
        if call.kind == "embedding":
            data = await self._post(self._url(call.model, "batchEmbedContents"), embed_request(call.body, call.model))
            return embedding_reply(data, call.model, call.body.get("encoding_format"))
        body = _with_native_options(call)
        if call.kind == "completion":
            body = {**body, "messages": completion_messages(body)}
        request = build_request(body, await self._images(body.get("messages")), call.catalog)
        self._sign(call.model, request)
        translate = ReplyTranslator(request_id=call.request_id, model=call.model, chat=call.kind == "chat")
        if not call.stream:
            reply = translate.whole(await self._post(self._url(call.model, "generateContent"), request))
            for choice in (reply.body or {}).get("choices") or ():
                self._remember(call.model, request, (choice.get("message") or {}).get("tool_calls"))
            return reply
        url = self._url(call.model, "streamGenerateContent") + "?alt=sse"
        opened = await self.http.stream(self.provider, url, orjson.dumps(request), self._headers(True))
        # Without alt=sse (or from a proxy that drops it) the stream is one JSON array.
        payloads = _array_items(opened) if is_json_type(opened.content_type) else _sse_items(opened)
        return Reply(stream=self._chunks(payloads, translate, call.model, request))

    async def _images(self, messages: Any) -> dict[str, tuple[str, str]]:
        """Gemini takes image bytes, never URLs: fetch them all, at once, before translating."""
        urls = image_urls(messages)
        found = await asyncio.gather(*(image_base64(self.http, url, self.images) for url in urls))
        return dict(zip(urls, found, strict=True))

    def _sign(self, model: str, request: dict[str, Any]) -> None:
        """Give back remembered signatures the client's ids did not carry; on Gemini 3, a
        step that still has none gets Google's stand-in on its first call."""
        steps: dict[int, list[dict[str, Any]]] = {}
        for index, part in function_calls(request["contents"]):
            steps.setdefault(index, []).append(part)
            if "thoughtSignature" not in part:
                call = part["functionCall"]
                signature = self.signatures.recall(call_key(model, request, index, call["name"], call["args"]))
                if signature:
                    part["thoughtSignature"] = signature
        if _needs_signature(model):
            for parts in steps.values():
                if not any("thoughtSignature" in p for p in parts):
                    parts[0]["thoughtSignature"] = SKIP_SIGNATURE

    def _remember(self, model: str, request: dict[str, Any], tool_calls: Any) -> None:
        for call in tool_calls or ():
            signature = split_call_id(str(call.get("id") or ""))[1]
            if signature:
                function = call.get("function") or {}
                args = orjson.loads(function.get("arguments") or "{}")
                key = call_key(model, request, len(request["contents"]), function.get("name", ""), args)
                self.signatures.remember(key, signature)

    async def _chunks(
        self, payloads: AsyncGenerator[bytes, None], translate: ReplyTranslator, model: str, request: dict[str, Any]
    ) -> AsyncGenerator[StreamItem, None]:
        objects = self._objects(payloads)
        try:
            async for data in objects:
                for item in translate.chunk(data):
                    if isinstance(item, dict):
                        for choice in item.get("choices") or ():
                            self._remember(model, request, (choice.get("delta") or {}).get("tool_calls"))
                    yield item
        finally:
            await objects.aclose()

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        return load_json(self.provider, await self.http.post(self.provider, url, orjson.dumps(body), self._headers()))

    async def list_models(self) -> list[dict[str, Any]]:
        """Every page of ``GET /v1beta/models``, ids without the ``models/`` prefix."""
        models: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
            url = f"{self.provider.base_url}/v1beta/models"
            response = await self._control("GET", url, params=params, headers=self._headers())
            data = load_json(self.provider, response.content)
            data = data if isinstance(data, dict) else {}
            for model in data.get("models") or ():
                if isinstance(model, dict) and isinstance(model.get("name"), str):
                    models.append({**model, "id": model["name"].removeprefix("models/")})
            token = data.get("nextPageToken") or None
            if not isinstance(token, str) or token in seen:
                break
            seen.add(token)
        return models


def _with_native_options(call: Call) -> dict[str, Any]:
    """top_k has no OpenAI name, so the Ollama dialect leaves it in the client's options."""
    options = (call.native or {}).get("options") if call.dialect == "ollama" else None
    if isinstance(options, dict) and options.get("top_k") is not None and call.body.get("top_k") is None:
        return {**call.body, "top_k": options["top_k"]}
    return call.body


def model_segment(model: str) -> str:
    """The model id as one path segment of Google's URL; a name that could leave ``models/``
    (a slash, a dot segment, a query) is refused rather than sent with the operator's key."""
    name = model.removeprefix("models/")
    if not name or name in (".", "..") or any(c in name for c in "/\\?#%") or not name.isprintable():
        raise BadRequest(f"{model!r} is not a Gemini model id", param="model")
    return quote(name, safe="-._~@")


async def _sse_items(opened: Opened) -> AsyncGenerator[bytes, None]:
    events = opened.sse()
    try:
        async for event in events:
            data = event.data.strip()
            if data and data != "[DONE]":  # Gemini sends no [DONE]; a proxy in between might
                yield data.encode()
    finally:
        await events.aclose()


def _array_items(opened: Opened) -> AsyncGenerator[bytes, None]:
    return split(opened.chunks, JSONArraySplitter(opened.client.limits.max_event_bytes))
