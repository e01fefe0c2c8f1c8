"""Ollama model discovery runs in the background, refreshes, and survives an instance outage."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.live import free_port


def test_discovery_refreshes_periodically(make_relay) -> None:
    relay = make_relay(ollama_refresh_seconds=0.1)
    status = relay.app.discovery.status["lab"]
    first = status.checked_at
    deadline = time.monotonic() + 5
    while status.checked_at == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.checked_at != first and status.ok and status.models == 2


def test_instance_down_keeps_its_last_list_and_says_why(make_relay, emulator) -> None:
    upstream, url = emulator
    relay = make_relay(ollama_instances=f"flaky={url}/flaky,gone=http://127.0.0.1:{free_port()}")
    assert relay.app.services.catalog.get("flaky", "llama3.2") is not None
    upstream.down.add("flaky")
    try:
        relay.refresh_models()
    finally:
        upstream.down.discard("flaky")
    status = relay.app.discovery.status
    assert status["flaky"].ok is False and "flaky is down" in (status["flaky"].error or "")
    assert status["gone"].ok is False and "cannot reach" in (status["gone"].error or "")
    assert relay.app.services.catalog.get("flaky", "llama3.2") is not None  # still listed
    tags = httpx.get(relay.url + "/api/tags").json()["models"]
    assert "flaky/llama3.2:latest" in [m["model"] for m in tags]


def test_requests_never_probe_instances(relay, upstream) -> None:
    before = sum(1 for r in upstream.requests if r.path.endswith("/api/tags"))
    for _ in range(3):
        httpx.post(
            relay.url + "/api/chat", json={"model": "lab/llama3.2", "messages": [{"role": "user", "content": "x"}]}
        )
    after = sum(1 for r in upstream.requests if r.path.endswith("/api/tags"))
    assert after == before


def test_a_start_waits_for_the_first_model_lists(db_url, emulator) -> None:
    """Right after a start (and after each worker restart) requests for an Ollama server's
    models got 404 until its first /api/tags answered."""
    from app.main import create_app
    from tests.conftest import relay_settings
    from tests.emulator import Emulator
    from tests.live import LiveServer

    slow_emulator = Emulator()

    async def slow(scope, receive, send):  # an Ollama server that takes a second to list its models
        if scope["type"] == "http" and scope["path"].endswith("/api/tags"):
            await asyncio.sleep(1.0)
        await slow_emulator(scope, receive, send)

    ollama = LiveServer(slow, lifespan="off").start()
    app = create_app(relay_settings(db_url, emulator[1], ollama_instances=f"slow={ollama.url}/lab"), migrate=False)
    relay = LiveServer(app).start()
    try:
        listed = {m["id"] for m in httpx.get(relay.url + "/v1/models").json()["data"]}
        assert "slow/llama3.2:latest" in listed or "slow/llama3.2" in listed, sorted(listed)[:20]
    finally:
        relay.stop()
        ollama.stop()
