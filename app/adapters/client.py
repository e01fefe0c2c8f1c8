"""The upstream HTTP client: every inference call to a provider goes through one aiohttp session
per process, by :meth:`UpstreamClient.post` (a whole reply) or :meth:`UpstreamClient.stream`.

aiohttp refuses oversized header lines, too many headers and a reply that runs into the next
one on a kept-alive connection, and decodes a compressed body a bounded piece at a time; this
module adds a bound on a whole reply (:class:`HttpLimits`), has aiohttp's failures mapped onto
the relay's upstream errors (:mod:`app.adapters.failures`), and sends a request once more when it
failed on a reused connection
before its reply began (the server had closed the idle connection as the request went out).
Low-volume calls (discovery, model pulls, the admin's connection test) use ``control``, an httpx
client, whose API suits them and whose cost does not matter there.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

import aiohttp
import httpx
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver

from app import __version__
from app.adapters.failures import error_from_body, too_large, transport_error, upstream_errors
from app.adapters.pinning import Policy, PublicOnlyResolver, is_public
from app.adapters.wire import SSEvent, iter_event_batches, iter_ndjson, iter_sse
from app.providers import Provider

AGENT = {"user-agent": f"llm-relay/{__version__}"}  # so a provider's logs say what called it
DRAIN_SECONDS = 2.0  # how long the end of a finished stream may take to arrive for its connection to be kept
DRAIN_BYTES = 65536


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What a provider's reply may cost the relay, and how long it may take."""

    connect_timeout: float = 10.0
    read_timeout: float = 600.0  # the longest silence; 0: none
    keepalive: float = 15.0
    max_body_bytes: int = 64 << 20
    max_event_bytes: int = 8 << 20
    max_header_bytes: int = 16384
    max_headers: int = 128
    decode_chunk_bytes: int = 1 << 16
    max_connections: int = 1000


# Marks the sockets a request opened: none means it went out on a pooled connection.
_OPENED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("upstream_opened", default=None)


def _new_socket(addr_info: AddrInfoType) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    opened = _OPENED.get()
    if opened is not None:
        opened.append(True)
    return socket.socket(family=family, type=type_, proto=proto)


class UpstreamClient:
    """The process's upstream HTTP client; its aiohttp session is made on first use, on the loop
    that serves the relay."""

    def __init__(self, limits: HttpLimits | None = None, public: Policy = is_public) -> None:
        self.limits = limits or HttpLimits()
        self.public = public  # which addresses images may be fetched from (tests narrow it to loopback)
        self.control = httpx.AsyncClient(
            timeout=httpx.Timeout(self.limits.read_timeout or None, connect=self.limits.connect_timeout), headers=AGENT
        )
        self._session: aiohttp.ClientSession | None = None
        self._pinned: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        self._draining: set[asyncio.Task[None]] = set()
        # HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, read once: aiohttp's trust_env would read them
        # again on every request.
        self._proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https", "all")}
        self._proxy_for: dict[str, str | None] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = open_session(self.limits, _new_socket)
        return self._session

    @property
    def fresh_session(self) -> aiohttp.ClientSession:
        """A session that opens a new connection for every request: for the one resend of a
        request whose reused connection the server had closed."""
        if self._fresh is None:
            self._fresh = open_session(self.limits, force_close=True)
        return self._fresh

    @property
    def pinned_session(self) -> aiohttp.ClientSession:
        """A session that connects to public addresses only (:mod:`app.adapters.pinning`)."""
        if self._pinned is None:
            self._pinned = open_session(self.limits, resolver=PublicOnlyResolver(self.public))
        return self._pinned

    def proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for this URL, if any (kept per scheme and host)."""
        if not self._proxies:
            return None
        scheme, _, rest = url.partition("://")
        origin = scheme + "://" + rest.split("/", 1)[0]
        if origin not in self._proxy_for:
            bypass = urllib.request.proxy_bypass(urllib.parse.urlsplit(origin).hostname or "")
            self._proxy_for[origin] = None if bypass else self._proxies.get(scheme) or self._proxies.get("all")
        return self._proxy_for[origin]

    async def post(self, provider: Provider, url: str, content: bytes, headers: Mapping[str, str]) -> bytes:
        """POST and read the whole reply; an error status is raised as the provider's error."""
        response = await self._send(provider, url, content, headers)
        try:
            return await read_body(provider, response, self.limits.max_body_bytes)
        finally:
            response.release()

    async def stream(self, provider: Provider, url: str, content: bytes, headers: Mapping[str, str]) -> Opened:
        """POST for a streamed reply; an error status is read whole and raised."""
        return Opened(provider, await self._send(provider, url, content, headers), self)

    async def _send(
        self, provider: Provider, url: str, content: bytes, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        proxy = self.proxy_for(url)
        for attempt in range(2):
            opened: list[bool] = []
            token = _OPENED.set(opened)
            session = self.fresh_session if attempt else self.session
            try:
                response = await session.post(url, data=content, headers=headers, proxy=proxy, allow_redirects=False)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                reused = not opened and not isinstance(exc, aiohttp.ClientConnectorError)
                if attempt or not reused:
                    raise transport_error(provider, exc) from exc
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise transport_error(provider, exc) from exc
            finally:
                _OPENED.reset(token)
            if response.status >= 400:
                try:
                    body = await read_body(provider, response, self.limits.max_body_bytes)
                finally:
                    response.release()
                raise error_from_body(provider, response.status, body, response.headers)
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def drain_later(self, response: aiohttp.ClientResponse) -> None:
        task = asyncio.get_running_loop().create_task(_drain(response))
        self._draining.add(task)  # referenced until done: the loop keeps only weak references
        task.add_done_callback(self._draining.discard)

    async def aclose(self) -> None:
        await self.control.aclose()
        for session in (self._session, self._pinned, self._fresh):
            if session is not None:
                await session.close()
        self._session = self._pinned = self._fresh = None


def open_session(
    limits: HttpLimits,
    socket_factory: SocketFactoryType | None = None,
    resolver: AbstractResolver | None = None,
    *,
    force_close: bool = False,
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections,
        limit_per_host=0,
        keepalive_timeout=None if force_close else limits.keepalive,
        force_close=force_close,
        socket_factory=socket_factory,
        resolver=resolver,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=AGENT,
        cookie_jar=aiohttp.DummyCookieJar(),  # no provider's cookie reaches another request
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=limits.connect_timeout,
            sock_connect=limits.connect_timeout,
            sock_read=limits.read_timeout or None,
        ),
        read_bufsize=limits.decode_chunk_bytes,
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
        max_headers=limits.max_headers,
    )


