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
