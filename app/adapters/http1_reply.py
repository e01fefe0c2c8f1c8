"""One reply on a connection of :mod:`app.adapters.http1`: filled by the connection's parser,
read whole or chunk by chunk by the adapter that asked for it."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from app.adapters.http1 import Connection

PAUSE_AT = 256 * 1024  # bytes waiting for a slow reader before the socket stops being read
DRAIN_BYTES = 65536  # what may follow a stream's own end before the connection is given up
DRAIN_SECONDS = 2.0
_DECODERS = {b"gzip": 47, b"x-gzip": 47, b"deflate": 15}  # zlib wbits (47: gzip or zlib header)


class Headers:
    """A reply's headers as received; looked up rarely (content type, Retry-After), so a scan."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode()
        for found, value in self.raw:
            if found.lower() == key:
                return value.decode("latin-1")
        return default


class Reply:
    __slots__ = (
        "buffered",
        "chunks",
        "complete",
        "connection",
        "decode",
        "decoder",
        "draining",
        "error",
        "keep_alive",
        "last_read",
        "paused",
        "raw_headers",
        "read_timeout",
        "status",
        "timer",
        "until_eof",
        "waiter",
    )

    def __init__(self, connection: Connection, decode: bool, read_timeout: float | None) -> None:
        self.connection = connection
        self.decode = decode
        self.read_timeout = read_timeout
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.until_eof = False
        self.paused = False
        self.draining = False
        self.decoder: zlib._Decompress | None = None
        self.last_read = connection.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[None] | None = None

    @property
    def headers(self) -> Headers:
        return Headers(self.raw_headers)

    # Filled by the connection

    def headers_complete(self, status: int) -> None:
        self.status = status
        length = chunked = False
        encoding = b""
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = True
            elif lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"content-encoding":
                encoding = value.strip().lower()
        self.until_eof = not length and not chunked and status not in (204, 304) and status >= 200
        if self.decode and encoding and encoding != b"identity":
            wbits = _DECODERS.get(encoding)
            if wbits is None:
                self._abort(httpx.DecodingError(f"unsupported content-encoding {encoding.decode('latin-1')!r}"))
                return
            self.decoder = zlib.decompressobj(wbits)
        self._wake()

    def feed(self, data: bytes) -> None:
        if self.decoder is not None:
            try:
                data = self.decoder.decompress(data)
            except zlib.error as exc:
                self._abort(httpx.DecodingError(f"undecodable reply body ({exc})"))
                return
        if self.draining:
            self.buffered += len(data)
            if self.buffered > DRAIN_BYTES:
                self.connection.close()
            return
        if data:
            self.chunks.append(data)
            self.buffered += len(data)
            if self.buffered > PAUSE_AT and not self.paused and self.connection.transport is not None:
                self.paused = True
                self.connection.transport.pause_reading()
            self._wake()

    def finish(self, *, keep_alive: bool) -> None:
        if self.decoder is not None and not self.draining:
            tail = self.decoder.flush()
            if tail:
                self.chunks.append(tail)
        self.complete = True
        self.keep_alive = keep_alive
        self._settled()

    def fail(self, error: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = error
            self._settled()

    def _settled(self) -> None:
        """Complete or failed: a reply being drained frees its connection, else its reader wakes."""
        if self.draining:
            self.close()
        else:
            self._stop_timer()
            self._wake()

    def _abort(self, error: Exception) -> None:
        self.fail(error)
        self.connection.close()  # whatever else comes on it can't be trusted

    # Read by the adapter

    async def wait_headers(self) -> None:
        while not self.status:
            if self.error is not None:
                raise self.error
            await self._wait()

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool (or is closed) however this ends."""
        try:
            while not self.complete:
                if self.error is not None:
                    raise self.error
                await self._wait()
            return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        finally:
            self.close()

    async def iter_chunks(
        self, translate: Callable[[httpx.HTTPError], Exception] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The body as it arrives (a failure raised as ``translate`` makes it, if given: one
        generator less per stream than wrapping this one). Stopping early closes the connection
        (so the provider stops generating), unless :meth:`release_at_end` was called first."""
        try:
            while True:
                if self.chunks:
                    chunks, self.chunks = self.chunks, []
                    self.buffered = 0
                    self._resume()
                    for chunk in chunks:
                        yield chunk
                elif self.complete:
                    return
                elif self.error is not None:
                    if translate is not None and isinstance(self.error, httpx.HTTPError):
                        raise translate(self.error) from self.error
                    raise self.error
                else:
                    await self._wait()
        finally:
            if not self.draining:
                self.close()

    def release_at_end(self) -> None:
        """The reader stopped at the stream's own end (``[DONE]``): what still follows (normally
        just the end of a chunked body) is read and dropped, and the connection kept for the
        next request if the body really ends, within DRAIN_SECONDS and DRAIN_BYTES."""
        if self.complete or self.error is not None:
            self.close()
            return
        self.draining = True
        self.chunks = []
        self.buffered = 0
        self._resume()
        self._stop_timer()
        loop = self.connection.loop
        self.timer = loop.call_later(DRAIN_SECONDS, self.close)

    def close(self) -> None:
        """Done with the reply: a complete one frees its connection, an unfinished one closes it."""
        self._stop_timer()
        self.connection.done(self)

    # Waiting

    async def _wait(self) -> None:
        loop = self.connection.loop
        if self.timer is None and self.read_timeout:
            self.timer = loop.call_at(self.last_read + self.read_timeout, self._check_read)
        self.waiter = loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_read(self) -> None:
        """The read timeout, measured from the last bytes received (not re-armed per read)."""
        self.timer = None
        if self.complete or self.error is not None or self.read_timeout is None:
            return
        loop = self.connection.loop
        now = loop.time()
        if self.paused:  # our reader is slow, not the server
            self.last_read = now
        elif now - self.last_read >= self.read_timeout:
            self._abort(httpx.ReadTimeout(f"no bytes from the server for {self.read_timeout:g} s"))
            return
        self.timer = loop.call_at(self.last_read + self.read_timeout, self._check_read)

    def _resume(self) -> None:
        if self.paused and self.connection.transport is not None:
            self.paused = False
            self.connection.transport.resume_reading()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
