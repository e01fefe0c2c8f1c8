"""The Responses API resources: ``POST /v1/responses`` (Codex CLI, the OpenAI Agents SDK and
``client.responses`` use it), ``POST /v1/responses/input_tokens``, and the stored responses
OpenAI keeps (``GET``/``DELETE /v1/responses/{id}``, ``POST .../cancel``, ``GET
.../input_items``), passed on to OpenAI: the relay itself stores no conversation."""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

import falcon.asgi

from app.adapters import OpenAICompatAdapter
from app.dialects import responses as dialect
from app.dialects import responses_stream
from app.errors import ModelNotFound
from app.formats import responses_inbound as inbound
from app.formats.token_count import estimate_chat_input_tokens
from app.http.anthropic import ESTIMATE_HEADER
from app.http.common import header_text, json_response, new_exchange, read_json, serve_translated
from app.pipeline.core import Pipeline
from app.pipeline.stages.tags import authenticate
from app.services import Services
from app.tagging import split_model_tag


class ResponsesResource:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        translated = inbound.internal_request(native)
        ex = new_exchange(
            req, dialect="responses", kind="chat", body=translated.body, stream=translated.stream, native=native
        )
        await serve_translated(
            self.pipeline,
            req,
            resp,
            ex,
            translated.untranslatable,
            partial(responses_stream.events, translated=translated),
            partial(dialect.whole, translated=translated),
        )


class InputTokensResource:
    """``POST /v1/responses/input_tokens``: OpenAI's own count for its models; for any other an
    estimate that errs high and says so in ``X-Relay-Token-Count: estimate``."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        translated = inbound.internal_request(native)  # checked as a request would be
        authenticate(self.services, req.headers)
        target = self.services.resolver.resolve(split_model_tag(native["model"])[0])
        adapter = self.services.upstreams.adapter(target.provider.name)
        resp.set_header("X-Relay-Model", header_text(target.label))
        if isinstance(adapter, OpenAICompatAdapter) and adapter.speaks("responses"):
            counted = await adapter.count_input_tokens({**native, "model": target.model})
            resp.set_header(ESTIMATE_HEADER, "provider")
        else:
            counted = {"input_tokens": estimate_chat_input_tokens(translated.body)}
            resp.set_header(ESTIMATE_HEADER, "estimate")
        json_response(resp, {"object": "response.input_tokens", "input_tokens": counted["input_tokens"]})


class StoredResponseResource:
    """``/v1/responses/{response_id}`` and its ``cancel`` and ``input_items``: OpenAI's own."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def _pass(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, method: str, path: str) -> None:
        authenticate(self.services, req.headers)
        upstreams = self.services.upstreams
        adapter = upstreams.adapter("openai") if upstreams.get("openai") is not None else None
        if not isinstance(adapter, OpenAICompatAdapter):
            raise ModelNotFound("no stored responses here: the relay keeps none, and OpenAI is not configured")
        json_response(resp, await adapter.stored_response(method, path, req.params))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, response_id: str) -> None:
        await self._pass(req, resp, "GET", f"/{quote(response_id, safe='')}")

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, response_id: str) -> None:
        await self._pass(req, resp, "DELETE", f"/{quote(response_id, safe='')}")

    async def on_post_cancel(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, response_id: str) -> None:
        await self._pass(req, resp, "POST", f"/{quote(response_id, safe='')}/cancel")

    async def on_get_input_items(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, response_id: str) -> None:
        await self._pass(req, resp, "GET", f"/{quote(response_id, safe='')}/input_items")
