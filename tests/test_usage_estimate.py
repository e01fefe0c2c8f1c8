"""A provider that reports no usage (llama.cpp, some OpenAI-compatible servers): a client that
asked for usage still gets the relay's own count, in its dialect, equal to what the row records
and flags as an estimate; and that estimate counts what a chat template adds, judged against the
counts providers reported for recorded requests."""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import estimate
from tests.fault_upstream import FaultyUpstream

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
# Their estimate: 4 + 3 tokens of text (four characters a token), 4 around each message, 3 for the reply's turn.
ESTIMATED_INPUT = 18


@pytest.fixture
def relay(make_relay: Any, faulty: FaultyUpstream) -> Any:
    return make_relay(provider_base_urls={"openai": faulty.url})


def test_a_stream_without_usage_ends_with_the_relays_own_count(relay: Any, sdk: Any) -> None:
    client = sdk.openai(relay.url)
    tag = f"t-{uuid.uuid4().hex[:10]}"
    chunks = list(
        client.chat.completions.create(
            model="openai/no-usage",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Proxy-Tag": tag},
        )
    )
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1].choices == []
    assert chunks[-1].id == chunks[0].id and chunks[-1].model == chunks[0].model
    pieces = sum(1 for c in chunks for choice in c.choices if choice.delta.content)
    row = relay.rows(tag=tag)[0]
    assert row["usage_reported"] is False  # the row says it is an estimate
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (row["input_tokens"], row["output_tokens"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens == pieces > 0
    assert usage.prompt_tokens == ESTIMATED_INPUT


def test_a_client_that_did_not_ask_gets_no_usage_chunk(relay: Any, sdk: Any) -> None:
    client = sdk.openai(relay.url)
    chunks = list(client.chat.completions.create(model="openai/no-usage", messages=MESSAGES, stream=True))
    assert chunks and all(c.usage is None for c in chunks)


@pytest.mark.parametrize("stream", [True, False])
def test_the_ollama_dialect_counts_what_the_row_records(relay: Any, stream: bool) -> None:
    tag = f"t-{uuid.uuid4().hex[:10]}"
    body = {"model": "openai/no-usage", "messages": MESSAGES, "stream": stream}
    reply = httpx.post(relay.url + "/api/chat", json=body, headers={"X-Proxy-Tag": tag}, timeout=30)
    assert reply.status_code == 200, reply.text
    final = [json.loads(line) for line in reply.text.splitlines() if line.strip()][-1]
    row = relay.rows(tag=tag)[0]
    assert final["done"] is True and row["usage_reported"] is False
    assert (final["prompt_eval_count"], final["eval_count"]) == (row["input_tokens"], row["output_tokens"])
    assert final["prompt_eval_count"] == ESTIMATED_INPUT


def _recorded_prompts() -> list[tuple[str, dict[str, Any], int]]:
    """Each recorded OpenAI-style chat request beside the prompt tokens its provider counted."""
    cases = []
    for entry in json.loads((FIXTURES / "manifest.json").read_text()):
        request = FIXTURES / entry["provider"] / str(entry.get("request_file"))
        if not entry.get("request_file") or not request.exists() or entry["provider"] in ("anthropic", "gemini"):
            continue
        body = json.loads(request.read_text())
        counted = re.findall(r'"prompt_tokens"\s*:\s*(\d+)', (FIXTURES / entry["provider"] / entry["file"]).read_text())
        # Search results the provider adds to the prompt are no part of the request.
        if isinstance(body.get("messages"), list) and counted and "web_search" not in entry["name"]:
            cases.append((entry["name"], body, int(counted[-1])))
    return cases


def _text_only(body: dict[str, Any]) -> int:
    """What the estimate was: four characters a token over the messages' text, nothing else."""
    text = sum(len(m["content"]) for m in body["messages"] if isinstance(m.get("content"), str))
    return max(1, (text + 3) // 4)


def _distance(count: Any, cases: list[tuple[str, dict[str, Any], int]]) -> float:
    """The mean distance from the providers' counts, as a log ratio (0.5: within ~1.65x)."""
    return sum(abs(math.log(count(body) / counted)) for _, body, counted in cases) / len(cases)


def test_the_estimate_counts_template_overhead_system_and_tools() -> None:
    cases = _recorded_prompts()
    assert len(cases) >= 10
    better, before = _distance(estimate.prompt_tokens, cases), _distance(_text_only, cases)
    assert better < 0.6 and better < 0.7 * before, (better, before)
    for name, body, counted in cases:
        if body.get("tools"):  # tools' definitions are part of the prompt
            assert estimate.prompt_tokens(body) >= counted / 2, name
    # A one-word prompt is more than its word: llama.cpp counted 11 for Gemma's template.
    assert estimate.prompt_tokens({"messages": [{"role": "user", "content": "hi"}]}) == 8
