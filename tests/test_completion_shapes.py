"""OpenAI-dialect shapes the spec requires whatever the upstream: a streamed ``/v1/completions``
keeps its text and each choice's ``logprobs`` (``CreateCompletionResponse`` requires
finish_reason, index, logprobs and text), also when the upstream answered a stream request with
one JSON body or is Ollama's ``/api/generate``; a re-streamed body never sends a delta field as
null that the spec types as a list (``ChatCompletionStreamResponseDelta.tool_calls``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"
COMPLETION_CHOICE = {"finish_reason", "index", "logprobs", "text"}


def events(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    assert reply.text.rstrip().endswith("data: [DONE]")
    return [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: {")]


def test_a_streamed_completion_from_a_json_answer_keeps_its_text(make_relay: Any, faulty: Any) -> None:
    relay = make_relay(provider_base_urls={"openai": faulty.url})
    recorded = json.loads((FIXTURES / "openai" / "completions_legacy_nonstream.json").read_text())
    body = {"model": "openai/ignores-stream:openai/completions_legacy_nonstream", "prompt": "A new holiday"}
    chunks = events(httpx.post(relay.url + "/v1/completions", json={**body, "stream": True}, timeout=30))
    choices = [choice for chunk in chunks for choice in chunk["choices"]]
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert all(COMPLETION_CHOICE <= choice.keys() for choice in choices)
    assert "".join(choice["text"] for choice in choices) == recorded["choices"][0]["text"]
    assert choices[-1]["finish_reason"] == "length"


def test_a_restreamed_mistral_reply_sends_no_null_tool_calls(make_relay: Any, faulty: Any) -> None:
    relay = make_relay(provider_base_urls={"openai": faulty.url})
    recorded = json.loads((FIXTURES / "mistral" / "chat_nonstream_prompt_cache.json").read_text())
    assert recorded["choices"][0]["message"]["tool_calls"] is None  # as Mistral sends it
    body = {"model": "openai/ignores-stream:mistral/chat_nonstream_prompt_cache", "stream": True}
    chunks = events(
        httpx.post(relay.url + "/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "x"}]})
    )
    deltas = [choice["delta"] for chunk in chunks for choice in chunk["choices"]]
    assert deltas and all(delta.get("tool_calls", []) is not None for delta in deltas)
    assert "".join(delta.get("content") or "" for delta in deltas) == recorded["choices"][0]["message"]["content"]


def test_a_completion_streamed_from_ollama_generate_has_logprobs(relay: Any) -> None:
    body = {"model": "lab/llama3.2", "prompt": "Why is the sky blue?", "stream": True}
    chunks = events(httpx.post(relay.url + "/v1/completions", json=body, timeout=30))
    choices = [choice for chunk in chunks for choice in chunk["choices"]]
    assert choices and all(COMPLETION_CHOICE <= choice.keys() for choice in choices)
    whole = httpx.post(relay.url + "/v1/completions", json={**body, "stream": False}, timeout=30).json()
    assert COMPLETION_CHOICE <= whole["choices"][0].keys()
    assert "".join(choice["text"] for choice in choices) == whole["choices"][0]["text"]
