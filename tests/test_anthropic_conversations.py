"""Conversations through the relay to the Anthropic adapter, checked by what the emulated
Anthropic received: tool results paired with their tool_use ids (both dialects), signed thinking
blocks going back first, thinking dropped rather than refused, and images in Anthropic's shapes."""

from __future__ import annotations

import json
from typing import Any

from tests.test_anthropic import MESSAGES, PNG, expected

TOOL = {
    "type": "function",
    "function": {
        "name": "retrieve_entity_info",
        "description": "Get the knowledge about the given entity.",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
}


def test_tool_round_trip_openai_dialect(relay, sdk, upstream) -> None:
    client = sdk.openai(relay.url)
    question = {"role": "user", "content": "Alice, Bob, Charlie and Daisy are a family. Who is the youngest?"}
    first = client.chat.completions.create(
        model="anthropic/messages_nonstream_parallel_tool_use", messages=[question], tools=[TOOL], tool_choice="auto"
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    results = [
        {"role": "tool", "tool_call_id": c.id, "content": f"{json.loads(c.function.arguments)['name']} is {age}"}
        for c, age in zip(message.tool_calls, (41, 43, 9, 7), strict=True)
    ]
    client.chat.completions.create(
        model="anthropic/messages_nonstream_cache_read_and_creation",
        messages=[question, message.model_dump(exclude_none=True), *results],
        tools=[TOOL],
    )
    sent = upstream.last("/anthropic/").body
    ids = ["toolu_0167cfEnoQaPviGdVXA95zcu", "toolu_01EEe2V5HD1Ac4rKiUR4HD2T"]
    ids += ["toolu_01XFyAjstT3966qvRynZyVPo", "toolu_013mnQZbgtK2oe3Mo3XKJsx3"]
    names = ["Alice", "Bob", "Charlie", "Daisy"]
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assistant, answers = sent["messages"][1]["content"], sent["messages"][2]["content"]
    assert assistant[0] == {"type": "text", "text": message.content}
    assert assistant[1:] == [
        {"type": "tool_use", "id": i, "name": "retrieve_entity_info", "input": {"name": n}}
        for i, n in zip(ids, names, strict=True)
    ]
    # Four OpenAI tool messages, one Anthropic user turn.
    assert answers == [
        {"type": "tool_result", "tool_use_id": i, "content": f"{n} is {a}"}
        for i, n, a in zip(ids, names, (41, 43, 9, 7), strict=True)
    ]
    assert sent["tools"][0]["name"] == "retrieve_entity_info"


def test_streamed_tool_call_round_trip_openai_dialect(relay, sdk, upstream) -> None:
    client = sdk.openai(relay.url)
    tool = {"type": "function", "function": {"name": "pelican_name_generator", "description": "", "parameters": {}}}
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(
        model="anthropic/messages_stream_tool_use", messages=MESSAGES, tools=[tool], stream=True
    ):
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    assert calls == {0: {"id": "toolu_01CzN6riCPqw4pVSuTd9Dwn7", "name": "pelican_name_generator", "arguments": "{}"}}
    call = {"id": calls[0]["id"], "type": "function", "function": {"name": "pelican_name_generator", "arguments": "{}"}}
    client.chat.completions.create(
        model="anthropic/messages_stream_text_simple",
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "Pelagia"},
        ],
        tools=[tool],
        stream=True,
    ).close()
    sent = upstream.last("/anthropic/").body
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01CzN6riCPqw4pVSuTd9Dwn7",
                    "name": "pelican_name_generator",
                    "input": {},
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01CzN6riCPqw4pVSuTd9Dwn7", "content": "Pelagia"}],
        },
    ]
    assert sent["tools"] == [
        {"name": "pelican_name_generator", "description": "", "input_schema": {"type": "object", "properties": {}}}
    ]


