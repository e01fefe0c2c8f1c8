"""SSE and NDJSON framing on recorded provider traffic, split at every kind of boundary."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.adapters.wire import NDJSONSplitter, SSEParser, SSEvent, iter_ndjson, iter_sse

FIXTURES = Path(__file__).parent / "fixtures"
SSE_FILES = sorted(FIXTURES.glob("*/*.sse"))
NDJSON_STREAM = FIXTURES / "ollama" / "api_chat_stream_truncated.ndjson"

_ANTHROPIC_SHORT = {
    "message_start": 1,
    "content_block_start": 1,
    "ping": 1,
    "content_block_delta": 1,
    "content_block_stop": 1,
    "message_delta": 1,
    "message_stop": 1,
}
# file -> (number of events, Counter of event names); None is "no event: line"
EXPECTED: dict[str, tuple[int, dict[Any, int]]] = {
    "perplexity/agent_responses_stream_web_search.sse": (44, {None: 44}),
    "anthropic/messages_stream_prompt_cache_code_exec.sse": (
        44,
        {
            "message_start": 1,
            "content_block_start": 5,
            "ping": 1,
            "content_block_delta": 30,
            "content_block_stop": 5,
            "message_delta": 1,
            "message_stop": 1,
        },
    ),
    "anthropic/messages_stream_redacted_thinking.sse": (
        27,
        {
            "message_start": 1,
            "content_block_start": 3,
            "ping": 3,
            "content_block_delta": 15,
            "content_block_stop": 3,
            "message_delta": 1,
            "message_stop": 1,
        },
    ),
    "anthropic/messages_stream_short_end_turn.sse": (7, _ANTHROPIC_SHORT),
    "anthropic/messages_stream_text_simple.sse": (7, _ANTHROPIC_SHORT),
    "anthropic/messages_stream_thinking.sse": (
        118,
        {**_ANTHROPIC_SHORT, "content_block_delta": 110, "content_block_start": 2, "content_block_stop": 2},
    ),
    "anthropic/messages_stream_tool_use.sse": (7, _ANTHROPIC_SHORT),
    # Counted from the files' own `event:` lines.
    "openai-responses/responses_stream_client_tool_search.sse": (
        5,
        {"response.created": 1, "response.in_progress": 1, "response.output_item.added": 1}
        | {"response.output_item.done": 1, "response.completed": 1},
    ),
    "openai-responses/responses_stream_function_call_spec.sse": (
        8,
        {"response.created": 1, "response.in_progress": 1, "response.output_item.added": 1}
        | {"response.function_call_arguments.delta": 2, "response.function_call_arguments.done": 1}
        | {"response.output_item.done": 1, "response.completed": 1},
    ),
    "openai-responses/responses_stream_error.sse": (
        4,
        {"response.created": 1, "response.in_progress": 1, "error": 1, "response.failed": 1},
    ),
    "openai-responses/responses_stream_shell_local_multiturn.sse": (
        16,
        {"response.created": 1, "response.in_progress": 1, "response.output_item.added": 1}
        | {"response.content_part.added": 1, "response.output_text.delta": 8, "response.output_text.done": 1}
        | {"response.content_part.done": 1, "response.output_item.done": 1, "response.completed": 1},
    ),
    "openai-responses/responses_stream_web_search_tool.sse": (
        185,
        {"response.created": 1, "response.in_progress": 1, "response.output_item.added": 14}
        | {"response.output_item.done": 14, "response.web_search_call.in_progress": 6}
        | {"response.web_search_call.searching": 6, "response.web_search_call.completed": 6}
        | {"response.content_part.added": 1, "response.output_text.delta": 121}
        | {"response.output_text.annotation.added": 12, "response.output_text.done": 1}
        | {"response.content_part.done": 1, "response.completed": 1},
    ),
    "deepseek/chat_stream_reasoner.sse": (212, {None: 212}),
    "gemini/streamGenerateContent_sse_basic.sse": (3, {None: 3}),
    "gemini/streamGenerateContent_sse_thinking.sse": (23, {None: 23}),
    "gemini/streamGenerateContent_sse_usage_mid_stream.sse": (3, {None: 3}),
    "groq/chat_stream_reasoning_x_groq_usage.sse": (990, {None: 990}),
    "groq/chat_stream_web_search_usage_breakdown.sse": (227, {None: 227}),
    "openai/chat_stream_text_short.sse": (7, {None: 7}),
    "openai/chat_stream_tool_call_include_usage.sse": (9, {None: 9}),
    "openrouter/chat_stream_reasoning_cost.sse": (15, {None: 15}),
    "perplexity/chat_stream_citations.sse": (9, {None: 9}),
    "perplexity/chat_stream_text.sse": (9, {None: 9}),
    "xai/chat_stream_reasoning.sse": (345, {None: 345}),
}


def _name(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def parse(data: bytes, size: int | None = None) -> list[SSEvent]:
    """Feed ``data`` in pieces of ``size`` bytes (all at once when None)."""
    parser = SSEParser()
    step = size or max(len(data), 1)
    events: list[SSEvent] = []
    for start in range(0, len(data), step):
        events += parser.feed(data[start : start + step])
    return events + parser.close()


def parse_at(data: bytes, cuts: list[int]) -> list[SSEvent]:
    parser = SSEParser()
    events: list[SSEvent] = []
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        events += parser.feed(data[start:end])
    return events + parser.close()


def test_every_recorded_sse_file_is_listed():
    assert sorted(EXPECTED) == sorted(_name(p) for p in SSE_FILES)


@pytest.mark.parametrize("path", SSE_FILES, ids=_name)
def test_recorded_stream_parses_the_same_for_any_split(path: Path):
    data = path.read_bytes()
    whole = parse(data)
    count, names = EXPECTED[_name(path)]
    assert len(whole) == count
    assert Counter(e.event for e in whole) == Counter(names)
    assert parse(data, 1) == whole
    assert parse(data, 7) == whole
    assert parse(data, 4096) == whole
    for event in whole:
        if event.data != "[DONE]":
            json.loads(event.data)
        assert "\r" not in event.data and not event.data.startswith(" ")
    # Chat Completions streams end with exactly one [DONE]; Anthropic, Gemini and OpenAI's
    # Responses API send none.
    done = [e for e in whole if e.data == "[DONE]"]
    assert (done == [whole[-1]]) == (path.parent.name not in ("anthropic", "gemini", "openai-responses"))


def test_anthropic_padding_is_kept_and_still_json():
    events = parse((FIXTURES / "anthropic/messages_stream_redacted_thinking.sse").read_bytes())
    assert events[-1] == SSEvent("message_stop", '{"type":"message_stop"          }')
    start = json.loads(events[0].data)
    assert start["message"]["usage"]["input_tokens"] == 92
    assert json.loads(events[-2].data)["usage"]["output_tokens"] == 189


def test_gemini_crlf_framing_without_done():
    data = (FIXTURES / "gemini/streamGenerateContent_sse_basic.sse").read_bytes()
    assert data.count(b"\r\n\r\n") == 3
    events = parse(data, 1)
    texts = [json.loads(e.data)["candidates"][0]["content"]["parts"][0]["text"] for e in events]
    assert texts[:2] == ["The", " capital of France"]
    assert json.loads(events[-1].data)["usageMetadata"]["totalTokenCount"] == 21


def test_openrouter_comments_are_not_events():
    data = (FIXTURES / "openrouter/chat_stream_reasoning_cost.sse").read_bytes()
    assert data.count(b": OPENROUTER PROCESSING") == 4  # two before the first chunk, two mid-stream
    events = parse(data, 7)
    assert all("OPENROUTER" not in e.data for e in events)
    assert json.loads(events[0].data)["id"] == "gen-1765226419-AGrwjunAftQIAgweibL8"
    assert json.loads(events[-2].data)["usage"]["cost"] == 0.000669


def test_groq_error_event_keeps_its_name():
    body = json.loads((FIXTURES / "groq/error_400_tool_use_failed.json").read_text())
    frame = b"event: error\r\ndata: " + json.dumps(body).encode() + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    events = parse(frame, 3)
    assert [e.event for e in events] == ["error", None]
    assert json.loads(events[0].data)["error"]["code"] == "tool_use_failed"


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        # \r\n split across feeds: one line ending, not a line plus a blank line
        ([b"data: a\r", b"\ndata: b\r\n\r\n"], [SSEvent(None, "a\nb")]),
        ([b"data: a\r", b"\n", b"\r", b"\n"], [SSEvent(None, "a")]),
        # multi-line data, only one leading space removed, no space at all
        ([b"data: one\ndata:  two\ndata:three\n\n"], [SSEvent(None, "one\n two\nthree")]),
        # bare \r line endings
        ([b"event: x\rdata: 1\r\rdata: 2\r\r"], [SSEvent("x", "1"), SSEvent(None, "2")]),
        # final event without a trailing blank line, or without any line ending
        ([b"data: 1\n\ndata: last\n"], [SSEvent(None, "1"), SSEvent(None, "last")]),
        ([b'event: e\ndata: {"a"', b": 1}"], [SSEvent("e", '{"a": 1}')]),
        # comments only, blank lines only, an event name without data
        ([b": OPENROUTER PROCESSING\n\n: ping\r\n\r\n"], []),
        ([b"\n\n\r\n\r\r\n", b"\n"], []),
        ([b"event: lonely\n\ndata: x\n\n"], [SSEvent(None, "x")]),
        # unknown fields ignored; a multi-byte character split between feeds
        ([b"id: 7\nretry: 10\ndata: caf\xc3", b"\xa9\n\n"], [SSEvent(None, "café")]),
        # a vertical tab or form feed is not a line ending in SSE
        ([b"data: a\x0bb\x0cc\n\n"], [SSEvent(None, "a\x0bb\x0cc")]),
    ],
)
def test_hand_written_framing(chunks: list[bytes], expected: list[SSEvent]):
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)] + parser.close()
    assert events == expected
    assert parse(b"".join(chunks), 1) == expected


def test_events_come_out_as_soon_as_their_blank_line_arrives():
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.feed(b"\n") == [SSEvent(None, "1")]
    assert parser.feed(b"data: 2\r\n\r") == []  # the \r may still be half of \r\n
    assert parser.feed(b"\n") == [SSEvent(None, "2")]
    assert parser.close() == []


async def _chunks(data: bytes, size: int, closed: list[bool]) -> AsyncGenerator[bytes, None]:
    try:
        for start in range(0, len(data), size):
            yield data[start : start + size]
    finally:
        closed.append(True)


async def test_iter_sse_matches_the_parser_and_closes_its_source():
    data = (FIXTURES / "xai/chat_stream_reasoning.sse").read_bytes()
    closed: list[bool] = []
    events = [e async for e in iter_sse(_chunks(data, 13, closed))]
    assert events == parse(data)
    assert closed == [True]
    closed.clear()
    stream = iter_sse(_chunks(data, 13, closed))
    assert (await anext(stream)).data.startswith('{"id":"f0f0f217-c24d-1fee-5fe3-28fa1d3c8c94"')
    await stream.aclose()
    assert closed == [True]


def split_ndjson(data: bytes, size: int) -> list[bytes]:
    splitter = NDJSONSplitter()
    lines = [line for start in range(0, len(data), size) for line in splitter.feed(data[start : start + size])]
    return lines + splitter.close()


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_ndjson_recorded_ollama_stream(size: int):
    lines = split_ndjson(NDJSON_STREAM.read_bytes(), size)
    assert len(lines) == 6
    docs = [json.loads(line) for line in lines]
    assert "".join(d["message"]["content"] for d in docs) == "This is test completion response"
    assert [d["done"] for d in docs] == [False] * 5 + [True]
    assert docs[-1]["eval_count"] == 239 and docs[-1]["prompt_eval_count"] == 10


def test_ndjson_crlf_blank_lines_and_unterminated_last_line():
    splitter = NDJSONSplitter()
    assert splitter.feed(b'{"a":1}\r\n\r\n  \n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\r") == []
    assert splitter.feed(b'\n{"c":3}') == [b'{"b":2}']
    assert splitter.close() == [b'{"c":3}']
    assert splitter.close() == []


async def test_iter_ndjson_closes_its_source():
    closed: list[bool] = []
    lines = [line async for line in iter_ndjson(_chunks(NDJSON_STREAM.read_bytes(), 5, closed))]
    assert [json.loads(line)["done"] for line in lines] == [False] * 5 + [True]
    assert closed == [True]


SMALL = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@SMALL
@given(st.sampled_from(SSE_FILES), st.lists(st.floats(0, 1), max_size=40))
def test_random_splits_of_recorded_files(path: Path, fractions: list[float]):
    data = path.read_bytes()
    cuts = [int(f * len(data)) for f in fractions]
    assert parse_at(data, cuts) == parse(data)


_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_event = st.tuples(
    st.none() | st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12), st.lists(_text, min_size=1, max_size=3)
)


@SMALL
@given(st.lists(_event, max_size=8), st.sampled_from([b"\n", b"\r\n", b"\r"]), st.data())
def test_generated_streams_survive_any_split(events, newline: bytes, data):
    out = b""
    for name, lines in events:
        out += b": comment" + newline
        if name is not None:
            out += b"event: " + name.encode() + newline
        out += b"".join(b"data: " + line.encode() + newline for line in lines) + newline
    cuts = data.draw(st.lists(st.integers(0, len(out)), max_size=20))
    assert parse_at(out, cuts) == [SSEvent(name, "\n".join(lines)) for name, lines in events]


@SMALL
@given(st.lists(st.integers(0, NDJSON_STREAM.stat().st_size), max_size=30))
def test_random_splits_of_ndjson(cuts: list[int]):
    data = NDJSON_STREAM.read_bytes()
    splitter = NDJSONSplitter()
    bounds = [0, *sorted(cuts), len(data)]
    lines = [line for a, b in itertools.pairwise(bounds) for line in splitter.feed(data[a:b])]
    assert lines + splitter.close() == data.strip().split(b"\n")
