"""The hot path's POST: straight on the relay's HTTP/1.1 pool (httpx's request and response
layers cost more than the call itself, see transport.py), or on aiohttp's session for a
provider reached through an HTTP proxy (:mod:`app.adapters.proxied`); any other httpx client
(tests) through httpx's API."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import httpx

from app.adapters.base import error_from_body, iter_body, open_stream, upstream_error, upstream_errors
from app.adapters.http1_reply import Reply as PooledReply
from app.adapters.transport import UpstreamClient
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
    from app.adapters import proxied  # aiohttp, imported only when a proxy is in use

    return await proxied.post(http.session, provider, url, content, headers, proxy)


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
    from app.adapters import proxied

    return await proxied.post_stream(http.session, provider, url, content, headers, proxy)
