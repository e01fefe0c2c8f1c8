"""Anthropic replies without servers: usage (the one-hour cache split included), stop reasons,
the stream translator with server tools, and the adapter's errors against a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.adapters.anthropic import AnthropicAdapter
from app.adapters.base import Call
from app.errors import BadRequest, UpstreamProtocolError, UpstreamStatusError
from app.formats.anthropic_reply import chat_body, finish_reason, merge_usage, usage_from_anthropic
from app.formats.anthropic_stream import StreamTranslator
from app.internal import Usage
from app.providers import Provider
from tests.servers import adapter_on

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
USER = {"role": "user", "content": "hi"}


def test_usage_with_one_hour_cache_writes_and_searches() -> None:
    raw = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 7,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 9,
        "server_tool_use": {"web_search_requests": 2},
    }
    assert usage_from_anthropic(raw) == Usage(
        input=5, output=9, cache_read=7, cache_write=3000, cache_write_1h=2000, web_search_requests=2, reported=True
    )


def test_recorded_cache_usage_has_no_one_hour_part() -> None:
    raw = json.loads((FIXTURES / "messages_nonstream_cache_read_and_creation.json").read_text())["usage"]
    usage = usage_from_anthropic(raw)
    assert (usage.input, usage.cache_read, usage.cache_write, usage.cache_write_1h, usage.output) == (
        3,
        1111,
        418,
        0,
        33,
    )


def test_final_stream_usage_keeps_what_message_delta_leaves_out() -> None:
    start = {"input_tokens": 12, "cache_creation": {"ephemeral_1h_input_tokens": 400}, "output_tokens": 1}
    final = {"output_tokens": 77, "cache_creation_input_tokens": 400}
    usage = usage_from_anthropic(merge_usage(start, final))
    assert (usage.input, usage.output, usage.cache_write, usage.cache_write_1h) == (12, 77, 400, 400)


def test_stop_reasons() -> None:
    table = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
        None: "stop",
    }
    assert {reason: finish_reason(reason, True) for reason in table} == table
    assert finish_reason("tool_use", False) == "stop"


PAGES = [
    {"type": "web_search_result", "url": "https://a.example/1", "title": "One", "encrypted_content": "x"},
    {"type": "web_search_result", "url": "https://b.example/2", "title": "Two", "encrypted_content": "y"},
]
CITED = {"type": "web_search_result_location", "url": "https://c.example/3", "title": "Three", "cited_text": "t"}
SEARCH = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": PAGES}
SOURCES: dict[str, Any] = {
    "citations": ["https://a.example/1", "https://b.example/2", "https://c.example/3"],
    "search_results": [
        {"title": "One", "url": "https://a.example/1"},
        {"title": "Two", "url": "https://b.example/2"},
        {"title": "Three", "url": "https://c.example/3"},
    ],
}


def test_server_tools_are_skipped_but_searches_counted() -> None:
    translate = StreamTranslator("r1")
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 10}}},
        {"type": "content_block_start", "index": 0, "content_block": {**SEARCH, "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"q":1}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": RESULT},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": CITED}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Found."}},
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 30, "server_tool_use": {"web_search_requests": 1}},
        },
        {"type": "message_stop"},
    ]
    items = [item for event in events for item in translate.event(event)]
    chunks = [i for i in items if isinstance(i, dict)]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {},
        {},
        {"content": "Found."},
        {},
    ]
    assert chunks[1]["citations"] == SOURCES["citations"][:2]  # as soon as the search returned
    assert {k: chunks[-1][k] for k in SOURCES} == SOURCES  # and every source on the last chunk
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[0]["id"] == "msg_1"
    usages = [i for i in items if isinstance(i, Usage)]
    assert [(u.input, u.output, u.web_search_requests) for u in usages] == [(10, 0, 0), (10, 30, 1)]


def test_whole_reply_with_web_search() -> None:
    message = {
        "id": "msg_2",
        "model": "m",
        "content": [
            {"type": "text", "text": "Let me look. "},
            SEARCH,
            RESULT,
            {"type": "text", "text": "Found it.", "citations": [CITED]},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 100, "output_tokens": 20, "server_tool_use": {"web_search_requests": 1}},
    }
    body, usage = chat_body(message, created=1)
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Let me look. Found it."},
        "finish_reason": "stop",
    }
    assert {k: body[k] for k in SOURCES} == SOURCES
    assert usage is not None and (usage.input, usage.output, usage.web_search_requests) == (100, 20, 1)


# --- the adapter against a loopback server ----------------------------------------------

PROVIDER = Provider("anthropic", "anthropic", "https://anthropic.test", "key-1")


def adapter(handler: Any) -> Any:
    return adapter_on(AnthropicAdapter, PROVIDER, handler)


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}   \n\n".encode() for name, data in events)


def call(stream: bool) -> Call:
    return Call(model="claude-x", kind="chat", body={"messages": [USER]}, stream=stream, request_id="r1")


START = ("message_start", {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 4}}})
TEXT = [
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
]
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_error_status_before_the_stream_keeps_anthropic_message() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(529, json=OVERLOADED)

    async with adapter(handler) as anthropic:
        with pytest.raises(UpstreamStatusError) as caught:
            await anthropic.send(call(stream=True))
    assert (caught.value.status, caught.value.type) == (529, "overloaded_error")
    assert caught.value.message == "anthropic: Overloaded"
    assert seen[0].url.path == "/v1/messages"
    assert (seen[0].headers["x-api-key"], seen[0].headers["anthropic-version"]) == ("key-1", "2023-06-01")
    bad = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}}
    async with adapter(lambda r: httpx.Response(400, json=bad)) as anthropic:
        with pytest.raises(UpstreamStatusError) as caught:
            await anthropic.send(call(stream=False))
    assert (caught.value.status, caught.value.message) == (400, "anthropic: max_tokens: too big")


async def test_error_event_mid_stream_is_raised_after_the_text() -> None:
    body = sse(START, *TEXT, ("ping", {"type": "ping"}), ("error", OVERLOADED))
    items: list[Any] = []
    async with adapter(lambda r: httpx.Response(200, content=body)) as anthropic:
        reply = await anthropic.send(call(stream=True))
        assert reply.stream is not None
        with pytest.raises(UpstreamStatusError) as caught:
            async for item in reply.stream:
                items.append(item)
    assert (caught.value.status, caught.value.type, caught.value.message) == (
        529,
        "overloaded_error",
        "anthropic: Overloaded",
    )
    assert [i["choices"][0]["delta"].get("content") for i in items if isinstance(i, dict)] == ["", "Hi"]
    assert [i.input for i in items if isinstance(i, Usage)] == [4]


async def test_a_stream_cut_short_is_a_protocol_error() -> None:
    async with adapter(lambda r: httpx.Response(200, content=sse(START, *TEXT))) as anthropic:
        reply = await anthropic.send(call(stream=True))
        assert reply.stream is not None
        with pytest.raises(UpstreamProtocolError):
            async for _ in reply.stream:
                pass


async def test_completions_and_embeddings_are_not_served() -> None:
    async with adapter(lambda r: httpx.Response(500)) as anthropic:
        for kind in ("completion", "embedding"):
            with pytest.raises(BadRequest):
                await anthropic.send(Call("claude-x", kind, {"prompt": "x"}, False, "r"))


async def test_model_list() -> None:
    models = {"data": [{"id": "claude-sonnet-4-5", "type": "model"}], "has_more": False}
    async with adapter(lambda r: httpx.Response(200, json=models)) as anthropic:
        assert await anthropic.list_models() == models["data"]
