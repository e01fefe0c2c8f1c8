"""uvicorn's httptools protocol, with what it writes within one turn of the event loop sent in
one system call at the end of that turn.

uvicorn writes a response's status line and headers on ``http.response.start`` and its body on
``http.response.body``: two writes, and on a TCP socket each one runs the kernel's send path
(over loopback, the receiver's too). A reply that is ready at once (the usual non-streaming
case) now leaves in one write, as aiohttp's server sends it. A part that is not ready in the
same turn, such as a stream's next event, is not held back: it leaves at the end of its turn.

``HttpToolsProtocol`` is not part of uvicorn's documented API: setup.cfg pins uvicorn to one
minor version, and tests/test_write_coalescing.py fails when its writes change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes are joined until the end of the current loop turn; everything
    else is the wrapped transport's own (a close sends what is pending first)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # an upgrade hands the connection over: what was said so far goes first
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)  # type: ignore[arg-type]
