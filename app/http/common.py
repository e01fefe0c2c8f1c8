"""What both dialects' resources share: reading a body, starting an Exchange, running the
pipeline, and rendering every error in the caller's own dialect."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import quote

import falcon
import falcon.asgi
import orjson

from app.errors import BadRequest, ModelNotFound, RelayError, UnsupportedMediaType
from app.http.asgi import error_body, new_request_id
from app.http.refusals import Refusals
from app.internal import Reply, StreamItem
from app.pipeline.core import Exchange, Pipeline

log = logging.getLogger("llm_relay.http")


async def read_json(req: falcon.asgi.Request) -> Any:
    raw = await req.stream.read()
    content_type = (req.content_type or "").lower()
    if content_type.startswith("multipart/"):
        raise _not_json(content_type)
    encoding = (req.get_header("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":  # never expanded here: a small compressed body can be a huge one
        raise UnsupportedMediaType(f"Content-Encoding {encoding} is not accepted; send the body uncompressed")
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # ``curl -d '{...}'`` labels JSON as a form (Ollama's and this README's examples do, and
        # Ollama takes it): a form-labelled body is read as JSON, and refused only if it is not.
        if content_type.startswith("application/x-www-form-urlencoded"):
            raise _not_json(content_type) from None
        try:
            raw.decode()
        except UnicodeDecodeError as bad:
            raise BadRequest(f"the request body is not valid UTF-8 (at byte {bad.start})") from None
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    req.context.body = body  # for the row of a request refused before the pipeline runs
    return body


def header_text(value: str) -> str:
    """A header value made from what a client named (a model): percent-encoded unless ASCII,
    as a header cannot carry other text (and one that failed would fail the whole reply)."""
    return value if value.isascii() else quote(value, safe="/:@")


def _not_json(content_type: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"expected a JSON body, got {content_type.split(';')[0]}")


def new_exchange(
    req: falcon.asgi.Request,
    *,
    dialect: str,
    kind: str,
    body: dict[str, Any],
    stream: bool,
    native: dict[str, Any] | None = None,
) -> Exchange:
    headers = req.headers  # Falcon's ASGI names are lower-case already, and the dict is read-only here
    model = body.get("model")
    request_id = req.scope.get("state", {}).get("request_id") or new_request_id()
    return Exchange(
        request_id=request_id,
        dialect=dialect,
        endpoint=req.path,
        kind=kind,
        body=body,
        stream=stream,
        headers=headers,
        client=req.remote_addr or "",
        requested_model=model if isinstance(model, str) else "",
        native=native,
    )


async def run(pipeline: Pipeline, ex: Exchange, resp: falcon.asgi.Response) -> Reply:
    """Run the pipeline; the response carries the headers the stages set on the reply, and the
    request id and the resolved model even when it fails."""
    resp.context.relayed = True  # the cost stage files this request's row from here on
    try:
        reply = await pipeline.run(ex)
        for name, value in reply.headers.items():
            resp.set_header(name, value)
        return reply
    finally:
        if ex.target is not None:
            resp.set_header("X-Relay-Model", header_text(ex.target.label))
            resp.set_header("X-Relay-Route", ex.target.via)
        else:  # refused before a model was chosen (an unknown model, a bad key): as its row says
            resp.set_header("X-Relay-Route", "none")
        if ex.state.get("dropped_params"):
            resp.set_header("X-Relay-Dropped-Params", ",".join(ex.state["dropped_params"]))


async def serve_translated(
    pipeline: Pipeline,
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: Exchange,
    untranslatable: RelayError | None,
    events: Callable[[Exchange, AsyncGenerator[StreamItem, None]], AsyncGenerator[bytes, None]],
    whole: Callable[[Exchange, dict[str, Any]], Any],
) -> None:
    """A chat request of a dialect the relay translates (Anthropic's, the Responses API): the
    provider's own reply when it speaks that dialect, else the internal one rebuilt in it."""
    ex.untranslatable = untranslatable
    ex.passthrough = pipeline.passthrough
    reply = await run(pipeline, ex, resp)
    if reply.stream is not None:
        stream_response(resp, "text/event-stream", events(ex, reply.stream))
    elif reply.native:
        json_response(resp, reply.body)
    else:
        json_response(resp, whole(ex, reply.body or {}))


def stream_response(resp: falcon.asgi.Response, content_type: str, frames: AsyncGenerator[bytes, None]) -> None:
    resp.content_type = content_type
    resp.set_header("Cache-Control", "no-cache")
    resp.set_header("X-Accel-Buffering", "no")
    resp.stream = frames


def json_response(resp: falcon.asgi.Response, payload: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(payload)


def render_error(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: RelayError) -> None:
    json_response(resp, error_body(req.path, error), error.status)
    for name, value in error.headers.items():
        resp.set_header(name, value)


class ErrorHandlers:
    """Every error in the caller's dialect; an inference request refused before the pipeline
    ran still gets its row (app/http/refusals.py)."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def _record(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, error: RelayError) -> None:
        if resp.context.get("relayed"):
            return  # the cost stage filed it
        filed = self.refusals.record(
            path=req.path,
            request_id=req.scope.get("state", {}).get("request_id", ""),
            headers=req.headers,
            client=req.remote_addr or "",
            body=req.context.get("body"),
            error=error,
        )
        if filed:  # an inference request refused before any model was chosen, as its row says
            resp.set_header("X-Relay-Route", "none")

    async def relay_error(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, error: RelayError, params: dict[str, Any]
    ) -> None:
        render_error(req, resp, error)
        self._record(req, resp, error)

    async def http_error(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, error: falcon.HTTPError, params: dict[str, Any]
    ) -> None:
        """Falcon's own errors (no such route, wrong method) in the caller's dialect; no row, as
        no inference was asked for."""
        relay_error: RelayError
        if error.status_code == 404:
            relay_error = ModelNotFound(f"no such endpoint: {req.method} {req.path}", code="not_found")
        else:
            relay_error = BadRequest(error.title or "bad request")
        relay_error.status = error.status_code
        render_error(req, resp, relay_error)
        if isinstance(error.headers, dict):
            for name, value in error.headers.items():
                resp.set_header(name, value)

    async def unexpected(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: dict[str, Any]
    ) -> None:
        log.exception("unhandled error on %s %s", req.method, req.path)
        failure = RelayError(f"internal error ({type(error).__name__}); see the relay's log")
        render_error(req, resp, failure)
        self._record(req, resp, failure)
