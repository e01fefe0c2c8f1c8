"""The hot path's POST: straight on the relay's HTTP/1.1 pool (httpx's request and response
layers cost more than the call itself, see transport.py), or on aiohttp's session for a
provider reached through an HTTP proxy; any other httpx client (tests) through httpx's API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import aiohttp
import httpx

from app.adapters.base import error_from_body, iter_body, open_stream, upstream_error, upstream_errors
from app.adapters.http1_reply import Reply as PooledReply
from app.adapters.transport import UpstreamClient, aiohttp_to_httpx
from app.providers import Provider


class Opened:
    """A streamed reply with a success status: its content type and its body's chunks (the
    connection is released however the iteration ends). A caller that stops at the stream's
    own end (``[DONE]``) says so with :meth:`ended`: the last bytes of the body, often
    still in flight, are then read in the background and the connection is kept for reuse
    instead of being closed (a new TCP and TLS handshake for the next request)."""

    __slots__ = ("at_end", "chunks", "content_type", "pooled")

    def __init__(self, content_type: str, pooled: PooledReply | None = None) -> None:
        self.content_type = content_type
        self.at_end = False
        self.pooled = pooled
        self.chunks: AsyncGenerator[bytes, None]

    def ended(self) -> None:
        self.at_end = True
        if self.pooled is not None:
            self.pooled.release_at_end()


# As on the httpx path: redirects are not followed (an API key never travels to another host),
# and bodies are decoded here (the session leaves that to httpx on the httpx path).
_FAST: dict[str, Any] = {"allow_redirects": False, "auto_decompress": True}


async def post(
    http: httpx.AsyncClient, provider: Provider, url: str, content: bytes, headers: Any
) -> tuple[int, bytes]:
    """POST and read the whole reply; on the relay's own client, straight on its HTTP/1.1 pool
    (httpx's request and response layers cost more than the call itself, see transport.py)."""
    if not isinstance(http, UpstreamClient):
        with upstream_errors(provider):
            response = await http.post(url, content=content, headers=headers)
        if response.status_code >= 400:
            raise error_from_body(provider, response.status_code, response.content, response.headers)
        return response.status_code, response.content
    proxy = http.proxy_for(url)
    if proxy is None:
        with upstream_errors(provider):
            pooled = await http.pool.request("POST", url, headers, content)
            body = await pooled.read()
        if pooled.status >= 400:
            raise error_from_body(provider, pooled.status, body, pooled.headers)
        return pooled.status, body
    with upstream_errors(provider), aiohttp_to_httpx():
        async with http.session.post(url, data=content, headers=headers, proxy=proxy, **_FAST) as reply:
            body = await reply.read()
            if reply.status >= 400:
                raise error_from_body(provider, reply.status, body, reply.headers)
            return reply.status, body


async def post_stream(http: httpx.AsyncClient, provider: Provider, url: str, content: bytes, headers: Any) -> Opened:
    """POST for a streamed reply; an error status is read whole and raised."""
    if not isinstance(http, UpstreamClient):
        response = await open_stream(http, provider, http.build_request("POST", url, content=content, headers=headers))
        opened = Opened(response.headers.get("content-type", ""))
        opened.chunks = iter_body(provider, response)
        return opened
    proxy = http.proxy_for(url)
    if proxy is None:
        with upstream_errors(provider):
            pooled = await http.pool.request("POST", url, headers, content)
            if pooled.status >= 400:
                body = await pooled.read()
                raise error_from_body(provider, pooled.status, body, pooled.headers)
        opened = Opened(pooled.headers.get("content-type") or "", pooled)
        opened.chunks = pooled.iter_chunks(partial(upstream_error, provider))
        return opened
    with upstream_errors(provider), aiohttp_to_httpx():
        reply = await http.session.post(url, data=content, headers=headers, proxy=proxy, **_FAST)
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
