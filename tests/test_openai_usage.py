"""OpenAI-style usage from every OpenAI-compatible provider's recorded replies, and the
normalisation of their messages and chunks to what OpenAI clients read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.adapters.openai_usage import find_usage, usage_from_openai
from app.adapters.wire import SSEParser
from app.formats.openai_chunks import normalize_chunk, normalize_message
from app.internal import Usage

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def chunks(name: str) -> list[dict[str, Any]]:
    parser = SSEParser()
    events = parser.feed((FIXTURES / name).read_bytes()) + parser.close()
    return [json.loads(e.data) for e in events if e.data.strip() != "[DONE]"]


def U(inp, out, reasoning=0, cached=0, write=0, cost=None, search=None) -> Usage:
    return Usage(
        search_context_size=search,
        web_search_requests=1 if search else 0,
        input=inp,
        output=out,
        reasoning=reasoning,
        cached_input=cached,
        cache_write=write,
        reported=True,
        provider_cost_nanousd=cost,
    )


NONSTREAM = {
    # DeepSeek: cached_tokens and prompt_cache_hit_tokens (512) agree; reasoning 60 is inside 116
    "deepseek/chat_nonstream_cache_hit_reasoning.json": U(563, 116, reasoning=60, cached=512),
    "groq/chat_nonstream_basic.json": U(45, 607),
    "mistral/chat_nonstream_prompt_cache.json": U(268, 5, cached=224),
    "mistral/chat_nonstream_thinking_content_array.json": U(664, 747),
    "mistral/chat_nonstream_tool_call.json": U(124, 22),
    "openai/chat_nonstream_basic.json": U(16, 363),
    "openai/chat_nonstream_search_preview.json": U(12, 293),
    "openai/chat_nonstream_tool_calls.json": U(68, 12),
    # OpenRouter: 17 + 2177 = 2194 (reasoning inside completion); cost 0.00435825 USD
    "openrouter/chat_nonstream_usage_cost.json": U(17, 2177, reasoning=960, cost=4_358_250),
    "perplexity/chat_nonstream_citations.json": U(10, 251),
    # Perplexity: cost.total_cost 0.00501 USD (request_cost 0.005 + input 0.00001); one search,
    # billed by its context size "low"
    "perplexity/chat_nonstream_usage_cost.json": U(6, 1, cost=5_010_000, search="low"),
    # xAI: 12 + 2 + 320 = 334 = total, so the 320 reasoning tokens are on top of completion's 2;
    # 1641500 ticks of 1e-10 USD = 164150 nano-USD
    "xai/chat_nonstream_reasoning.json": U(12, 322, reasoning=320, cached=2, cost=164_150),
    "ollama/v1_chat_completions_json_schema.json": U(136, 15),
}

# stream -> (usage the stream ends with, how many chunks carried usage)
STREAMS = {
    "deepseek/chat_stream_reasoner.sse": (U(6, 212, reasoning=198), 1),
    "groq/chat_stream_reasoning_x_groq_usage.sse": (U(21, 988), 1),
    "groq/chat_stream_web_search_usage_breakdown.sse": (U(5003, 359), 1),
    "openai/chat_stream_text_short.sse": (U(13, 11), 1),
    "openai/chat_stream_tool_call_include_usage.sse": (U(53, 15), 1),
    "openrouter/chat_stream_reasoning_cost.sse": (U(43, 36, reasoning=13, cost=669_000), 1),
    # Perplexity repeats its cumulative usage on every chunk, chat.completion.done included
    "perplexity/chat_stream_citations.sse": (U(10, 336), 8),
    "perplexity/chat_stream_text.sse": (U(11, 434), 8),
    # xAI: 12 + 2 + 340 = 354; 1721250 ticks = 172125 nano-USD
    "xai/chat_stream_reasoning.sse": (U(12, 342, reasoning=340, cached=11, cost=172_125), 1),
}


def test_every_openai_compatible_chat_fixture_is_covered():
    found = {
        p.relative_to(FIXTURES).as_posix()
        for provider in ("openai", "groq", "deepseek", "mistral", "xai", "openrouter", "perplexity")
        for p in (FIXTURES / provider).glob("chat_*")
        if not p.name.endswith(".request.json")
    }
    assert found == (set(NONSTREAM) | set(STREAMS)) - {"ollama/v1_chat_completions_json_schema.json"}


@pytest.mark.parametrize(("name", "expected"), NONSTREAM.items(), ids=list(NONSTREAM))
def test_nonstream_usage(name: str, expected: Usage):
    raw = find_usage(load(name))
    assert raw is not None
    assert usage_from_openai(raw) == expected


@pytest.mark.parametrize(("name", "expected", "reports"), [(k, *v) for k, v in STREAMS.items()], ids=list(STREAMS))
def test_stream_usage_last_report_wins(name: str, expected: Usage, reports: int):
    raws = [raw for chunk in chunks(name) if (raw := find_usage(chunk))]
    assert len(raws) == reports
    total = Usage()
    for raw in raws:
        total.merge(usage_from_openai(raw))
    assert total == expected


def test_perplexity_usage_grows_chunk_by_chunk():
    outputs = [
        usage_from_openai(raw).output for c in chunks("perplexity/chat_stream_text.sse") if (raw := find_usage(c))
    ]
    assert outputs == [1, 3, 5, 6, 7, 431, 434, 434]


def test_groq_usage_lives_in_x_groq():
    last = chunks("groq/chat_stream_reasoning_x_groq_usage.sse")[-1]
    assert "usage" not in last
    assert find_usage(last) is last["x_groq"]["usage"]
    # the compound model's breakdown lists 4 model calls with identical counts; x_groq.usage is one of them
    web = chunks("groq/chat_stream_web_search_usage_breakdown.sse")[-1]["x_groq"]
    assert [m["usage"]["prompt_tokens"] for m in web["usage_breakdown"]["models"]] == [5003] * 4


def test_find_usage_prefers_top_level_and_ignores_non_objects():
    assert find_usage({"usage": {"prompt_tokens": 1}, "x_groq": {"usage": {"prompt_tokens": 2}}}) == {
        "prompt_tokens": 1
    }
    assert find_usage({"usage": None, "x_groq": {"usage": {"prompt_tokens": 2}}}) == {"prompt_tokens": 2}
    assert find_usage({"usage": None, "x_groq": {"id": "req_1"}}) is None
    assert find_usage({"choices": []}) is None


def test_cache_write_is_taken_out_of_input():
    raw = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "total_tokens": 1050,
        "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300},
    }
    usage = usage_from_openai(raw)
    assert (usage.input, usage.cached_input, usage.cache_write, usage.output) == (700, 600, 300, 50)
    assert usage.prompt_total == 1000


def test_odd_values_are_not_counted_and_zero_cost_is_kept():
    usage = usage_from_openai({"prompt_tokens": -3, "completion_tokens": "7", "total_tokens": None, "cost": 0})
    assert usage == U(0, 0, cost=0)
    assert usage_from_openai({"prompt_tokens": 1, "cost": True}).provider_cost_nanousd is None
    assert usage_from_openai({"prompt_tokens": 1, "cost": {"total_cost": 0.1}}).provider_cost_nanousd == 100_000_000
    # reasoning can never exceed what was billed as output
    assert (
        usage_from_openai({"completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 9}}).reasoning == 5
    )


def test_mistral_content_array_is_flattened():
    message = load("mistral/chat_nonstream_thinking_content_array.json")["choices"][0]["message"]
    normalize_message(message)
    assert isinstance(message["content"], str) and len(message["content"]) == 1282
    assert message["content"].startswith("Crossing a river is quite different from crossing a street, ")
    assert message["content"].endswith("river's conditions. Stay safe!")
    assert len(message["reasoning_content"]) == 2379
    assert message["reasoning_content"].startswith("**Analogizing crossing a river**\n\nThe user is asking")
    assert message["tool_calls"] is None


def test_mistral_tool_call_without_type():
    message = load("mistral/chat_nonstream_tool_call.json")["choices"][0]["message"]
    normalize_message(message)
    assert message["tool_calls"] == [
        {
            "id": "gSIMJiOkT",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"location": "San Francisco"}'},
        }
    ]
    assert "content" not in message


def test_arguments_object_becomes_json_text():
    message: dict[str, Any] = {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"a": [1]}}}]}
    normalize_message(message)
    assert message["tool_calls"][0]["function"]["arguments"] == '{"a":[1]}'


def test_perplexity_done_chunk_becomes_a_chunk():
    done = chunks("perplexity/chat_stream_citations.sse")[-1]
    assert done["object"] == "chat.completion.done"
    normalize_chunk(done, find_usage(done))
    assert done["object"] == "chat.completion.chunk"
    assert done["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]
    assert done["usage"] == {"prompt_tokens": 10, "completion_tokens": 336, "total_tokens": 346}
    assert len(done["citations"]) == 7


def test_groq_usage_is_copied_to_the_chunk():
    last = chunks("groq/chat_stream_reasoning_x_groq_usage.sse")[-1]
    normalize_chunk(last, find_usage(last))
    assert (last["usage"]["prompt_tokens"], last["usage"]["completion_tokens"]) == (21, 988)
    assert last["choices"][0]["finish_reason"] == "stop"


def test_openrouter_reasoning_becomes_reasoning_content():
    reasoning, content = [], []
    for chunk in chunks("openrouter/chat_stream_reasoning_cost.sse"):
        normalize_chunk(chunk, find_usage(chunk))
        for choice in chunk["choices"]:
            delta = choice["delta"]
            assert ("reasoning_content" in delta) == bool(delta.get("reasoning"))
            reasoning.append(delta.get("reasoning_content") or "")
            content.append(delta.get("content") or "")
    assert "".join(reasoning) == "This is a simple arithmetic question. 2+2 equals 4."
    assert "".join(content) == "2 + 2 = 4"


def test_ollama_openai_endpoint_reasoning():
    message = load("ollama/v1_chat_completions_json_schema.json")["choices"][0]["message"]
    normalize_message(message)
    assert message["reasoning_content"].startswith("Okay, the user is asking for the capital of France.")
    assert message["reasoning_content"] == message["reasoning"]
    assert json.loads(message["content"]) == {"city": "Paris", "country": "France"}


def test_existing_reasoning_content_is_not_overwritten():
    message = {
        "content": [{"type": "thinking", "thinking": "a"}, {"type": "text", "text": "b"}],
        "reasoning_content": "x",
    }
    normalize_message(message)
    assert message == {"content": "b", "reasoning_content": "x"}


def test_counts_and_costs_an_upstream_reports_stay_within_bounds() -> None:
    from app.internal import MAX_NANOUSD, MAX_TOKENS, nanousd_of_reported, token_count

    assert [token_count(v) for v in (7, 0, -3, True, 2.5, "9", None, 2**80)] == [7, 0, 0, 0, 0, 0, 0, MAX_TOKENS]
    assert nanousd_of_reported(0.0015) == 1_500_000 and nanousd_of_reported(2) == 2_000_000_000
    assert nanousd_of_reported(1e300) == MAX_NANOUSD and nanousd_of_reported(-(10**400)) == -MAX_NANOUSD
    assert [nanousd_of_reported(v) for v in (float("inf"), float("nan"), True, "0.1", None)] == [None] * 5
