"""Anthropic's Messages API inbound, driven by the real ``anthropic`` SDK (sync and async).

Towards Anthropic the relay passes the client's body on and Anthropic's bytes back
(tests/fixtures/anthropic); towards any other provider it translates both ways, here against
the recorded OpenAI-compatible replies (tests/cases.py). Usage rows carry the provider's
figures and the ``anthropic`` dialect; errors come in Anthropic's shape."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.cases import CHAT_CASES, Case
from tests.conftest import closing
from tests.recordings import expected_body, expected_stream, openai_dialect_says
from tests.test_anthropic import RECORDINGS, Recording, _streamed_message

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
HELLO = [{"role": "user", "content": "hello"}]


def _client(relay: Any, tag: str) -> anthropic.Anthropic:
    return closing(anthropic.Anthropic(base_url=relay.url, api_key="sk-ant-test", default_headers={"X-Proxy-Tag": tag}))


def _recorded_blocks(name: str) -> tuple[list[dict[str, Any]], str]:
    if (FIXTURES / f"{name}.sse").exists():
        blocks, stop = _streamed_message(name)
        for block in blocks:  # a server tool's input streams in as JSON too
            streamed = block.pop("_json", "")
            if streamed:
                block["input"] = json.loads(streamed)
        return blocks, stop
    message = json.loads((FIXTURES / f"{name}.json").read_text())
    return message["content"], message["stop_reason"]


def _check_row(row: dict[str, Any], recording: Recording, model: str) -> None:
    assert row["dialect"] == "anthropic" and row["endpoint"] == "/v1/messages"
    assert row["resolved_model"] == model and row["outcome"] == "ok"
    assert (row["input_tokens"], row["output_tokens"]) == (recording.input, recording.output)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (recording.cache_read, recording.cache_write)
    assert row["usage_reported"] is True and row["streamed"] is recording.stream


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda r: r.name)
def test_native_pass_through_keeps_every_block(relay, upstream, recording: Recording) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    client = _client(relay, tag)
    model = f"anthropic/{recording.name}"
    request = {
        "model": model,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": HELLO,
        "extra_headers": {"anthropic-beta": "interleaved-thinking-2025-05-14"},
    }
    if recording.stream:
        with client.messages.stream(**request) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**request)
    blocks, stop = _recorded_blocks(recording.name)
    got = [b.model_dump(exclude_none=True) for b in message.content]
    assert [b["type"] for b in got] == [b["type"] for b in blocks]
    for mine, theirs in zip(got, blocks, strict=True):
        for key in ("text", "thinking", "signature", "data", "id", "name", "input"):
            if key in theirs:
                assert mine[key] == theirs[key], key
    assert message.stop_reason == stop
    sent = upstream.last("/anthropic/v1/messages")
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}  # the client's body, as written
    assert sent.body["model"] == recording.name
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent.headers["x-api-key"] == "test-key-anthropic"  # the relay's key, not the client's
    rows = relay.rows(tag=tag)
    assert len(rows) == 1
    _check_row(rows[0], recording, model)


def test_native_stream_bytes_arrive_as_sent(relay) -> None:
    name = "messages_stream_thinking"
    body = {"model": f"anthropic/{name}", "max_tokens": 64, "messages": HELLO, "stream": True}
    reply = httpx.post(f"{relay.url}/v1/messages?beta=true", json=body, timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    recorded = (FIXTURES / f"{name}.sse").read_bytes()
    assert reply.content.replace(b"\r\n", b"\n").strip() == recorded.replace(b"\r\n", b"\n").strip()


def _translated(case: Case) -> tuple[str, list[tuple[str, str]], str | None]:
    want = expected_stream(case.provider, case.name) if case.stream else expected_body(case.provider, case.name)
    return want.text, want.tool_calls, want.finish


STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", None: "end_turn"}


@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda c: c.id)
def test_translated_from_openai_compatible(relay, case: Case) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    client = _client(relay, tag)
    model = f"{case.provider}/{case.name}"
    if case.stream:
        with client.messages.stream(model=model, max_tokens=256, messages=HELLO) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(model=model, max_tokens=256, messages=HELLO)
    text, calls, finish = _translated(case)
    got_text = "".join(b.text for b in message.content if b.type == "text")
    assert got_text == text
    got_calls = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert got_calls == [(name, json.loads(arguments or "{}")) for name, arguments in calls]
    assert message.stop_reason == STOP[finish]
    rows = relay.rows(tag=tag)
    assert len(rows) == 1 and rows[0]["dialect"] == "anthropic"
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (case.input, case.output)
    assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) == case.input
    assert message.usage.output_tokens == case.output


def test_streamed_tool_call_arrives_in_claude_codes_shape(relay) -> None:
    """content_block_start with tool_use, then input_json_delta pieces that join to the
    upstream's arguments."""
    body = {"model": "openai/chat_stream_tool_call_include_usage", "max_tokens": 64, "messages": HELLO}
    with httpx.stream("POST", f"{relay.url}/v1/messages", json={**body, "stream": True}, timeout=10) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data:")]
    events = [json.loads(line[5:]) for line in lines]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    tool = next(e for e in starts if e["content_block"]["type"] == "tool_use")
    pieces = [
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == tool["index"]
    ]
    want = expected_stream("openai", "chat_stream_tool_call_include_usage").tool_calls
    assert len(pieces) > 1 and "".join(pieces) == want[0][1]
    assert tool["content_block"]["name"] == want[0][0]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [e["index"] for e in starts]


