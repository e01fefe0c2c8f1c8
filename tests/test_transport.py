"""The upstream client: httpx's API on aiohttp's pool keeps httpx's behaviour where adapters
rely on it (errors, proxies from the environment, no cookies carried between requests)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.adapters.transport import UpstreamClient
from tests.live import free_port


def client() -> UpstreamClient:
    return UpstreamClient(timeout=httpx.Timeout(2.0), limits=httpx.Limits(max_connections=10))


def test_proxies_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    upstream = client()
    assert upstream.proxy_for("https://api.openai.com/v1/chat/completions") == "http://proxy.example:3128"
    assert upstream.proxy_for("https://models.internal/v1/chat/completions") is None
    assert upstream.proxy_for("http://127.0.0.1:11434/api/chat") is None
    assert upstream.proxy_for("http://plain.example/v1") is None  # only HTTPS_PROXY was set


def test_a_refused_connection_is_httpx_connect_error_through_the_httpx_api() -> None:
    async def run() -> None:
        upstream = client()
        try:
            with pytest.raises(httpx.ConnectError):
                await upstream.get(f"http://127.0.0.1:{free_port()}/v1/models")
        finally:
            await upstream.aclose()

    asyncio.run(run())


def test_replies_and_their_cookies(emulator) -> None:
    async def run() -> None:
        upstream = client()
        try:
            reply = await upstream.get(emulator[1] + "/openai/v1/models")
            assert reply.status_code == 200 and reply.json()["object"] == "list"
            assert len(upstream.session.cookie_jar) == 0  # nothing kept for the next request
        finally:
            await upstream.aclose()

    asyncio.run(run())


def test_a_proxied_provider_is_reached_through_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY from the environment: such calls leave the relay's own pool for aiohttp's,
    which speaks to proxies (the proxy here answers itself, noting what it was asked)."""
    from app.adapters.posting import post, post_stream
    from app.providers import Provider

    asked: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        await reader.readexactly(length)
        asked.append(head.split(b"\r\n")[0])
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n"
            b'connection: close\r\n\r\n{"ok": 1 }'
        )
        await writer.drain()
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        upstream = client()
        provider = Provider(name="openai", family="openai_compat", base_url="http://api.example/v1", api_key="k")
        try:
            status, body = await post(upstream, provider, "http://api.example/v1/chat/completions", b"{}", {})
            assert (status, body) == (200, b'{"ok": 1 }')
            opened = await post_stream(upstream, provider, "http://api.example/v1/chat/completions", b"{}", {})
            assert b"".join([chunk async for chunk in opened.chunks]) == b'{"ok": 1 }'
            reply = await upstream.post("http://api.example/v1/embeddings", content=b"{}")  # httpx's API
            assert reply.json() == {"ok": 1}
            assert asked == [
                b"POST http://api.example/v1/chat/completions HTTP/1.1",
                b"POST http://api.example/v1/chat/completions HTTP/1.1",
                b"POST http://api.example/v1/embeddings HTTP/1.1",
            ]
            assert not upstream.pool._open  # the relay's own pool was not used
        finally:
            await upstream.aclose()
            server.close()

    asyncio.run(run())
