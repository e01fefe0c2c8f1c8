"""SIGTERM while upstream calls hang: the relay waits SHUTDOWN_GRACE_SECONDS, then cancels them;
each caller whose reply had not begun gets a 503 in its own dialect, each whose stream was under
way gets its dialect's error at the end of it, and every request the upstream saw leaves a usage
row with the outcome ``shutdown``."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fault_upstream import FaultyUpstream
from tests.faults import RelayProcess
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)

GRACE = 2
MESSAGES = [{"role": "user", "content": "hi"}]
# Each caller's request, and what its dialect's error says when the shutdown cuts it off.
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("/v1/chat/completions", {"model": "openai/stall", "messages": MESSAGES}),
    "anthropic": ("/v1/messages", {"model": "openai/stall", "messages": MESSAGES, "max_tokens": 5}),
    "ollama": ("/api/chat", {"model": "openai/stall", "messages": MESSAGES, "stream": False}),
}

# Streams under way when the shutdown comes: (path, body), and how the dialect's error frame begins.
STREAMS: dict[str, tuple[str, dict[str, Any], bytes]] = {
    "openai": (
        "/v1/chat/completions",
        {"model": "openai/midstream-stall", "messages": MESSAGES, "stream": True},
        b'data: {"error":',
    ),
    "anthropic": (
        "/v1/messages",
        {"model": "openai/midstream-stall", "messages": MESSAGES, "max_tokens": 5, "stream": True},
        b'event: error\ndata: {"type":"error","error":',
    ),
    "ollama": ("/api/chat", {"model": "openai/midstream-stall", "messages": MESSAGES}, b'{"error":'),
    "responses": (
        "/v1/responses",
        {"model": "groq/midstream-stall", "input": "hi", "stream": True},
        b'event: error\ndata: {"type":"error","error":',
    ),
}


def last_frame(dialect: str, text: bytes) -> bytes:
    """The stream's last frame, past OpenAI's closing [DONE]."""
    frames = text.strip().split(b"\n" if dialect == "ollama" else b"\n\n")
    return frames[-2] if frames[-1] == b"data: [DONE]" else frames[-1]


@pytest.fixture
def faulty() -> Iterator[FaultyUpstream]:
    server = FaultyUpstream()
    yield server
    server.stop()


def error_message(dialect: str, body: dict[str, Any]) -> str:
    if dialect == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["message"])
    if dialect == "ollama":
        return str(body["error"])
    return str(body["error"]["message"])


def test_sigterm_cancels_hung_requests_after_the_grace_period(own_db, faulty, tmp_path: Path) -> None:  # noqa: F811
    relay = RelayProcess({
        "DATABASE_URL": own_db, "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": faulty.url,
        "GROQ_API_KEY": "k", "GROQ_BASE_URL": faulty.url,  # the Responses API translated, as for most providers
        "SHUTDOWN_GRACE_SECONDS": str(GRACE), "LOG_LEVEL": "info",
    }).start()  # fmt: skip
    replies: dict[str, httpx.Response] = {}
    streamed: dict[str, tuple[str, bytes]] = {}

    def call(dialect: str) -> None:
        path, body = CALLS[dialect]
        replies[dialect] = httpx.post(relay.url + path, json=body, timeout=60)

    def stream(dialect: str) -> None:  # a reply under way when the shutdown comes
        path, body, _ = STREAMS[dialect]
        with httpx.stream("POST", relay.url + path, json=body, timeout=60) as reply:
            streamed[dialect] = (reply.headers["x-request-id"], b"".join(reply.iter_bytes()))

    threads = [threading.Thread(target=call, args=(d,)) for d in CALLS]
    threads += [threading.Thread(target=stream, args=(d,)) for d in STREAMS]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while sum(faulty.hits.values()) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(faulty.hits.values()) == len(threads), "the upstream did not see every request"
        assert relay.process is not None
        stopped = time.monotonic()
        relay.process.send_signal(signal.SIGTERM)
        relay.process.wait(timeout=GRACE + 15)  # not UPSTREAM_READ_TIMEOUT's 600 s
        took = time.monotonic() - stopped
        for thread in threads:
            thread.join(10)
    finally:
        log = relay.stop(signal.SIGKILL)
    # Stopped by its own SIGTERM: uvicorn raises the signal again once it has shut down.
    assert relay.process.returncode in (0, -signal.SIGTERM), log[-3000:]
    assert GRACE - 0.5 < took < GRACE + 5, f"stopped after {took:.1f} s"
    for dialect, reply in replies.items():
        assert reply.status_code == 503, (dialect, reply.text)
        assert reply.headers["retry-after"] == "1"
        assert "shutting down" in error_message(dialect, reply.json())
    assert len(replies) == len(CALLS) and set(streamed) == set(STREAMS)
    for dialect, (_, text) in streamed.items():  # whole, and ended by the dialect's error
        last = last_frame(dialect, text)
        assert last.startswith(STREAMS[dialect][2]) and b"the relay is shutting down" in last, (dialect, text[-300:])
    assert "ASGI callable returned without completing response" not in log
    ids = {reply.headers["x-request-id"] for reply in replies.values()} | {i for i, _ in streamed.values()}
    rows = {row["request_id"]: row for row in relay.rows()}
    assert set(rows) == ids  # one row for each request the upstream saw, no other
    for row in rows.values():
        assert (row["outcome"], row["status"]) == ("shutdown", 503), row
        assert "SHUTDOWN_GRACE_SECONDS" in row["error"]
    assert list(tmp_path.glob("usage-journal.*")) == []  # written before the process ended
