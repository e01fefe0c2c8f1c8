"""A client that hangs up mid-stream: the upstream is cancelled at once and a client_closed
row records what was streamed so far."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest


@pytest.mark.parametrize("dialect", ["openai", "ollama"])
def test_disconnect_cancels_upstream_and_records_row(relay, upstream, dialect: str) -> None:
    tag = f"t-{uuid.uuid4().hex[:10]}"
    path = "/v1/chat/completions" if dialect == "openai" else "/api/chat"
    body = {
        "model": "groq/slow:chat_stream_reasoning_x_groq_usage",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    seen_before = len(upstream.disconnects)
    received = 0
    with httpx.stream("POST", relay.url + path, json=body, headers={"X-Proxy-Tag": tag}, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.strip():
                received += 1
            if received == 3:
                hung_up = time.monotonic()
                break
    deadline = time.monotonic() + 2
    while len(upstream.disconnects) == seen_before and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(upstream.disconnects) == seen_before + 1, "the upstream never saw the relay hang up"
    assert upstream.disconnects[-1] - hung_up < 0.1
    row = relay.rows(tag=tag)[0]
    assert (row["outcome"], row["status"], row["streamed"]) == ("client_closed", 499, True)
    assert row["usage_reported"] is False
    assert 2 <= row["output_tokens"] <= 4  # the pieces streamed before the hang-up
    # "hi" in a chat template, estimated (app/estimate.py: 1 token of text, 4 around the message,
    # 3 for the reply's turn) and flagged as such
    assert row["input_tokens"] == 8
    assert row["provider"] == "groq"