def test_async_client_and_tool_round_trip(relay, upstream) -> None:
    async def run() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(base_url=relay.url, api_key="k") as client:
            return await client.messages.create(
                model="openai/chat_nonstream_tool_calls",
                max_tokens=128,
                system="use tools",
                tools=[{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}],
                tool_choice={"type": "any", "disable_parallel_tool_use": True},
                stop_sequences=["END"],
                thinking={"type": "enabled", "budget_tokens": 4000},
                messages=[
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "hm", "signature": "sig"},
                            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "call_1",
                                "content": [{"type": "text", "text": "sunny"}, {"type": "text", "text": "21C"}],
                            },
                            {"type": "text", "text": "and tomorrow?"},
                        ],
                    },
                ],
            )

    message = asyncio.run(run())
    assert any(b.type == "tool_use" for b in message.content)
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["messages"][0] == {"role": "system", "content": "use tools"}
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert "thinking_blocks" not in sent["messages"][2]
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny\n21C"}
    assert sent["messages"][4] == {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]}
    assert sent["tools"][0]["function"]["parameters"] == {"type": "object"}
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["stop"] == ["END"] and sent["reasoning_effort"] == "medium"


def test_errors_come_in_anthropics_shape(relay) -> None:
    client = closing(anthropic.Anthropic(base_url=relay.url, api_key="k", max_retries=0))
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="openai/chat_nonstream_basic", messages=HELLO, max_tokens=0)
    assert bad.value.body["type"] == "error"
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nowhere/none", messages=HELLO, max_tokens=5)
    assert missing.value.body["error"]["type"] == "not_found_error"
    reply = httpx.post(f"{relay.url}/v1/messages", content=b"{", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["type"] == "error"


def test_count_tokens_from_anthropic_and_estimated_elsewhere(relay, upstream) -> None:
    client = closing(anthropic.Anthropic(base_url=relay.url, api_key="k"))
    counted = client.messages.count_tokens(model="anthropic/claude-x", messages=HELLO, system="s")
    assert counted.input_tokens == 1001  # the emulated Anthropic's own count
    sent = upstream.last("count_tokens")
    assert sent.body["model"] == "claude-x" and sent.body["system"] == "s"
    long_text = "The quick brown fox jumps over the lazy dog. " * 200
    request = {
        "model": "openai/chat_nonstream_basic",
        "system": "You are terse.",
        "tools": [{"name": "t", "description": "d" * 300, "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": long_text}],
    }
    raw = client.messages.with_raw_response.count_tokens(**request)
    assert raw.headers["x-relay-token-count"] == "estimate"
    # Never low: ~2,000 tokens of text under any tokenizer, plus the tools.
    assert raw.parse().input_tokens >= len(long_text) // 4 + 100


OTHER_UPSTREAMS = [  # (model, whether its recording is a stream)
    ("gemini/generateContent_basic_thoughts", False),
    ("gemini/generateContent_function_call", True),  # streamGenerateContent without alt=sse
    ("gemini/streamGenerateContent_sse_thinking", True),
    ("gemini/streamGenerateContent_sse_usage_mid_stream", True),
    ("lab/api_chat_stream_truncated", True),
    ("lab/api_chat_nonstream_tool_calls", False),
    ("deepseek/chat_stream_reasoner", True),
    ("deepseek/chat_nonstream_cache_hit_reasoning", False),
]


@pytest.mark.parametrize(("model", "stream"), OTHER_UPSTREAMS)
def test_gemini_ollama_and_reasoning_upstreams_say_the_same_in_both_dialects(
    relay, sdk, model: str, stream: bool
) -> None:
    """The Anthropic dialect tells what the OpenAI dialect tells of the same recording: text,
    thinking (as thinking blocks), tool calls, stop reason, and the same usage row."""
    tags = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    said = openai_dialect_says(sdk.openai(relay.url), model, stream=stream, tag=tags[0])
    text, reasoning, finish = said.text, said.reasoning, said.finish
    tool_calls = [(name, json.loads(arguments or "{}")) for name, arguments in said.tool_calls]
    assert text or tool_calls  # the recording says something
    if stream:
        with _client(relay, tags[1]).messages.stream(model=model, max_tokens=64, messages=HELLO) as events:
            message = events.get_final_message()
    else:
        message = _client(relay, tags[1]).messages.create(model=model, max_tokens=64, messages=HELLO)
    assert "".join(b.text for b in message.content if b.type == "text") == text
    assert "".join(b.thinking for b in message.content if b.type == "thinking") == reasoning
    assert [(b.name, b.input) for b in message.content if b.type == "tool_use"] == tool_calls
    assert message.stop_reason == STOP[finish]
    first, second = relay.rows(tag=tags[0])[0], relay.rows(tag=tags[1])[0]
    counts = ("input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens", "cost_nanousd")
    assert [first[c] for c in counts] == [second[c] for c in counts]
    assert (first["dialect"], second["dialect"]) == ("openai", "anthropic")
    assert message.usage.output_tokens == second["output_tokens"]


def test_x_api_key_is_a_relay_key_or_a_tag(make_relay) -> None:
    from app.keys import key_hash, new_key, shown_prefix
    from app.stores.models import ApiKey

    plain = make_relay()
    client = closing(anthropic.Anthropic(base_url=plain.url, api_key="team-claude"))  # sent as x-api-key
    raw = client.messages.with_raw_response.create(model="openai/chat_nonstream_basic", max_tokens=9, messages=HELLO)
    assert plain.row(raw.headers["x-request-id"])["tags"] == ["team-claude"]

    keyed = make_relay(require_api_key=True)
    key = new_key()

    async def create() -> None:
        with keyed.app.services.database.context:
            await ApiKey.create(prefix=shown_prefix(key), key_hash=key_hash(key), tags=["keyed"])
        await keyed.app.live.reload()

    keyed.server.call(create)
    refused = closing(anthropic.Anthropic(base_url=keyed.url, api_key="rk-wrong", max_retries=0))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        refused.messages.create(model="openai/chat_nonstream_basic", max_tokens=9, messages=HELLO)
    assert caught.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.AuthenticationError):
        refused.messages.count_tokens(model="openai/chat_nonstream_basic", messages=HELLO)
    served = closing(anthropic.Anthropic(base_url=keyed.url, api_key=key))
    raw = served.messages.with_raw_response.create(model="openai/chat_nonstream_basic", max_tokens=9, messages=HELLO)
    assert keyed.row(raw.headers["x-request-id"])["tags"] == ["keyed"]
    assert served.messages.count_tokens(model="openai/chat_nonstream_basic", messages=HELLO).input_tokens > 0


