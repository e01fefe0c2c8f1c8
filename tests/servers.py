"""Small real servers for adapter tests: a handler written with httpx's Request and Response
types, served over a loopback socket by aiohttp's low-level test server, and an adapter of the
relay's talking to it through the relay's own upstream client."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import httpx
from aiohttp import web
from aiohttp.test_utils import RawTestServer

from app.adapters.base import Adapter
from app.adapters.client import HttpLimits, UpstreamClient
from app.providers import Provider

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
A = TypeVar("A", bound=Adapter)
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """The base URL of a loopback server answering every request with ``handler``."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        seen = httpx.Request(request.method, str(request.url), headers=list(request.headers.items()), content=body)
        answer = handler(seen)
        reply = await answer if inspect.isawaitable(answer) else answer
        headers = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            return web.Response(status=reply.status_code, body=reply.content, headers=headers)
        except httpx.ResponseNotRead:  # a body made by a generator: sent as it comes
            streamed = web.StreamResponse(status=reply.status_code, headers=headers)
            await streamed.prepare(request)
            async for chunk in reply.aiter_raw():
                await streamed.write(chunk)
            await streamed.write_eof()
            return streamed

    server = RawTestServer(handle, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def adapter_on(
    cls: type[A], provider: Provider, handler: Handler, limits: HttpLimits | None = None, **kwargs: Any
) -> AsyncIterator[A]:
    """An adapter of ``cls`` whose provider's base URL is a server answering with ``handler``."""
    async with serving(handler) as url:
        client = UpstreamClient(limits)
        try:
            yield cls(replace(provider, base_url=url), client, **kwargs)
        finally:
            await client.aclose()
