"""The Anthropic adapter through the relay, with the real openai and ollama SDKs in front and
the recorded Anthropic traffic (tests/fixtures/anthropic) behind: text, reasoning, thinking
blocks, tool calls, finish reasons and the usage rows of every recording survive both
dialects. Conversations are in test_anthropic_conversations.py."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MESSAGES = [{"role": "user", "content": "hello"}]
# Anthropic stop reasons as an OpenAI client should see them (written out, not imported).
FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "refusal": "content_filter", "max_tokens": "length"}
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@dataclass(frozen=True)
class Recording:
    """One recorded reply, with the usage Anthropic reported in it, read by hand."""

    name: str
    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0

    @property
    def stream(self) -> bool:
        return "_stream_" in self.name

    @property
    def prompt_total(self) -> int:
        return self.input + self.cache_read + self.cache_write


RECORDINGS = [
    Recording("messages_nonstream_cache_read_and_creation", 3, 33, cache_read=1111, cache_write=418),
    Recording("messages_nonstream_parallel_tool_use", 423, 202),
    Recording("messages_nonstream_refusal", 18, 5),
    Recording("messages_nonstream_thinking", 43, 321),
    # message_start says 2 in, 3068 written, 69 out; the final message_delta is cumulative.
    Recording("messages_stream_prompt_cache_code_exec", 6, 198, cache_read=6289, cache_write=3337),
    Recording("messages_stream_redacted_thinking", 92, 189),
    Recording("messages_stream_short_end_turn", 20, 5),
    Recording("messages_stream_text_simple", 10, 4),
    Recording("messages_stream_thinking", 43, 282),
    Recording("messages_stream_tool_use", 543, 40),
]


@dataclass
class Seen:
    text: str = ""
    reasoning: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish: str | None = None
    thinking_blocks: list[dict[str, Any]] = field(default_factory=list)


def _sse_payloads(name: str) -> list[dict[str, Any]]:
    out = []
    for block in (FIXTURES / f"{name}.sse").read_text().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


def _streamed_message(name: str) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason a recorded stream adds up to."""
    blocks: list[dict[str, Any]] = []
    stop = ""
    for event in _sse_payloads(name):
        if event["type"] == "content_block_start":
            blocks.append(dict(event["content_block"], _json=""))
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            field_, piece = {
                "text_delta": ("text", "text"),
                "thinking_delta": ("thinking", "thinking"),
                "signature_delta": ("signature", "signature"),
                "input_json_delta": ("_json", "partial_json"),
            }[delta["type"]]
            block[field_] += delta[piece]
        elif event["type"] == "message_delta":
            stop = event["delta"]["stop_reason"]
    for block in blocks:
        if block["type"] == "tool_use":
            block["input"] = json.loads(block["_json"] or "{}")
    return blocks, stop