def test_compaction_iterations_are_what_is_billed() -> None:
    """Anthropic's documented compaction example: the top level counts only the last sampling
    (23,000 in, 1,000 out), iterations[] both (the summary read 180,000 and wrote 3,500)."""
    from app.formats.anthropic_reply import usage_from_anthropic

    usage = usage_from_anthropic(
        {
            "input_tokens": 23000,
            "output_tokens": 1000,
            "cache_read_input_tokens": 0,
            "iterations": [
                {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500},
                {"type": "message", "input_tokens": 23000, "output_tokens": 1000},
            ],
        }
    )
    assert (usage.input, usage.output, usage.cache_read) == (203000, 4500, 0)
    plain = usage_from_anthropic({"input_tokens": 5, "output_tokens": 7, "cache_creation_input_tokens": 3})
    assert (plain.input, plain.output, plain.cache_write) == (5, 7, 3)


def test_what_only_anthropic_takes_goes_to_anthropic_and_nowhere_else(relay, upstream) -> None:
    client = closing(anthropic.Anthropic(base_url=relay.url, api_key="k", max_retries=0))
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    history = [
        {"role": "user", "content": "news?"},
        {
            "role": "assistant",
            "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}],
        },
        {"role": "user", "content": "more"},
    ]
    served = client.messages.create(
        model="anthropic/messages_nonstream_refusal", max_tokens=9, messages=history, tools=[search]
    )
    assert served.type == "message"
    assert upstream.last("/anthropic/v1/messages").body["tools"] == [search]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="openai/chat_nonstream_basic", max_tokens=9, messages=history, tools=[search])
    assert "server_tool_use" in caught.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="openai/chat_nonstream_basic", max_tokens=9, messages=HELLO, tools=[search])
    assert "web_search_20250305" in caught.value.body["error"]["message"]