def test_tool_round_trip_ollama_dialect(relay, sdk, upstream) -> None:
    client = sdk.ollama(relay.url)
    question = {"role": "user", "content": "Alice, Bob, Charlie and Daisy are a family. Who is the youngest?"}
    first = client.chat(
        model="anthropic/messages_nonstream_parallel_tool_use", messages=[question], tools=[TOOL], stream=False
    )
    calls = first.message.tool_calls
    assert [c.function.arguments["name"] for c in calls] == ["Alice", "Bob", "Charlie", "Daisy"]
    assistant = {"role": "assistant", "content": first.message.content, "tool_calls": calls}
    results = [{"role": "tool", "tool_name": "retrieve_entity_info", "content": f"age {age}"} for age in (41, 43, 9, 7)]
    list(
        client.chat(
            model="anthropic/messages_stream_short_end_turn",
            messages=[question, assistant, *results],
            tools=[TOOL],
            stream=True,
        )
    )
    sent = upstream.last("/anthropic/").body
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    uses = [b for b in sent["messages"][1]["content"] if b["type"] == "tool_use"]
    answers = sent["messages"][2]["content"]
    assert [u["input"] for u in uses] == [{"name": n} for n in ("Alice", "Bob", "Charlie", "Daisy")]
    assert [a["type"] for a in answers] == ["tool_result"] * 4
    # The Ollama SDK carries no call ids; the relay's own ids pair each result with its call.
    assert [a["tool_use_id"] for a in answers] == [u["id"] for u in uses]
    assert len({u["id"] for u in uses}) == 4
    assert [a["content"] for a in answers] == ["age 41", "age 43", "age 9", "age 7"]


def test_thinking_blocks_round_trip(relay, sdk, upstream) -> None:
    """The signed thinking block a stream ended with goes back first in the assistant turn."""
    client = sdk.openai(relay.url)
    blocks: list[dict[str, Any]] = []
    text = ""
    for chunk in client.chat.completions.create(
        model="anthropic/messages_stream_thinking", messages=MESSAGES, stream=True, reasoning_effort="low"
    ):
        for choice in chunk.choices:
            blocks += (choice.delta.model_extra or {}).get("thinking_blocks") or []
            text += choice.delta.content or ""
    assert upstream.last("/anthropic/").body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert blocks == expected("messages_stream_thinking").thinking_blocks
    call = {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    client.chat.completions.create(
        model="anthropic/messages_nonstream_thinking",
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": text, "thinking_blocks": blocks, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "found"},
        ],
        reasoning_effort="low",
        temperature=0.2,
    )
    sent = upstream.last("/anthropic/").body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in sent  # thinking runs at Anthropic's own sampling
    assistant = sent["messages"][1]["content"]
    assert assistant[0] == blocks[0] and assistant[0]["signature"].startswith("EvMCCkYICxgCKkCHP2cS")
    assert [b["type"] for b in assistant] == ["thinking", "text", "tool_use"]


def test_thinking_without_blocks_is_dropped_rather_than_refused(relay, sdk, upstream) -> None:
    """The Ollama dialect cannot carry signatures, so a tool loop continues without thinking."""
    client = sdk.ollama(relay.url)
    list(client.chat(model="anthropic/messages_stream_short_end_turn", messages=MESSAGES, think="high", stream=True))
    first = upstream.last("/anthropic/").body
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert first["max_tokens"] == 16384 + 8192  # the budget on top of the default answer room
    call = {"function": {"name": "lookup", "arguments": {"q": "x"}}}
    followup = [
        *MESSAGES,
        {"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [call]},
        {"role": "tool", "tool_name": "lookup", "content": "found"},
    ]
    list(client.chat(model="anthropic/messages_stream_short_end_turn", messages=followup, think="high", stream=True))
    sent = upstream.last("/anthropic/").body
    assert "thinking" not in sent and sent["max_tokens"] == 8192
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["tool_use"]


def test_images_openai_dialect(relay, sdk, upstream) -> None:
    client = sdk.openai(relay.url)
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    client.chat.completions.create(
        model="anthropic/messages_nonstream_refusal", messages=[{"role": "user", "content": content}]
    )
    assert upstream.last("/anthropic/").body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_images_ollama_dialect(relay, sdk, upstream) -> None:
    client = sdk.ollama(relay.url)
    client.chat(
        model="anthropic/messages_nonstream_refusal",
        messages=[{"role": "user", "content": "What is this?", "images": [PNG]}],
        stream=False,
    )
    assert upstream.last("/anthropic/").body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        }
    ]
