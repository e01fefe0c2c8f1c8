"""The Responses API resource: ``POST /v1/responses`` (Codex CLI, the OpenAI Agents SDK and
``client.responses`` use it)."""

from __future__ import annotations

import falcon.asgi

from app.dialects import responses as dialect
from app.formats import responses_inbound as inbound
from app.http.common import json_response, new_exchange, read_json, run, stream_response
from app.pipeline.core import Pipeline


class ResponsesResource:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        native = await read_json(req)
        translated = inbound.internal_request(native)
        ex = new_exchange(
            req, dialect="responses", kind="chat", body=translated.body, stream=translated.stream, native=native
        )
        ex.untranslatable = translated.untranslatable
        ex.passthrough = self.pipeline.passthrough
        reply = await run(self.pipeline, ex, resp)
        if reply.stream is not None:
            stream_response(resp, "text/event-stream", dialect.events(ex, reply.stream, translated))
        elif reply.native:
            json_response(resp, reply.body)
        else:
            json_response(resp, dialect.whole(ex, reply.body or {}, translated))
