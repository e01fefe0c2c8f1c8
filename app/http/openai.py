"""OpenAI-dialect resources: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/models``."""

from __future__ import annotations

import falcon.asgi

from app import listing
from app.dialects import openai as dialect
from app.errors import ModelNotFound, RelayError
from app.http.common import json_response, new_exchange, read_json, run, stream_response
from app.pipeline.core import Pipeline
from app.services import Services


class InferenceResource:
    def __init__(self, pipeline: Pipeline, kind: str) -> None:
        self.pipeline = pipeline
        self.kind = kind

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await read_json(req)
        stream = dialect.check_request(self.kind, body)
        ex = new_exchange(req, dialect="openai", kind=self.kind, body=body, stream=stream)
        ex.include_usage = dialect.wants_usage(body)
        ex.passthrough = self.pipeline.passthrough
        reply = await run(self.pipeline, ex, resp)
        if reply.stream is not None:
            stream_response(resp, "text/event-stream", dialect.sse(ex, reply.stream))
        else:
            json_response(resp, dialect.body_with_cost(ex, dialect.complete_choices(reply.body)))


class ModelsResource:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, listing.openai_models(self.services))

    async def on_get_model(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, model_id: str) -> None:
        try:
            target = self.services.resolver.resolve(model_id)
        except RelayError:
            raise ModelNotFound(f"model {model_id!r} not found", param="model") from None
        if target.via == "default":
            raise ModelNotFound(f"model {model_id!r} not found", param="model")
        json_response(resp, listing.openai_model(model_id, target.provider.name))
