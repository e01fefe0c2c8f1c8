"""Provider calls through an HTTP proxy (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), on aiohttp.

Imported only when the environment names a proxy for a call: importing aiohttp costs ~0.25 s
of every start otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx

from app.adapters.base import error_from_body, upstream_errors
from app.adapters.posting import Opened
from app.providers import Provider

# As on the httpx path: redirects are not followed (an API key never travels to another host),
# and bodies are decoded here (the session leaves that to httpx on the httpx path).
_FAST: dict[str, Any] = {"allow_redirects": False, "auto_decompress": True}


def open_session(limits: httpx.Limits, timeout: httpx.Timeout) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections or 0,
        limit_per_host=0,
        keepalive_timeout=limits.keepalive_expiry or 0,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # no provider's cookie reaches another request
        timeout=aiohttp.ClientTimeout(
            total=None, connect=timeout.pool, sock_connect=timeout.connect, sock_read=timeout.read
        ),
        auto_decompress=False,  # httpx decodes the body itself
    )


async def post(
    session: aiohttp.ClientSession, provider: Provider, url: str, content: bytes, headers: Any, proxy: str
) -> tuple[int, bytes]:
    """:func:`app.adapters.posting.post` through a proxy."""
    with upstream_errors(provider), aiohttp_to_httpx():
        async with session.post(url, data=content, headers=headers, proxy=proxy, **_FAST) as reply:
            body = await reply.read()
            if reply.status >= 400:
                raise error_from_body(provider, reply.status, body, reply.headers)
            return reply.status, body


async def post_stream(
    session: aiohttp.ClientSession, provider: Provider, url: str, content: bytes, headers: Any, proxy: str
) -> Opened:
    """:func:`app.adapters.posting.post_stream` through a proxy."""
    with upstream_errors(provider), aiohttp_to_httpx():
        reply = await session.post(url, data=content, headers=headers, proxy=proxy, **_FAST)
        if reply.status >= 400:
            try:
                body = await reply.read()
            finally:
                reply.release()
            raise error_from_body(provider, reply.status, body, reply.headers)
    opened = Opened(reply.headers.get("content-type", ""))
    opened.chunks = _chunks(provider, reply, opened)
    return opened


async def _chunks(provider: Provider, reply: aiohttp.ClientResponse, opened: Opened) -> AsyncGenerator[bytes, None]:
    try:
        with upstream_errors(provider), aiohttp_to_httpx():
            async for chunk in reply.content.iter_any():
                yield chunk
    finally:
        if opened.at_end and not reply.content.at_eof():
            _drain_later(reply)
        else:
            reply.release()  # an unfinished body closes the connection, so the provider stops at once


_DRAINING: set[asyncio.Task[None]] = set()  # referenced until done, or the loop could drop them


def _drain_later(reply: aiohttp.ClientResponse) -> None:
    task = asyncio.get_running_loop().create_task(_drain(reply))
    _DRAINING.add(task)
    task.add_done_callback(_DRAINING.discard)


async def _drain(reply: aiohttp.ClientResponse) -> None:
    """Read what follows ``[DONE]`` (normally just the end of the chunked body), bounded in time
    and size; the connection goes back to the pool only if the body really ended."""
    try:
        async with asyncio.timeout(2):
            budget = 65536
            while budget > 0 and not reply.content.at_eof():
                data = await reply.content.readany()
                if not data:
                    break
                budget -= len(data)
    except (TimeoutError, aiohttp.ClientError):
        pass
    finally:
        reply.release()


async def send(
    session: aiohttp.ClientSession,
    request: httpx.Request,
    content: bytes,
    proxy: str | None,
    timeout: dict[str, Any],
) -> httpx.Response:
    """An httpx request on the session (through ``proxy``, or direct for a HEAD request)."""
    with aiohttp_to_httpx(request):
        response = await session.request(
            request.method,
            str(request.url),
            headers=request.headers.multi_items(),
            data=content or None,
            allow_redirects=False,
            proxy=proxy,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=timeout.get("pool"),
                sock_connect=timeout.get("connect"),
                sock_read=timeout.get("read"),
            ),
        )
    return httpx.Response(
        response.status,
        headers=response.raw_headers,
        stream=_Body(response, request),
        request=request,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
    )


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self.response = response
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with aiohttp_to_httpx(self.request):
            async for chunk in self.response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end; closed otherwise.
        self.response.release()


@contextmanager
def aiohttp_to_httpx(request: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp's failures as the httpx exceptions adapters already handle."""
    try:
        yield
    except TimeoutError as exc:  # aiohttp's timeouts subclass it (asyncio.TimeoutError is it since 3.11)
        kind = httpx.ConnectTimeout if isinstance(exc, aiohttp.ConnectionTimeoutError) else httpx.ReadTimeout
        raise kind(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
