"""Ollama-dialect resources: ``/api/chat``, ``/api/generate``, ``/api/embed(dings)``,
``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version`` and ``/``."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from app import listing
from app.dialects import ollama as dialect
from app.http.common import json_response, new_exchange, read_json, run, stream_response
from app.pipeline.core import Pipeline
from app.services import Services
from app.tagging import split_model_tag

# The Ollama API version we speak; clients such as Open WebUI parse it as dotted integers.
OLLAMA_API_VERSION = "0.12.6"


class RootResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Ollama is running"

    on_head = on_get


class VersionResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, {"version": OLLAMA_API_VERSION})

    on_head = on_get


class ChatResource:
    """``/api/chat`` and ``/api/generate``: same pipeline, two reply shapes."""

    def __init__(self, pipeline: Pipeline, services: Services, *, generate: bool) -> None:
        self.pipeline = pipeline
        self.services = services
        self.generate = generate

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        if self.generate:
            body, stream = dialect.parse_generate(native)
        else:
            body, stream = dialect.parse_chat(native)
        if dialect.is_load_request(native, generate=self.generate):
            await self._load(req, resp, body, native)
            return
        ex = new_exchange(req, dialect="ollama", kind="chat", body=body, stream=stream, native=native)
        reply = await run(self.pipeline, ex, resp)
        if reply.stream is not None:
            stream_response(resp, "application/x-ndjson", dialect.ndjson(ex, reply.stream, generate=self.generate))
        else:
            json_response(resp, dialect.whole(ex, reply.body or {}, generate=self.generate))

    async def _load(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, body: dict[str, Any], native: dict[str, Any]
    ) -> None:
        """A model load or unload: sent on to an Ollama server, whose reason comes back; any other
        provider has nothing to load, and is answered at once. One object, streamed or not."""
        target = self.services.resolver.resolve(split_model_tag(body["model"])[0])
        ex = new_exchange(req, dialect="ollama", kind="chat", body=body, stream=False, native=native)
        finish = None
        if target.provider.is_ollama:
            reply = await run(self.pipeline, ex, resp)
            choices = (reply.body or {}).get("choices") or [{}]
            finish = choices[0].get("finish_reason")
        json_response(resp, dialect.load_reply(ex, finish, generate=self.generate))


class EmbedResource:
    def __init__(self, pipeline: Pipeline, *, legacy: bool) -> None:
        self.pipeline = pipeline
        self.legacy = legacy

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        body = dialect.parse_embed(native, legacy=self.legacy)
        ex = new_exchange(req, dialect="ollama", kind="embedding", body=body, stream=False, native=native)
        reply = await run(self.pipeline, ex, resp)
        json_response(resp, dialect.embed_body(ex, reply.body or {}, legacy=self.legacy))


class TagsResource:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, listing.ollama_tags(self.services))


class ShowResource:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await read_json(req)
        target = self.services.resolver.resolve(split_model_tag(dialect.model_of(body))[0])
        json_response(resp, await listing.ollama_show(self.services, target))


class PsResource:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, await listing.ollama_ps(self.services))
