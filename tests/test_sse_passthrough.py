"""The SSE fast path (upstream events relayed as bytes, for OpenAI-dialect clients) says exactly
what the careful path (every event parsed and re-encoded) says: the same chunks, the same usage
reports, the same token count, over every recorded OpenAI-compatible stream cut into pieces of
any size, including ``\\r\\n`` framing and comments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from app.adapters.base import Call
from app.adapters.client import UpstreamClient
from app.adapters.openai_compat import OpenAICompatAdapter
from app.adapters.openai_usage import find_usage
from app.adapters.wire import iter_event_batches, iter_sse
from app.errors import UpstreamStatusError
from app.formats.openai_chunks import ACT, FINISH, TOKEN, finishes, inspect_chunk, normalize_chunk
from app.internal import Frames, Usage, carries_token
from app.pipeline.core import Pipeline
from app.providers import Provider
from tests.recordings import FIXTURES

STREAMS = sorted(
    (p.parent.name, p.stem)
    for provider in ("openai", "groq", "deepseek", "mistral", "xai", "openrouter")
    for p in (FIXTURES / provider).glob("*.sse")
)
SIZES = (1, 7, 61, 4096)


def adapter(name: str = "openai") -> OpenAICompatAdapter:
    return OpenAICompatAdapter(Provider(name, "openai_compat", "http://upstream.invalid/v1", "k"), UpstreamClient())


def call() -> Call:
    return Call(model="m", kind="chat", body={}, stream=True, request_id="r", passthrough=True)


async def chunks(data: bytes, size: int) -> AsyncGenerator[bytes, None]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def careful_items(provider: str, data: bytes, size: int) -> list[Any]:
    return collect(adapter(provider)._chunks(iter_sse(chunks(data, size)), lambda: None, call()))


def fast_items(data: bytes, size: int, provider: str = "openai") -> list[Any]:
    return collect(adapter(provider)._frames(iter_event_batches(chunks(data, size)), lambda: None, call()))


def collect(stream: AsyncGenerator[Any, None]) -> list[Any]:
    async def run() -> list[Any]:
        return [item async for item in stream]

    return asyncio.run(run())


def flatten(items: list[Any]) -> tuple[list[Any], int]:
    """Frames decoded back into chunks (each must be one ``data: {json}`` event), and the
    number of token-carrying events the Frames claimed."""
    out: list[Any] = []
    tokens = 0
    for item in items:
        if isinstance(item, Frames):
            assert item.data.endswith(b"\n\n")
            tokens += item.tokens
            for event in item.data[:-2].split(b"\n\n"):
                assert event.startswith(b"data: {") and b"\n" not in event
                out.append(json.loads(event[6:]))
        else:
            if isinstance(item, dict) and carries_token(item):
                tokens += 1
            out.append(item)
    return out, tokens


def careful(provider: str, data: bytes) -> list[Any]:
    return careful_items(provider, data, 4096)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("provider", "name"), STREAMS, ids=[f"{p}-{n}" for p, n in STREAMS])
def test_fast_path_equals_careful_path(provider: str, name: str, size: int) -> None:
    data = (FIXTURES / provider / f"{name}.sse").read_bytes()
    expected = careful(provider, data)
    fast, tokens = flatten(fast_items(data, size, provider))
    assert fast == expected
    assert tokens == sum(1 for item in expected if isinstance(item, dict) and carries_token(item))


def test_plain_events_are_relayed_byte_for_byte_and_usage_null_is_inert() -> None:
    events = [
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"He said \\"usage\\": 1"}}],"usage":null}',
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":""}}],"usage":null}',
        b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}',
        b": keep-alive comment",
        b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
        b"data: [DONE]",
    ]
    data = b"\n\n".join(events) + b"\n\n"
    items = fast_items(data, 5)
    frames = [i for i in items if isinstance(i, Frames)]
    assert b"".join(f.data for f in frames) == b"".join(event + b"\n\n" for event in events[:3])
    assert sum(f.tokens for f in frames) == 1  # the empty content carries no token
    usage = [i for i in items if isinstance(i, Usage)]
    assert len(usage) == 1 and usage[0].input == 3 and usage[0].output == 2
    assert items[-1]["usage"]["total_tokens"] == 5  # the usage chunk comes as a dict, to be priced


def test_crlf_framing_falls_back_to_the_careful_parser() -> None:
    data = (
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"b"}}]}\r\n\r\n'
        b'data: {"id":"x","choices":[{"index":0,"delta":{"reasoning":"c"}}]}\r\n\r\n'
        b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\n'
        b"data: [DONE]\r\n\r\n"
    )
    fast, tokens = flatten(fast_items(data, 3))
    assert fast == careful("openai", data)
    assert [c["choices"][0]["delta"] for c in fast][-2] == {"reasoning": "c", "reasoning_content": "c"}
    assert tokens == 3


def test_an_error_event_still_raises_after_what_came_before() -> None:
    data = (
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"error":{"message":"overloaded","code":503}}\n\n'
    )
    seen: list[Any] = []

    async def run() -> None:
        async for item in adapter()._frames(iter_event_batches(chunks(data, 4096)), lambda: None, call()):
            seen.append(item)

    with pytest.raises(UpstreamStatusError) as raised:
        asyncio.run(run())
    assert raised.value.status == 503
    assert len(seen) == 1 and isinstance(seen[0], Frames) and seen[0].tokens == 1


def test_a_stage_that_does_not_declare_frames_turns_the_fast_path_off() -> None:
    class Dispatch:
        name = "dispatch"
        terminal = True
        passthrough_safe = True

        async def __call__(self, ex: Any, call_next: Any) -> Any:
            return None

    class Custom:
        name = "custom"

        async def __call__(self, ex: Any, call_next: Any) -> Any:
            return await call_next(ex)

    assert Pipeline([Dispatch()]).passthrough  # type: ignore[list-item]
    assert not Pipeline([Custom(), Dispatch()]).passthrough  # type: ignore[list-item]


EDGE_CASES = [
    {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "a"}]}}]},  # Mistral's arrays
    {"choices": [{"index": 0, "delta": {"reasoning": "r"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"id": "c", "function": {"arguments": {"a": 1}}}]}}]},
    {"object": "chat.completion.done", "choices": []},
    {"choices": [], "x_groq": {"usage": {"prompt_tokens": 1}}},
    {"choices": [], "usage": {}},
    {"choices": [{"index": 0, "text": "completion text", "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
    {"choices": [{"index": 0, "delta": {"content": ""}, "logprobs": {"content": [{"token": "a"}]}}]},
    {"error": {"message": "boom"}},
]


def recorded_chunks() -> list[Any]:
    found = []
    for provider, name in STREAMS:
        for line in (FIXTURES / provider / f"{name}.sse").read_bytes().splitlines():
            if line.startswith(b"data: {"):
                found.append(json.loads(line[6:]))
    return found


def test_inspection_agrees_with_normalisation_and_the_meter() -> None:
    """An event inspect_chunk lets through as bytes is one the careful path would not change and
    that carries no usage or error; its token and finish flags are what the meter would find."""
    for chunk in recorded_chunks() + EDGE_CASES:
        flags = inspect_chunk(chunk)
        normalized = json.loads(json.dumps(chunk))
        normalize_chunk(normalized, find_usage(normalized))
        if not flags & ACT:
            assert normalized == chunk and find_usage(chunk) is None and "error" not in chunk, chunk
        assert bool(flags & TOKEN) == carries_token(chunk), chunk
        assert bool(flags & FINISH) == finishes(chunk), chunk