class Opened:
    """A streamed reply with a success status. ``chunks`` gives its body as it comes and lets
    the connection go however the iteration ends; a caller that stopped at the stream's own end
    (``[DONE]``) says so with :meth:`ended`, so that the connection is kept for the next request
    once the last bytes of the body arrive."""

    __slots__ = ("_at_end", "chunks", "client", "content_type", "provider", "response")

    def __init__(self, provider: Provider, response: aiohttp.ClientResponse, client: UpstreamClient) -> None:
        self.provider = provider
        self.response = response
        self.client = client
        self.content_type = response.headers.get("content-type", "")
        self._at_end = False
        self.chunks: AsyncGenerator[bytes, None] = self._chunks()

    def ended(self) -> None:
        self._at_end = True

    def sse(self) -> AsyncGenerator[SSEvent, None]:
        return iter_sse(self.chunks, self.client.limits.max_event_bytes, self.provider.name)

    def event_batches(self) -> AsyncGenerator[list[bytes | SSEvent], None]:
        return iter_event_batches(self.chunks, self.client.limits.max_event_bytes, self.provider.name)

    def ndjson(self) -> AsyncGenerator[bytes, None]:
        return iter_ndjson(self.chunks, self.client.limits.max_event_bytes, self.provider.name)

    async def read(self) -> bytes:
        """The whole body, within the limit on non-streamed replies (a server that ignored ``stream``)."""
        await self.chunks.aclose()  # never started: this only marks it done
        try:
            return await read_body(self.provider, self.response, self.client.limits.max_body_bytes)
        finally:
            self.response.release()

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            with upstream_errors(self.provider):
                async for chunk in self.response.content.iter_any():
                    yield chunk
        finally:
            if self._at_end and not self.response.content.at_eof():
                self.client.drain_later(self.response)
            else:
                self.response.release()  # an unfinished body closes the connection: the provider stops


async def read_body(provider: Provider, response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The reply's decoded body, refused once it passes ``limit`` bytes."""
    length = response.content_length
    encoded = "content-encoding" in response.headers
    with upstream_errors(provider):
        if length is not None and not encoded:
            if length > limit:
                raise too_large(provider, length, limit)
            return await response.read()
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large(provider, size, limit)
            parts.append(chunk)
        return b"".join(parts)


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what follows the stream's end (normally only the end of the chunked body), bounded in
    time and size; the connection is reused only if the body really ended."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            budget = DRAIN_BYTES
            while budget > 0 and not response.content.at_eof():
                data = await response.content.readany()
                if not data:
                    break
                budget -= len(data)
    except (TimeoutError, aiohttp.ClientError):
        pass
    finally:
        response.release()
