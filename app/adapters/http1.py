"""The relay's HTTP/1.1 client for provider calls: keep-alive connections per origin, each
request written in one system call, replies parsed by httptools (llhttp, the parser uvicorn
uses for the relay's own inbound requests).

Why not aiohttp's client: on the bench's upstream at 32 concurrent, one core, aiohttp's
``session.post`` costs ~68 us of CPU per call (ClientRequest and ClientResponse objects, a
timeout context, tracing hooks, a payload registry, a stream reader); this client ~15 us, a
quarter of what the relay spends on a proxied request. aiohttp stays for what this does not
do: requests through an HTTP proxy (:mod:`app.adapters.transport`).

Failures are raised as httpx's exceptions, which every adapter already maps to the relay's
upstream errors (a refused connection is ``ConnectError``: a 502 the retry layer may retry).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httptools
import httpx

from app.adapters.http1_reply import Headers, Reply
from app.adapters.http1_request import Origin, request_head, split_url

__all__ = ["Connection", "Headers", "Pool", "Reply", "request_head", "split_url"]


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one reply at a time."""

    __slots__ = ("idle_since", "loop", "lost", "origin", "parser", "pool", "reply", "reusable", "transport")

    def __init__(self, pool: Pool, origin: Origin, *, reusable: bool = True) -> None:
        assert pool.loop is not None  # made by the pool, in the running loop
        self.loop = pool.loop
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reply: Reply | None = None
        self.lost = False
        self.reusable = reusable  # False: closed after its one reply (see Pool.request's connect_to)
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reply = self.reply
        if reply is None or reply.complete:
            self.close()  # bytes nobody asked for: this connection can't be trusted with the next reply
            return
        reply.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            reply.fail(httpx.RemoteProtocolError(f"malformed HTTP reply ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.forget(self)
        reply = self.reply
        if reply is not None and not reply.complete:
            if reply.status and reply.until_eof:
                reply.finish(keep_alive=False)  # a body delimited by the end of the connection
            else:
                reply.fail(httpx.RemoteProtocolError("the server closed the connection before its reply was complete"))

    def pause_writing(self) -> None:  # request bodies are written whole; the transport buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        reply = self.reply
        if reply is not None and not reply.complete:
            reply.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        reply = self.reply
        assert reply is not None
        if reply.complete:  # a second reply nobody asked for, in the same read: not to be trusted
            self.close()
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational (103 Early Hints): the reply proper follows
            reply.raw_headers.clear()
            return
        reply.headers_complete(status)

    def on_body(self, body: bytes) -> None:
        reply = self.reply
        if reply is not None and not reply.complete:
            reply.feed(body)

    def on_message_complete(self) -> None:
        reply = self.reply
        assert reply is not None
        if reply.status and not reply.complete:  # not an informational reply's end, nor an unasked one's
            reply.finish(keep_alive=self.parser.should_keep_alive())

    def send(self, data: bytes, body: bytes, decode: bool, read_timeout: float | None) -> Reply:
        assert self.transport is not None
        self.reply = Reply(self, decode, read_timeout)
        if len(body) <= 65536:
            self.transport.write(data + body)
        else:  # no copy of a large body (images): two writes
            self.transport.write(data)
            self.transport.write(body)
        return self.reply

    def done(self, reply: Reply) -> None:
        """The reply's reader is done with it: back to the pool when it ended cleanly."""
        if self.reply is not reply:
            return
        self.reply = None
        if reply.complete and reply.keep_alive and reply.error is None and not self.lost and self.reusable:
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Pool:
    """Connections per origin, at most ``max_connections`` open in all; idle ones are reused
    newest first and dropped after ``keepalive_expiry`` seconds."""

    def __init__(self, timeout: httpx.Timeout, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self.connect_timeout = timeout.connect
        self.read_timeout = timeout.read
        self.pool_timeout = timeout.pool
        self.max_connections = limits.max_connections or 1_000_000
        self.max_idle = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else 1_000_000
        self.keepalive_expiry = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._ssl = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._open: set[Connection] = set()
        self._connecting = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the running loop, taken on first use

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # the system's CAs (SSL_CERT_FILE honoured), as aiohttp
        return self._ssl

    async def request(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes = b"",
        *,
        decode: bool = True,
        timeouts: dict[str, float | None] | None = None,
        connect_to: str | None = None,
    ) -> Reply:
        """Send a request; returns once the reply's status and headers are in. ``connect_to``
        (an IP address) is where to connect instead of resolving the URL's host, on a connection
        of its own that is closed after the reply: the caller has checked that address."""
        origin, host, target = split_url(url)
        head = request_head(method, target, host, headers, body, decode)
        connect = timeouts.get("connect", self.connect_timeout) if timeouts else self.connect_timeout
        read = timeouts.get("read", self.read_timeout) if timeouts else self.read_timeout
        pool = timeouts.get("pool", self.pool_timeout) if timeouts else None
        connection = await self._acquire(origin, connect, pool, connect_to)
        reply = connection.send(head, body, decode, read)
        try:
            await reply.wait_headers()
        except BaseException:
            reply.close()
            raise
        return reply

    async def _acquire(
        self, origin: Origin, connect: float | None, pool: float | None, address: str | None = None
    ) -> Connection:
        """An idle connection to the origin, else a new one once there is room for it."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        deadline = None
        while True:
            idle = self._idle.get(origin) if address is None else None
            while idle:
                connection = idle.pop()
                self._idle_count -= 1
                usable = not connection.lost and not connection.transport.is_closing()  # type: ignore[union-attr]
                if usable and self.loop.time() - connection.idle_since < self.keepalive_expiry:
                    return connection  # (closing: the server's FIN is in, connection_lost not yet)
                self._open.discard(connection)  # counted as gone now; connection_lost follows
                connection.close()
            if len(self._open) + self._connecting < self.max_connections:
                return await self._connect(origin, connect, address)
            if self._idle_count:  # idle connections to other origins give way
                self._close_oldest_idle()
                continue
            if deadline is None:
                wait = pool if pool is not None else self.pool_timeout
                deadline = self.loop.time() + (wait if wait is not None else 86400.0)
            await self._wait_for_room(deadline)

    async def _connect(self, origin: Origin, timeout: float | None, address: str | None = None) -> Connection:
        assert self.loop is not None
        self._connecting += 1
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                _, connection = await self.loop.create_connection(
                    lambda: Connection(self, origin, reusable=address is None),
                    address or host,
                    port,
                    ssl=self.ssl_context if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except BaseException as exc:
            self._connecting -= 1
            self._wake_one()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s") from exc
            if isinstance(exc, OSError):  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
                raise httpx.ConnectError(f"{host}:{port}: {exc}") from exc
            raise
        self._connecting -= 1
        self._open.add(connection)
        return connection

    async def _wait_for_room(self, deadline: float) -> None:
        assert self.loop is not None
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"all {self.max_connections} upstream connections busy") from exc
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _close_oldest_idle(self) -> None:
        origin, oldest = min(
            ((origin, connections[0]) for origin, connections in self._idle.items() if connections),
            key=lambda pair: pair[1].idle_since,
        )
        self._idle[origin].remove(oldest)
        self._idle_count -= 1
        self._open.discard(oldest)  # counted as gone now; connection_lost follows
        oldest.close()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def put(self, connection: Connection) -> None:
        if self._idle_count >= self.max_idle:
            connection.close()
            return
        assert self.loop is not None
        connection.idle_since = self.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        self._wake_one()

    def forget(self, connection: Connection) -> None:
        """The connection is gone (closed by either side)."""
        if connection in self._open:
            self._open.discard(connection)
            idle = self._idle.get(connection.origin)
            if idle and connection in idle:
                idle.remove(connection)
                self._idle_count -= 1
            self._wake_one()

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        self._idle_count = 0
        await asyncio.sleep(0)  # let the transports run their connection_lost
