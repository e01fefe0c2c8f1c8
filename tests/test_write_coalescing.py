"""Body parts a streaming response sends within one turn of the event loop reach the server as
one write; parts sent on later turns are not held back; a client that reads slowly holds the
app back (backpressure); a write that fails stops the app. Observed at the ASGI boundary: the
``send`` below records what uvicorn would be asked to write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.http.asgi import DisconnectAware

Message = dict[str, Any]


class Server:
    """The server's side of ASGI: hands over the request, records every message written."""

    def __init__(self) -> None:
        self.written: list[Message] = []
        self.gate: asyncio.Event | None = None  # while set to an unset event, writes block
        self.fail: BaseException | None = None

    async def receive(self) -> Message:
        if not getattr(self, "_sent_body", False):
            self._sent_body = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(self, message: Message) -> None:
        if self.fail is not None and message["type"] == "http.response.body":
            raise self.fail
        if self.gate is not None and message["type"] == "http.response.body":
            await self.gate.wait()
        self.written.append(message)

    def bodies(self) -> list[bytes]:
        return [m.get("body", b"") for m in self.written if m["type"] == "http.response.body"]


SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


async def serve(app: Any, server: Server) -> None:
    await DisconnectAware(app, max_body_bytes=1 << 20)(dict(SCOPE), server.receive, server.send)


def start() -> Message:
    return {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}


def part(data: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def test_a_burst_leaves_in_one_write_with_the_end_of_the_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        for data in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
            await send(part(data))
        await send(part(b"", more=False))

    server = Server()
    await serve(app, server)
    assert server.bodies() == [b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"]
    assert server.written[-1]["more_body"] is False
    assert (b"x-request-id", server.written[0]["headers"][-1][1]) == server.written[0]["headers"][-1]


async def test_parts_on_later_turns_are_written_as_they_come() -> None:
    seen_before_next: list[list[bytes]] = []
    server = Server()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        for data in (b"data: 1\n\n", b"data: 2\n\n"):
            await send(part(data))
            await asyncio.sleep(0.01)  # the upstream's next event is not there yet
            seen_before_next.append(server.bodies())
        await send(part(b"", more=False))

    await serve(app, server)
    assert seen_before_next == [[b"data: 1\n\n"], [b"data: 1\n\n", b"data: 2\n\n"]]
    assert server.bodies() == [b"data: 1\n\n", b"data: 2\n\n", b""]


async def test_a_slow_client_holds_the_app_back() -> None:
    server = Server()
    progress: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        for n in range(3):
            await send(part(b"x" * 10))
            progress.append(n)
            await asyncio.sleep(0)
        await send(part(b"", more=False))

    server.gate = asyncio.Event()
    task = asyncio.create_task(serve(app, server))
    await asyncio.sleep(0.05)
    assert progress == [0]  # its first write waits for the client; the next send() waits with it
    assert server.bodies() == []
    server.gate.set()
    await asyncio.wait_for(task, 1)
    assert progress == [0, 1, 2]
    assert b"".join(server.bodies()) == b"x" * 30


async def test_a_failed_write_stops_the_app() -> None:
    server = Server()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        await send(part(b"data: 1\n\n"))
        server.fail = ConnectionResetError("gone")
        await asyncio.sleep(0.01)  # the queued part is written (and fails) at the end of the turn
        await send(part(b"data: 2\n\n"))
        raise AssertionError("send() should have raised")

    with pytest.raises(ConnectionResetError):
        await serve(app, server)
