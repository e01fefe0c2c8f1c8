"""What the relay writes to a client within one turn of the event loop leaves in one write: a
whole reply is one write, not its headers and then its body; a stream's next event, sent on a
later turn, is not held back; a close sends what is pending first. The protocol subclasses
uvicorn's, which setup.cfg pins to one minor version: these tests fail when uvicorn's writes
change under it.

The transport's writes are counted at the socket: a wrapped transport records each write the
protocol hands down to the real one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.http.protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.live import LiveServer


class Recorder:
    """A transport's stand-in that only records writes (the unit under test is the wrapper)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_of_one_turn_leave_together_and_later_ones_on_their_own() -> None:
    recorder = Recorder()
    transport = CoalescingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert recorder.writes == []  # not before the turn ends
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert recorder.writes[-1] == b"next"
    assert transport.get_extra_info("peername") == "info:peername"  # the rest is the real one's


async def test_close_sends_what_is_pending_and_nothing_is_written_after() -> None:
    recorder = Recorder()
    transport = CoalescingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert recorder.writes == [b"last words"] and recorder.closed
    transport.write(b"too late")
    await asyncio.sleep(0)
    assert recorder.writes == [b"last words"]


class Counted:
    """A transport that records what is written to it, the rest its wrapped one's."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: Any) -> None:
        CountingProtocol.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountingProtocol(CoalescingHttpToolsProtocol):
    """The relay's protocol, counting what reaches the real transport."""

    writes: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


@pytest.fixture
def counting_server():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        if scope["path"] == "/whole":
            await send({"type": "http.response.body", "body": b"all at once"})
            return
        for part in (b"one ", b"two "):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.05)  # the next event is not there yet
        await send({"type": "http.response.body", "body": b"three"})

    server = LiveServer(app, lifespan="off")
    server.server.config.http = CountingProtocol
    server.start()
    CountingProtocol.writes.clear()
    yield server
    server.stop()


def test_a_whole_reply_is_one_write_and_a_stream_is_not_held_back(counting_server: LiveServer) -> None:
    with httpx.Client(base_url=counting_server.url, timeout=5) as client:
        reply = client.get("/whole")
        assert reply.text == "all at once"
        [write] = CountingProtocol.writes
        assert write.startswith(b"HTTP/1.1 200 OK") and write.endswith(b"all at once\r\n0\r\n\r\n")
        CountingProtocol.writes.clear()
        with client.stream("GET", "/stream") as streamed:
            parts = streamed.iter_raw()
            first = next(parts)
            assert first == b"one "  # arrived before the rest was ready
            assert b"".join([first, *parts]) == b"one two three"
    # headers with the first part, then one write per later turn (the last part and the end together)
    assert len(CountingProtocol.writes) == 3, CountingProtocol.writes
