"""The upstream HTTP client: httpx's API for every adapter, on the relay's own HTTP/1.1 pool
(:mod:`app.adapters.http1`), and on aiohttp's for calls that go through an HTTP proxy.

Measured on the bench (bench/RESULTS.md), per request at 32 concurrent: httpx's own pool cost
~2.5 ms of CPU (it walks every pooled connection and asks each socket whether it is readable,
encode/httpx#3215); httpx on an aiohttp transport ~0.5 ms; aiohttp alone ~0.17 ms; the http1
pool about a quarter of aiohttp (http1's docstring). So adapters keep httpx's API
(``UpstreamClient`` *is* an ``httpx.AsyncClient``) on this transport, and the hot path
(:mod:`app.adapters.posting`) talks to the pool directly.

The proxy path is our own rather than the ``httpx-aiohttp`` package because that one maps
``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout`` (a refused connection would become
a 504 "timed out" instead of a 502) and keeps cookies between unrelated requests.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from app.adapters.http1 import Pool
from app.adapters.http1_reply import Reply

if TYPE_CHECKING:
    import aiohttp


class UpstreamClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose requests travel on the relay's HTTP/1.1 pool (``.pool``),
    or on an aiohttp session (``.session``) when the environment names a proxy for them."""

    def __init__(self, *, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        self.transport = UpstreamTransport(timeout, limits)
        super().__init__(timeout=timeout, transport=self.transport, follow_redirects=False)

    @property
    def pool(self) -> Pool:
        return self.transport.pool

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.transport.session

    def proxy_for(self, url: str) -> str | None:
        return self.transport.proxy_for(url)


class UpstreamTransport(httpx.AsyncBaseTransport):
    def __init__(self, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        self.pool = Pool(timeout, limits)
        self.limits = limits
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, read once as httpx does. aiohttp's own
        # trust_env would re-read them in a thread on every request (and consult ~/.netrc).
        self._proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https", "all")}
        self._proxy_for: dict[str, str | None] = {}

    def proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for this URL, if any (cached per scheme and host)."""
        if not self._proxies:
            return None
        scheme, _, rest = url.partition("://")
        origin = scheme + "://" + rest.split("/", 1)[0]
        if origin not in self._proxy_for:
            host = urllib.parse.urlsplit(origin).hostname or ""
            bypass = urllib.request.proxy_bypass(host)  # NO_PROXY, the way urllib reads it
            proxy = None if bypass else self._proxies.get(scheme) or self._proxies.get("all")
            self._proxy_for[origin] = proxy
        return self._proxy_for[origin]

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop that runs the relay.
        if self._session is None:
            from app.adapters import proxied  # aiohttp only when a proxy is in use: ~0.25 s of every start

            self._session = proxied.open_session(self.limits, self.timeout)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout") or {}
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed request body; adapters send bytes, so rare
            content = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        url = str(request.url)
        proxy = self.proxy_for(url)
        if proxy is None and request.method != "HEAD":  # a HEAD reply's length describes no body
            # httpx decodes the body itself (it sent its own Accept-Encoding): decode=False
            reply = await self.pool.request(
                request.method, url, request.headers.multi_items(), content, decode=False, timeouts=timeout
            )
            return httpx.Response(
                reply.status, headers=reply.raw_headers, stream=_PoolBody(reply), request=request,
                extensions={"http_version": b"HTTP/1.1"},
            )  # fmt: skip
        from app.adapters import proxied

        return await proxied.send(self.session, request, content, proxy, timeout)

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


class _PoolBody(httpx.AsyncByteStream):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.reply.iter_chunks():
            yield chunk

    async def aclose(self) -> None:
        self.reply.close()  # back to the pool when the body was read to its end; closed otherwise
