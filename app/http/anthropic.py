"""Anthropic-dialect resources: ``/v1/messages`` and ``/v1/messages/count_tokens`` (Claude
Code adds ``?beta=true`` to both; the query changes nothing here)."""

from __future__ import annotations

import falcon.asgi

from app.adapters import Call
from app.dialects import anthropic as dialect
from app.formats import anthropic_inbound as inbound
from app.formats.token_count import estimate_input_tokens
from app.http.common import header_text, json_response, new_exchange, read_json, serve_translated
from app.pipeline.core import Pipeline
from app.pipeline.stages.tags import authenticate
from app.services import Services
from app.tagging import split_model_tag

ESTIMATE_HEADER = "X-Relay-Token-Count"


class MessagesResource:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        translated = inbound.internal_request(native)
        ex = new_exchange(
            req, dialect="anthropic", kind="chat", body=translated.body, stream=translated.stream, native=native
        )
        await serve_translated(self.pipeline, req, resp, ex, translated.untranslatable, dialect.events, dialect.whole)


class CountTokensResource:
    """Anthropic's own count for its models; for any other, an estimate that errs high and says
    so in ``X-Relay-Token-Count: estimate`` (clients compact by it: a low count fails later)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        translated = inbound.counted_request(native)
        internal = translated.body
        authenticate(self.services, req.headers)
        target = self.services.resolver.resolve(split_model_tag(internal["model"])[0])
        adapter = self.services.upstreams.adapter(target.provider.name)
        if translated.untranslatable is not None and not adapter.speaks("anthropic"):
            raise translated.untranslatable
        call = Call(
            model=target.model,
            kind="chat",
            body=internal,
            stream=False,
            request_id=req.scope.get("state", {}).get("request_id", ""),
            native=native,
            dialect="anthropic",
            headers=req.headers,
        )
        counted = await adapter.count_tokens(call)
        resp.set_header("X-Relay-Model", header_text(target.label))
        if counted is not None:
            resp.set_header(ESTIMATE_HEADER, "provider")
            json_response(resp, {"input_tokens": counted["input_tokens"]})
            return
        resp.set_header(ESTIMATE_HEADER, "estimate")
        json_response(resp, {"input_tokens": estimate_input_tokens(native)})