def test_claude_model_names_follow_an_alias_to_a_local_model(make_relay, upstream) -> None:
    relay = make_relay(model_aliases="claude-haiku-4-5=lab/api_chat_nonstream_tool_calls")
    client = closing(anthropic.Anthropic(base_url=relay.url, api_key="k"))
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=32, messages=HELLO)
    assert raw.headers["x-relay-model"] == "lab/api_chat_nonstream_tool_calls"
    assert raw.headers["x-relay-route"] == "alias"
    assert any(block.type == "tool_use" for block in raw.parse().content)
    assert upstream.last("/lab/api/chat").body["model"] == "api_chat_nonstream_tool_calls"


@pytest.mark.parametrize("recording", ["messages_nonstream_cache_read_and_creation", "messages_stream_thinking"])
def test_native_rows_cost_what_the_openai_dialects_rows_cost(relay, upstream, sdk, recording: str) -> None:
    """A catalog model (priced), served by a recording: the same usage and cost whichever
    dialect asked, cache reads and writes included."""
    upstream.fallback["anthropic"] = recording
    try:
        tags = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(2)]
        stream = "_stream_" in recording
        request = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 64, "messages": HELLO}
        if stream:
            with _client(relay, tags[0]).messages.stream(**request) as events:
                events.get_final_message()
            for _ in sdk.openai(relay.url).chat.completions.create(
                model=request["model"], messages=HELLO, stream=True, extra_headers={"X-Proxy-Tag": tags[1]}
            ):
                pass
        else:
            _client(relay, tags[0]).messages.create(**request)
            sdk.openai(relay.url).chat.completions.create(
                model=request["model"], messages=HELLO, extra_headers={"X-Proxy-Tag": tags[1]}
            )
    finally:
        upstream.fallback.pop("anthropic", None)
    native, translated = relay.rows(tag=tags[0])[0], relay.rows(tag=tags[1])[0]
    assert native["cost_nanousd"] and native["cost_source"] != "unpriced"
    columns = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_nanousd")
    assert [native[c] for c in columns] == [translated[c] for c in columns]
    assert (native["dialect"], translated["dialect"]) == ("anthropic", "openai")
