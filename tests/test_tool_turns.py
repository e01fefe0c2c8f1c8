"""A tool-calling conversation from any dialect reaches an OpenAI-compatible server in a shape
every such server takes: an assistant turn that only calls tools carries an empty ``content``,
which the spec allows (llama.cpp's server refuses the null the translations used to send, and
its chat templates fail on a message without content)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

# An OpenAI-compatible server that is not OpenAI (whose Responses API takes /v1/responses as it is).
MODEL = "groq/chat_nonstream_basic"
TOOL = {"name": "get_weather", "description": "", "parameters": {"type": "object", "properties": {}}}
QUESTION = "What is the weather in Paris?"
CONVERSATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "ollama": (
        "/api/chat",
        {
            "model": MODEL,
            "stream": False,
            "messages": [
                {"role": "user", "content": QUESTION},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
                },
                {"role": "tool", "content": "20 C", "tool_name": "get_weather"},
            ],
        },
    ),
    "anthropic": (
        "/v1/messages",
        {
            "model": MODEL,
            "max_tokens": 10,
            "tools": [{"name": "get_weather", "description": "", "input_schema": TOOL["parameters"]}],
            "messages": [
                {"role": "user", "content": QUESTION},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20 C"}]},
            ],
        },
    ),
    "responses": (
        "/v1/responses",
        {
            "model": MODEL,
            "tools": [{"type": "function", **TOOL}],
            "input": [
                {"role": "user", "content": QUESTION},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "20 C"},
            ],
        },
    ),
}


@pytest.mark.parametrize("dialect", sorted(CONVERSATIONS))
def test_a_turn_that_only_calls_tools_goes_with_empty_content(relay, upstream, dialect: str) -> None:
    path, body = CONVERSATIONS[dialect]
    reply = httpx.post(relay.url + path, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    sent = upstream.last("/groq/").body["messages"]
    calling = [m for m in sent if m["role"] == "assistant"]
    assert len(calling) == 1 and calling[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert calling[0]["content"] == "", calling[0]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "20 C"


def test_an_openai_clients_own_null_is_its_to_send(relay, upstream) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "20 C"},
    ]
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": MODEL, "messages": messages}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert upstream.last("/groq/").body["messages"] == messages  # relayed as the client wrote it
