"""The upstream client: proxies from the environment on the same code path, no cookie carried
between requests, transport failures as the relay's upstream errors, and error texts without
the provider's key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.adapters.client import UpstreamClient
from app.errors import UpstreamStatusError, UpstreamUnavailable
from app.providers import Provider
from tests.live import free_port
from tests.servers import serving

PROVIDER = Provider(name="openai", family="openai_compat", base_url="http://api.example/v1", api_key="sk-secret-1")


def test_proxies_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    upstream = UpstreamClient()
    assert upstream.proxy_for("https://api.openai.com/v1/chat/completions") == "http://proxy.example:3128"
    assert upstream.proxy_for("https://models.internal/v1/chat/completions") is None
    assert upstream.proxy_for("http://127.0.0.1:11434/api/chat") is None
    assert upstream.proxy_for("http://plain.example/v1") is None  # only HTTPS_PROXY was set


def test_a_proxied_provider_is_reached_through_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy here answers itself, noting what it was asked: whole and streamed calls both
    go through it, as absolute-form requests."""
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
        upstream = UpstreamClient()
        try:
            url = "http://api.example/v1/chat/completions"
            assert await upstream.post(PROVIDER, url, b"{}", {}) == b'{"ok": 1 }'
            opened = await upstream.stream(PROVIDER, url, b"{}", {})
            assert b"".join([chunk async for chunk in opened.chunks]) == b'{"ok": 1 }'
            assert asked == [b"POST http://api.example/v1/chat/completions HTTP/1.1"] * 2
        finally:
            await upstream.aclose()
            server.close()

    asyncio.run(run())


def test_no_cookie_is_kept_for_the_next_request() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["user-agent"].startswith("llm-relay/")
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={"ok": True}, headers={"set-cookie": "session=abc; Path=/"})

    async def run() -> None:
        upstream = UpstreamClient()
        try:
            async with serving(answer) as url:
                for _ in range(2):
                    await upstream.post(PROVIDER, url + "/chat/completions", b"{}", {})
            assert len(upstream.session.cookie_jar) == 0
        finally:
            await upstream.aclose()

    asyncio.run(run())
    assert seen == [None, None]


def test_a_refused_connection_is_upstream_unavailable() -> None:
    async def run() -> None:
        upstream = UpstreamClient()
        try:
            with pytest.raises(UpstreamUnavailable) as caught:
                await upstream.post(PROVIDER, f"http://127.0.0.1:{free_port()}/v1/chat/completions", b"{}", {})
            assert caught.value.status == 502 and "cannot reach" in caught.value.message
        finally:
            await upstream.aclose()

    asyncio.run(run())


def test_an_error_reply_keeps_its_status_and_retry_after_but_not_the_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        error = {"error": {"message": f"slow down, {key}", "type": "rate_limit_error"}}
        return httpx.Response(429, json=error, headers={"retry-after": "7"})

    async def run() -> None:
        upstream = UpstreamClient()
        try:
            async with serving(answer) as url:
                headers = {"authorization": f"Bearer {PROVIDER.api_key}"}
                with pytest.raises(UpstreamStatusError) as caught:
                    await upstream.stream(PROVIDER, url + "/chat/completions", b"{}", headers)
            error = caught.value
            assert (error.status, error.retry_after, error.message) == (429, 7.0, "openai: slow down, [redacted]")
        finally:
            await upstream.aclose()

    asyncio.run(run())
