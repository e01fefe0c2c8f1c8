"""Real servers for tests: uvicorn on a random loopback port, in its own thread and loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvicorn

from app.http.protocol import CoalescingHttpToolsProtocol as RELAY_PROTOCOL  # what llm-relay serve runs

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A loopback socket bound to a port of the kernel's choosing, kept for the server: a port
    only found free could be taken (by a connection's local end) before the server binds it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    def __init__(self, app: Any, *, lifespan: str = "on", also: Any = None) -> None:
        """``also``: a second app (the admin UI) served on its own port by the same loop."""
        self.app = app
        self.sockets = [bound_socket()]
        self.port = int(self.sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan=lifespan, log_level="warning", http=RELAY_PROTOCOL
        )
        self.server = uvicorn.Server(config)
        self.others: list[uvicorn.Server] = []
        self.also_url = ""
        if also is not None:
            self.sockets.append(bound_socket())
            port = int(self.sockets[-1].getsockname()[1])
            self.also_url = f"http://127.0.0.1:{port}"
            other = uvicorn.Config(also, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
            self.others.append(uvicorn.Server(other))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # The loop llm-relay serve runs (uvloop): on the standard library's, every reply of
        # uvicorn's protocol here waited ~40 ms for a delayed ACK.
        self.loop = (self.server.config.get_loop_factory() or asyncio.new_event_loop)()
        asyncio.set_event_loop(self.loop)
        try:
            from app.server import serve_all

            self.loop.run_until_complete(serve_all([self.server, *self.others], [[sock] for sock in self.sockets]))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            for sock in self.sockets:
                sock.close()

    def start(self) -> LiveServer:
        self._thread.start()
        for _ in range(500):
            if self.server.started and all(s.started for s in self.others):
                return self
            if not self._thread.is_alive():
                raise RuntimeError("the server failed to start (see the log above)")
            threading.Event().wait(0.01)
        raise RuntimeError("the server did not start within 5 s")

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's own loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(_wrap(factory), self.loop).result(timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


async def _wrap(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()
