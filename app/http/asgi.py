"""An ASGI layer around the Falcon app that notices when a client goes away.

Falcon keeps iterating ``resp.stream`` after a disconnect (falconry/falcon#2015), and uvicorn's
``send`` silently does nothing by then, so the upstream would keep generating tokens nobody
reads. This layer reads the request body itself (enforcing the size limit), hands it to Falcon,
then watches the connection; when the client leaves before the response is complete it
cancels the request's task, which closes the upstream response at once and lets the pipeline
record a ``client_closed`` row. A request the server cancels at shutdown, once its grace period
is over, is answered with a 503 in the caller's dialect if its reply had not begun, or its stream
ends with the dialect's error event (its row says ``shutdown``), and the server waits for it to
end (app/inflight.py).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from app.dialects import anthropic as anthropic_dialect
from app.dialects import ollama as ollama_dialect
from app.dialects import openai as openai_dialect
from app.errors import Overloaded, PayloadTooLarge, RelayError, ShuttingDown
from app.inflight import InFlight

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
Refused = Callable[[Scope, str, RelayError], bool]  # files the row of an inference request: True when it did


def new_request_id() -> str:
    """32 hex characters, random: unique across processes and restarts, and no secret (every
    response carries its own)."""
    return secrets.token_hex(16)


def dialect_of(path: str) -> str:
    if path.startswith("/api/") or path == "/":
        return "ollama"
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def error_body(path: str, error: RelayError) -> dict[str, Any]:
    """An error in the dialect of the endpoint it happened on."""
    dialect = dialect_of(path)
    if dialect == "ollama":
        return ollama_dialect.error_body(error)
    if dialect == "anthropic":
        return anthropic_dialect.error_body(error)
    return openai_dialect.error_body(error)


def stream_error(path: str, error: RelayError) -> bytes:
    """The last frame of a reply the relay itself cut off (a shutdown), in the endpoint's dialect,
    as each ends a stream that fails: the client sees an error, not a dropped connection."""
    body = error_body(path, error)
    dialect = dialect_of(path)
    if dialect == "ollama":
        return orjson.dumps(body) + b"\n"
    if dialect == "anthropic":
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    if path.startswith("/v1/responses"):
        return b"event: error\ndata: " + orjson.dumps({"type": "error", **body}) + b"\n\n"
    return b"data: " + orjson.dumps(body) + b"\n\ndata: [DONE]\n\n"


class DisconnectAware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, refused: Refused | None = None, requests: InFlight | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.refused = refused  # files the row of a refused inference request
        self.requests = requests or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Every response, errors included, carries the id its usage row is filed under.
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        task = asyncio.current_task()
        assert task is not None
        self.requests.tasks.add(task)
        body = _Body()
        try:
            # A body whose length is declared is refused, if it must be, before any of it is read
            # (the server drops what the client still sends).
            declared = content_length(scope)
            refusal = self._refusal(declared or 0, body)
            if refusal is None:
                refusal = await self._read_body(receive, body)
            if body.left:
                return  # the client left before sending its whole request
            if refusal is not None:
                # Its row is on file before the reply leaves.
                filed = self.refused is not None and self.refused(scope, request_id, refusal)
                await send_error(scope, send, refusal, request_id.encode(), route="none" if filed else None)
                return
            connection = _Connection(b"".join(body.parts), send, request_id.encode(), self.requests)
            body.parts = []
            await connection.serve(self.app, scope, receive, asyncio.get_running_loop())
        finally:
            self.requests.release(body.held)
            self.requests.tasks.discard(task)

    def _refusal(self, size: int, body: _Body) -> RelayError | None:
        """Why a body of ``size`` bytes (so far) cannot be taken; None: its bytes are counted in."""
        if size > self.max_body_bytes:
            return PayloadTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
        if size > body.held:
            if not self.requests.reserve(size - body.held):
                return Overloaded(
                    f"the relay holds {self.requests.body_budget} bytes of request bodies already "
                    "(MAX_INFLIGHT_BODY_BYTES); retry shortly"
                )
            body.held = size
        return None

    async def _read_body(self, receive: Receive, body: _Body) -> RelayError | None:
        """Read the whole body into ``body``; once it is refused, the rest is read and dropped."""
        size = 0
        refusal = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body.left = True
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            refusal = refusal or self._refusal(size, body)
            if refusal is None:
                body.parts.append(chunk)
            else:
                body.parts = []
            if not message.get("more_body", False):
                return refusal


class _Body:
    """A request body as it is read, and the bytes counted for it in flight."""

    __slots__ = ("held", "left", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.held = 0
        self.left = False  # the client left before sending it all


def content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def send_error(
    scope: Scope, send: Send, error: RelayError, request_id: bytes | None = None, route: str | None = None
) -> None:
    """A whole error response, in the dialect of the endpoint, with the error's own headers."""
    data = orjson.dumps(error_body(scope.get("path", ""), error))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    if route is not None:
        headers.append((b"x-relay-route", route.encode()))
    headers += [(name.encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


SHUTTING_DOWN = ShuttingDown("the relay is shutting down; retry the request")

# The watch on the client starts this long into a request: a quick reply (a cache, an error, an
# emulated upstream) never pays for the extra task, and a hang-up during a real model call,
# which takes far longer, is noticed at most this much later.
WATCH_AFTER = 0.02


class _Connection:
    """One request's connection: the body already read, the response's progress, and the
    watch on the client. The Falcon app runs in the request's own task; after WATCH_AFTER one
    more task waits on uvicorn's ``receive``, which (the body being read) returns only once the
    client has gone or the response is complete. A client gone first cancels the request's
    task: the upstream response is closed at once and the pipeline records a ``client_closed``
    row."""

    __slots__ = (
        "body",
        "complete",
        "finished",
        "gone",
        "left",
        "request_id",
        "requests",
        "started",
        "task",
        "transport_receive",
        "transport_send",
        "watch",
    )

    def __init__(self, body: bytes, send: Send, request_id: bytes, requests: InFlight) -> None:
        self.body: bytes | None = body
        self.transport_send = send
        self.transport_receive: Receive | None = None
        self.request_id = request_id
        self.requests = requests
        self.started = False  # the response's status was sent
        self.complete = False  # the last body message was sent
        self.finished = False  # the app returned
        self.gone = False  # the client left first
        self.left: asyncio.Event | None = None  # made only if the app asks for a second message
        self.task: asyncio.Task[Any] | None = None
        self.watch: asyncio.Future[Message] | None = None

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, loop: asyncio.AbstractEventLoop) -> None:
        self.task = asyncio.current_task(loop)
        self.transport_receive = receive
        timer = loop.call_later(WATCH_AFTER, self._start_watch)
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            if self.task is None or not (self.gone or self.requests.stopping):
                raise  # not ours, nor the server's shutdown
            # Handled: the pipeline has recorded the hang-up, or the shutdown.
            self.task.uncancel()
            if not self.gone and not self.started:
                await send_error(scope, self.send, SHUTTING_DOWN)
            elif not self.gone and not self.complete:  # a stream under way ends with its dialect's error
                frame = stream_error(scope.get("path", ""), SHUTTING_DOWN)
                await self.send({"type": "http.response.body", "body": frame, "more_body": False})
        finally:
            self.finished = True
            timer.cancel()
            if self.watch is not None:
                self.watch.cancel()

    def _start_watch(self) -> None:
        if self.finished or self.transport_receive is None:
            return
        self.watch = asyncio.ensure_future(self.transport_receive())
        self.watch.add_done_callback(self._watched)

    def _watched(self, watch: asyncio.Future[Message]) -> None:
        if self.finished or self.complete or watch.cancelled() or watch.exception() is not None:
            return
        self.gone = True
        if self.left is not None:
            self.left.set()
        if self.task is not None:
            self.task.cancel()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.gone:
            if self.left is None:
                self.left = asyncio.Event()
            await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", self.request_id))
            message = {**message, "headers": headers}
        elif not message.get("more_body", False):
            self.complete = True
        # What is sent within one loop turn leaves in one write (app/http/protocol.py).
        await self.transport_send(message)