def expected(name: str) -> Seen:
    """What the recording says, read independently of the relay's own parsers."""
    if (FIXTURES / f"{name}.sse").exists():
        blocks, stop = _streamed_message(name)
    else:
        message = json.loads((FIXTURES / f"{name}.json").read_text())
        blocks, stop = message["content"], message["stop_reason"]
    seen = Seen(finish=FINISH[stop])
    for block in blocks:
        if block["type"] == "text":
            seen.text += block["text"]
        elif block["type"] == "thinking":
            seen.reasoning += block["thinking"]
            seen.thinking_blocks.append(
                {"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]}
            )
        elif block["type"] == "redacted_thinking":
            seen.thinking_blocks.append({"type": "redacted_thinking", "data": block["data"]})
        elif block["type"] == "tool_use":
            seen.calls.append((block["name"], block["input"]))
    return seen


def test_every_recording_is_covered() -> None:
    files = {p.name.split(".")[0] for p in FIXTURES.iterdir() if ".request." not in p.name}
    assert files == {r.name for r in RECORDINGS}


def _check_row(row: dict[str, Any], rec: Recording, dialect: str) -> None:
    assert (row["outcome"], row["status"], row["dialect"]) == ("ok", 200, dialect)
    assert (row["provider"], row["resolved_model"]) == ("anthropic", f"anthropic/{rec.name}")
    assert (row["input_tokens"], row["output_tokens"]) == (rec.input, rec.output)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (rec.cache_read, rec.cache_write)
    assert (row["reasoning_tokens"], row["cached_input_tokens"]) == (0, 0)
    assert row["usage_reported"] is True
    assert row["streamed"] is rec.stream


def _tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.name)
def test_recording_through_openai_dialect(relay, sdk, rec: Recording) -> None:
    client = sdk.openai(relay.url)
    tag = _tag()
    model = f"anthropic/{rec.name}"
    got = Seen()
    if rec.stream:
        args: dict[int, list[str]] = {}
        usage = None
        for chunk in client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Proxy-Tag": tag},
        ):
            usage = chunk.usage or usage
            for choice in chunk.choices:
                delta = choice.delta
                got.text += delta.content or ""
                got.reasoning += getattr(delta, "reasoning_content", None) or ""
                got.thinking_blocks += (delta.model_extra or {}).get("thinking_blocks") or []
                for call in delta.tool_calls or []:
                    slot = args.setdefault(call.index, ["", ""])
                    slot[0] += (call.function.name or "") if call.function else ""
                    slot[1] += (call.function.arguments or "") if call.function else ""
                got.finish = choice.finish_reason or got.finish
        got.calls = [(n, json.loads(a)) for n, a in (args[i] for i in sorted(args))]
    else:
        completion = client.chat.completions.create(model=model, messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag})
        message = completion.choices[0].message
        got.text = message.content or ""
        got.reasoning = getattr(message, "reasoning_content", None) or ""
        got.thinking_blocks = (message.model_extra or {}).get("thinking_blocks") or []
        got.calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
        got.finish = completion.choices[0].finish_reason
        usage = completion.usage
    assert got == expected(rec.name)
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (rec.prompt_total, rec.output)
    assert usage.prompt_tokens_details.cached_tokens == rec.cache_read
    [row] = relay.rows(tag=tag)
    _check_row(row, rec, "openai")


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.name)
def test_recording_through_ollama_dialect(relay, sdk, rec: Recording) -> None:
    tag = _tag()
    client = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag})
    model = f"anthropic/{rec.name}"
    text, thinking = "", ""
    calls: list[Any] = []
    if rec.stream:
        for part in client.chat(model=model, messages=MESSAGES, stream=True):
            text += part.message.content or ""
            thinking += part.message.thinking or ""
            calls += part.message.tool_calls or []
            final = part
    else:
        final = client.chat(model=model, messages=MESSAGES, stream=False)
        text, thinking, calls = (
            final.message.content or "",
            final.message.thinking or "",
            final.message.tool_calls or [],
        )
    want = expected(rec.name)
    assert (text, thinking) == (want.text, want.reasoning)
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == want.calls
    assert final.done is True
    assert final.done_reason == ("length" if want.finish == "length" else "stop")
    assert (final.prompt_eval_count, final.eval_count) == (rec.prompt_total, rec.output)
    [row] = relay.rows(tag=tag)
    _check_row(row, rec, "ollama")


def test_request_reaches_anthropic_with_its_headers(relay, sdk, upstream) -> None:
    client = sdk.openai(relay.url)
    client.chat.completions.create(model="anthropic/messages_nonstream_refusal", messages=MESSAGES)
    sent = upstream.last("/anthropic/")
    assert (sent.method, sent.path) == ("POST", "/anthropic/v1/messages")
    assert sent.headers["x-api-key"] == "test-key-anthropic"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "messages_nonstream_refusal",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "max_tokens": 8192,
        "stream": False,
    }


def test_refusal_and_chat_only(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    completion = client.chat.completions.create(model="anthropic/messages_nonstream_refusal", messages=MESSAGES)
    assert completion.choices[0].finish_reason == "content_filter"
    reply = httpx.post(
        relay.url + "/v1/embeddings", json={"model": "anthropic/messages_nonstream_refusal", "input": "x"}
    )
    assert reply.status_code == 400 and "chat only" in reply.json()["error"]["message"]
    reply = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "anthropic/messages_nonstream_refusal", "messages": MESSAGES, "n": 2},
    )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "n"


def test_client_leaving_mid_stream_keeps_the_prompt_count(relay, upstream) -> None:
    """message_start's usage is recorded at once: a hang-up still leaves Anthropic's counts."""
    tag = _tag()
    body = {"model": "anthropic/slow:messages_stream_thinking", "messages": MESSAGES, "stream": True}
    seen_before = len(upstream.disconnects)
    received = 0
    with httpx.stream(
        "POST", relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag}, timeout=10
    ) as response:
        for line in response.iter_lines():
            received += bool(line.strip())
            if received == 3:
                break
    deadline = time.monotonic() + 2
    while len(upstream.disconnects) == seen_before and time.monotonic() < deadline:
        time.sleep(0.005)
    [row] = relay.rows(tag=tag)
    assert (row["outcome"], row["status"]) == ("client_closed", 499)
    assert row["usage_reported"] is True
    assert row["input_tokens"] == 43  # from message_start, not an estimate
