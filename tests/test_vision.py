"""An image sent in either inbound dialect reaches each upstream in that upstream's own shape."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.conftest import PNG

B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{B64}"

# upstream -> (model the relay is asked for, path the emulator sees, how to find the image in what it got)
UPSTREAMS = {
    "openai": ("openai/chat_nonstream_basic", "/openai/v1/chat/completions", lambda b: b["messages"][0]["content"][1]),
    "anthropic": (
        "anthropic/messages_nonstream_thinking",
        "/anthropic/v1/messages",
        lambda b: b["messages"][0]["content"][1],
    ),
    "gemini": ("gemini/generateContent_basic_thoughts", "/gemini/", lambda b: b["contents"][0]["parts"][1]),
    "perplexity": (
        "perplexity/agent_responses_nonstream_web_search",
        "/perplexity/",
        lambda b: b["input"][0]["content"][1],
    ),
    "ollama": ("lab/api_chat_nonstream_tool_calls", "/lab/api/chat", lambda b: b["messages"][0]["images"][0]),
}


def expected(upstream: str, url: str | None) -> Any:
    """The image as each API takes it; ``url`` for a client that sent a link, else bytes."""
    if upstream == "openai":
        return {"type": "image_url", "image_url": {"url": url or DATA_URL}}
    if upstream == "anthropic":
        source = {"type": "url", "url": url} if url else {"type": "base64", "media_type": "image/png", "data": B64}
        return {"type": "image", "source": source}
    if upstream == "gemini":  # Gemini and Ollama take bytes: a link is fetched
        return {"inlineData": {"mimeType": "image/png", "data": B64}}
    if upstream == "perplexity":
        return {"type": "input_image", "image_url": url or DATA_URL}
    return B64


@pytest.mark.parametrize("upstream_name", list(UPSTREAMS))
@pytest.mark.parametrize("how", ["openai-data-url", "openai-link", "ollama-images"])
def test_image_reaches_upstream_in_its_shape(relay, upstream, image_server, upstream_name: str, how: str) -> None:
    model, path, find = UPSTREAMS[upstream_name]
    link = f"{image_server}/cat.png" if how == "openai-link" else None
    if how.startswith("openai"):
        image = {"type": "image_url", "image_url": {"url": link or DATA_URL}}
        body = {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]}
        reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
    else:
        message = {"role": "user", "content": "what?", "images": [B64]}
        reply = httpx.post(relay.url + "/api/chat", json={"model": model, "messages": [message], "stream": False})
    assert reply.status_code == 200, reply.text
    assert find(upstream.last(path).body) == expected(upstream_name, link)
