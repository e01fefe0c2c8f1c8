"""The test servers' own helper: a server's port is held from the moment it is chosen, so no
other socket (a connection's local end comes from the same range) can take it before the
server listens; once the port was only found free, and a test failed with "address already
in use"."""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import pytest

from tests.live import LiveServer


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_both_ports_are_held_before_the_servers_start_and_served_after() -> None:
    server = LiveServer(hello, lifespan="off", also=hello)
    for port in (server.port, int(server.also_url.rsplit(":", 1)[1])):
        with socket.socket() as intruder, pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
    server.start()
    try:
        for url in (server.url, server.also_url):
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert reply.read() == b"hello"
    finally:
        server.stop()
