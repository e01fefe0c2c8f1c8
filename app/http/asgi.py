"""An ASGI layer around the Falcon app that notices when a client goes away.

Falcon keeps iterating ``resp.stream`` after a disconnect (falconry/falcon#2015), and uvicorn's
``send`` silently does nothing by then, so the upstream would keep generating tokens nobody
reads. This layer reads the request body itself (enforcing the size limit), hands it to Falcon,
then watches the connection; when the client leaves before the response is complete it
cancels the request's task, which closes the upstream response at once and lets the pipeline
record a ``client_closed`` row.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from app.dialects import ollama as ollama_dialect
from app.dialects import openai as openai_dialect
from app.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


def dialect_of(path: str) -> str:
    return "ollama" if path.startswith("/api/") or path == "/" else "openai"


class DisconnectAware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Every response, errors included, carries the id its usage row is filed under.
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        send = _with_request_id(send, request_id.encode())
        body = await self._read_body(receive)
        if body is None:
            return  # the client left before sending its whole request
        if len(body) > self.max_body_bytes:
            await self._too_large(scope, send)
            return
        await self._serve(scope, body, receive, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        parts = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_body_bytes:
                parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts) if size <= self.max_body_bytes else b"\0" * (self.max_body_bytes + 1)

    async def _serve(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        delivered = False
        complete = False

        async def app_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def app_send(message: Message) -> None:
            nonlocal complete
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        app_task = asyncio.ensure_future(self.app(scope, app_receive, app_send))
        watch_task = asyncio.ensure_future(receive())
        try:
            await asyncio.wait((app_task, watch_task), return_when=asyncio.FIRST_COMPLETED)
            if not app_task.done() and not complete:
                # Only a disconnect (or a response already complete) ends uvicorn's receive here.
                gone.set()
                app_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app_task
        finally:
            watch_task.cancel()
            if not app_task.done():
                app_task.cancel()

    async def _too_large(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
        payload = (
            ollama_dialect.error_body(error)
            if dialect_of(scope.get("path", "")) == "ollama"
            else openai_dialect.error_body(error)
        )
        data = orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _with_request_id(send: Send, request_id: bytes) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", request_id))
            message = {**message, "headers": headers}
        await send(message)

    return sending
