"""What a broken or malicious provider can do to the relay, one small raw-socket server per case
(tests/hostile_upstream.py): huge, endless, compressed, oversized or desynchronised replies, a
connection closed under a request, a key echoed back. The relay stays whole, its memory bounded,
and the caller gets a clear error in its own dialect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults import RelayProcess
from tests.hostile_upstream import HostileUpstream

KEY = "test-key-openai"  # what conftest's relays send as OpenAI's key


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileUpstream]:
    server = HostileUpstream()
    yield server
    server.stop()


@pytest.fixture
def relay(make_relay: Any, hostile: HostileUpstream) -> Any:
    return make_relay(provider_base_urls={"openai": hostile.url})


def chat(url: str, model: str, *, stream: bool = False, timeout: float = 60) -> httpx.Response:
    body = {"model": f"openai/{model}", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=timeout)


def stream_error(response: httpx.Response) -> dict[str, Any]:
    """The error frame that ends an OpenAI-dialect stream."""
    assert response.status_code == 200, response.text
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    assert "error" in events[-1], events[-1]
    return dict(events[-1]["error"])


@pytest.mark.parametrize("size", [1_000_000, 8_000_000])
def test_large_non_streamed_replies_arrive_whole(relay: Any, size: int) -> None:
    reply = chat(relay.url, f"big:{size}")
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["choices"][0]["message"]["content"] == "x" * size


def test_a_large_embeddings_reply_arrives_whole(relay: Any) -> None:
    reply = httpx.post(relay.url + "/v1/embeddings", json={"model": "openai/embed:2000000", "input": "x"}, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    assert len(reply.content) > 2_000_000 and len(reply.json()["data"]) == 1 + 2_000_000 // 3000


def test_a_reply_past_the_limit_is_refused_and_its_row_says_why(make_relay: Any, hostile: HostileUpstream) -> None:
    relay = make_relay(provider_base_urls={"openai": hostile.url}, upstream_max_body_bytes=1_000_000)
    reply = chat(relay.url, "big:2000000")
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "upstream_limit_exceeded" and "UPSTREAM_MAX_BODY_BYTES" in error["message"]
    row = relay.row(reply.headers["x-request-id"])
    assert row["outcome"] == "upstream_error" and "larger than 1000000 bytes" in row["error"]
    body = {"model": "openai/big:2000000", "messages": [{"role": "user", "content": "x"}], "stream": False}
    ollama = httpx.post(relay.url + "/api/chat", json=body, timeout=60)  # the Ollama dialect's own error shape
    assert ollama.status_code == 502 and "UPSTREAM_MAX_BODY_BYTES" in ollama.json()["error"]


def test_an_endless_sse_line_ends_the_stream_with_an_error(relay: Any) -> None:
    reply = chat(relay.url, "endless-line", stream=True)
    error = stream_error(reply)
    assert error["code"] == "upstream_limit_exceeded" and "UPSTREAM_MAX_EVENT_BYTES" in error["message"]
    row = relay.row(reply.headers["x-request-id"])
    assert row["outcome"] == "upstream_error" and "longer than 8388608 bytes" in row["error"]


@pytest.mark.parametrize("model", ["headers:100000", "endless-header"])
def test_oversized_reply_headers_are_refused(relay: Any, hostile: HostileUpstream, model: str) -> None:
    started = time.monotonic()
    reply = chat(relay.url, model)
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["code"] == "upstream_limit_exceeded" and "UPSTREAM_MAX_HEADER" in error["message"], error
    assert time.monotonic() - started < 10
    assert hostile.sent[model] < 10 << 20  # the relay stopped reading the endless line


def test_a_desynchronised_reply_leaks_nothing_to_the_next_caller(relay: Any) -> None:
    assert chat(relay.url, "desync").status_code == 200
    for _ in range(3):  # the next requests, which would reuse the kept-alive connection
        reply = chat(relay.url, "plain")
        assert reply.status_code == 200, reply.text
        assert "x-leak" not in reply.headers and "teapot" not in reply.text


def test_a_connection_the_server_closed_while_idle_costs_no_failed_request(
    relay: Any, hostile: HostileUpstream
) -> None:
    """The server reads the second request on a kept-alive connection and closes it unanswered,
    as one does that times the connection out just as the request arrives: the relay sends the
    request again, once, on a new connection."""
    before = hostile.connections
    for _ in range(4):
        reply = chat(relay.url, "idle-close")
        assert reply.status_code == 200, reply.text
    # A new connection answers; the next request reuses it, finds it closed, and goes out again
    # on a connection of its own (closed after it); so twice.
    assert hostile.hits["idle-close"] == 6
    assert hostile.connections - before == 4


def test_streams_that_end_well_leave_their_connection_for_the_next_request(
    relay: Any, hostile: HostileUpstream
) -> None:
    before = hostile.connections
    for stream in (True, True, False, True):
        assert chat(relay.url, "plain", stream=stream).status_code == 200
    assert hostile.connections - before == 1


def test_an_echoed_key_appears_nowhere(make_admin: Any, hostile: HostileUpstream) -> None:
    admin = make_admin(provider_base_urls={"openai": hostile.url})
    relay = admin.relay
    refused = chat(relay.url, "echo-key")
    assert refused.status_code == 401
    assert KEY not in refused.text and "Incorrect API key provided: [redacted]" in refused.text
    streamed = chat(relay.url, "echo-key", stream=True)
    assert KEY not in streamed.text and "[redacted]" in stream_error(streamed)["message"]
    ids = [refused.headers["x-request-id"], streamed.headers["x-request-id"]]
    rows = [relay.row(request_id) for request_id in ids]
    assert all("[redacted]" in row["error"] and KEY not in json.dumps(row, default=str) for row in rows)
    for fmt in ("csv", "json"):
        exported = admin.client.get("/api/usage/export", params={"format": fmt})
        assert exported.status_code == 200 and ids[0] in exported.text and KEY not in exported.text
    page = admin.client.get("/usage")
    assert page.status_code == 200 and KEY not in page.text


def test_the_gemini_path_cannot_leave_models(make_relay: Any, upstream: Any) -> None:
    relay = make_relay()
    before = len(upstream.requests)
    for model in ("gemini/../../v1/files?x=", "gemini/models/../files", "gemini/a#b", "gemini/%2e%2e"):
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": False}
        openai = httpx.post(relay.url + "/v1/chat/completions", json=body)
        assert openai.status_code == 400 and "is not a Gemini model id" in openai.json()["error"]["message"]
        ollama = httpx.post(relay.url + "/api/chat", json=body)
        assert ollama.status_code == 400 and "is not a Gemini model id" in ollama.json()["error"]
    assert len(upstream.requests) == before  # nothing left the relay


@pytest.mark.parametrize("model", ["openai/gpt\r\nx-evil: 1", "openai/a\x00b", "bad\nname", "tab\there", "del\x7f"])
def test_control_characters_in_a_model_name_are_a_400_in_both_dialects(relay: Any, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": False}
    openai = httpx.post(relay.url + "/v1/chat/completions", json=body)
    assert openai.status_code == 400 and "control character" in openai.json()["error"]["message"]
    ollama = httpx.post(relay.url + "/api/chat", json=body)
    assert ollama.status_code == 400 and "control character" in ollama.json()["error"]


# --- memory, measured on a relay process of its own -------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def peak_rss_during(pid: int, action: Any) -> tuple[Any, float]:
    peak = rss_mb(pid)
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return action(), peak
    finally:
        done.set()
        watcher.join()


def settled(count: Any, timeout: float = 10) -> int:
    """The count once it stays the same for half a second (what was in flight has arrived)."""
    deadline = time.monotonic() + timeout
    last = count()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count()
        if now == last:
            return int(now)
        last = now
    raise AssertionError(f"still growing after {timeout} s: {last}")


def test_a_gzip_bomb_ends_in_an_error_with_the_relay_under_a_few_hundred_mb(
    tmp_path: Path, hostile: HostileUpstream
) -> None:
    relay = RelayProcess({"DATA_DIR": str(tmp_path), "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": hostile.url}).start()
    try:
        assert relay.process is not None
        pid = relay.process.pid
        streamed, peak_stream = peak_rss_during(pid, lambda: chat(relay.url, "gzip-bomb", stream=True))
        assert stream_error(streamed)["code"] == "upstream_limit_exceeded"
        whole, peak_whole = peak_rss_during(pid, lambda: chat(relay.url, "gzip-bomb"))
        assert whole.status_code == 502 and "UPSTREAM_MAX_BODY_BYTES" in whole.json()["error"]["message"]
        assert max(peak_stream, peak_whole) < 300, (peak_stream, peak_whole)
        assert settled(lambda: hostile.sent["gzip-bomb"]) < 2 << 30  # the relay hung up: the server stopped
    finally:
        relay.stop()
