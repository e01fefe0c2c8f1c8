"""Cost in integer nano-dollars from the bundled catalog's rates, with token counts taken from
the recorded fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from app.catalog import load_pricing_snapshot
from app.internal import Usage
from app.pricing import cost_nanousd

KEYS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)
CATALOG = load_pricing_snapshot()


def rates(provider: str, model: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The catalog entry, after checking its rates are still the ones the expected costs use."""
    entry = CATALOG[provider][model]
    assert {k: entry.get(k) for k in KEYS} == {k: expected.get(k) for k in KEYS}
    return entry


GPT_4O_MINI = {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08}


def test_openai_gpt_4o_mini():
    entry = rates("openai", "gpt-4o-mini", GPT_4O_MINI)
    # openai/chat_stream_tool_call_include_usage.sse: 53 prompt, 15 completion tokens
    assert cost_nanousd(Usage(input=53, output=15), entry) == 16_950  # 53 x 150 + 15 x 600
    assert cost_nanousd(Usage(input=1000, cached_input=400, output=500), entry) == 420_000  # 600x150 + 400x75 + 500x600


def test_deepseek_cache_hits_at_cache_read_rate():
    entry = rates(
        "deepseek",
        "deepseek-reasoner",
        {"input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07, "cache_read_input_token_cost": 2.8e-08},
    )
    # deepseek/chat_nonstream_cache_hit_reasoning.json: 563 prompt (512 cache hits), 116 completion
    usage = Usage(input=563, cached_input=512, output=116, reasoning=60)
    assert cost_nanousd(usage, entry) == 77_336  # 51 x 280 + 512 x 28 + 116 x 420


def test_mistral_prompt_cache():
    entry = rates(
        "mistral",
        "mistral-large-latest",
        {"input_cost_per_token": 5e-07, "output_cost_per_token": 1.5e-06, "cache_read_input_token_cost": 5e-08},
    )
    # mistral/chat_nonstream_prompt_cache.json: 268 prompt (224 cached), 5 completion
    assert cost_nanousd(Usage(input=268, cached_input=224, output=5), entry) == 40_700  # 44x500 + 224x50 + 5x1500


def test_anthropic_cache_read_and_write():
    entry = rates(
        "anthropic",
        "claude-sonnet-5",
        {
            "input_cost_per_token": 2e-06,
            "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 2e-07,
            "cache_creation_input_token_cost": 2.5e-06,
        },
    )
    # anthropic/messages_stream_prompt_cache_code_exec.sse (claude-sonnet-5): final usage
    usage = Usage(input=6, cache_read=6289, cache_write=3337, output=198)
    # 6 x 2000 + 6289 x 200 + 3337 x 2500 + 198 x 10000
    assert cost_nanousd(usage, entry) == 11_592_300


def test_cached_input_falls_back_to_input_rate():
    entry = rates("perplexity", "sonar", {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06})
    # perplexity/chat_stream_citations.sse (sonar): 10 prompt, 336 completion
    assert cost_nanousd(Usage(input=10, output=336), entry) == 346_000
    assert cost_nanousd(Usage(input=10, cached_input=4, output=336), entry) == 346_000
    assert cost_nanousd(Usage(input=10), {"input_cost_per_token": 1e-06}) == 10_000  # no output rate: 0


def test_rounded_once_half_to_even():
    entry = rates(
        "groq",
        "openai/gpt-oss-20b",
        {"input_cost_per_token": 7.5e-08, "output_cost_per_token": 3e-07, "cache_read_input_token_cost": 3.75e-08},
    )
    assert cost_nanousd(Usage(input=1, cached_input=1), entry) == 38  # 37.5
    assert cost_nanousd(Usage(input=3, cached_input=3), entry) == 112  # 112.5
    assert cost_nanousd(Usage(input=2, cached_input=1), entry) == 112  # 75 + 37.5, not 75 + 38


def test_provider_reported_cost_wins():
    entry = rates(
        "xai",
        "grok-4.20",
        {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 2.5e-06, "cache_read_input_token_cost": 2e-07},
    )
    # xai/chat_stream_reasoning.sse: 1721250 ticks
    usage = Usage(input=12, cached_input=11, output=342, reasoning=340, provider_cost_nanousd=172_125)
    assert cost_nanousd(usage, entry) == 172_125
    assert cost_nanousd(usage, None) == 172_125
    assert cost_nanousd(Usage(input=43, output=36, provider_cost_nanousd=0), entry) == 0
    assert cost_nanousd(Usage(input=12, cached_input=11, output=342), entry) == 858_450  # 1x1250 + 11x200 + 342x2500


def test_free_and_unpriced():
    entry = CATALOG["openai"]["gpt-4o-mini"]
    assert cost_nanousd(Usage(input=1000, output=1000), entry, free=True) == 0
    assert cost_nanousd(Usage(input=1000, output=1000), None, free=True) == 0
    assert cost_nanousd(Usage(input=1000, output=1000), None) is None
    assert cost_nanousd(Usage(input=1000, output=1000), {}) is None
    assert cost_nanousd(Usage(input=1), {"output_cost_per_token": 1e-06}) is None
    assert cost_nanousd(Usage(input=1), {"input_cost_per_token": None}) is None
    assert cost_nanousd(Usage(input=1), {"input_cost_per_token": True}) is None
    assert cost_nanousd(Usage(), entry) == 0


def test_decimal_text_and_integer_rates():
    assert cost_nanousd(Usage(input=1000), {"input_cost_per_token": "0.000000123"}) == 123_000
    assert cost_nanousd(Usage(input=7, output=3), {"input_cost_per_token": 0, "output_cost_per_token": 1}) == 3 * 10**9


def test_ten_small_requests_add_up_exactly():
    entry = rates("openai", "gpt-4o-mini", GPT_4O_MINI)
    one = cost_nanousd(Usage(input=1000, output=1000), entry)
    assert one == 750_000  # $0.00075
    assert sum(cost_nanousd(Usage(input=1000, output=1000), entry) or 0 for _ in range(10)) == 7_500_000
    assert cost_nanousd(Usage(input=10_000, output=10_000), entry) == 7_500_000
    # the binary floats the catalog holds would have drifted
    as_float = 1000 * GPT_4O_MINI["input_cost_per_token"] + 1000 * GPT_4O_MINI["output_cost_per_token"]
    assert sum([as_float] * 10) != 0.0075


@pytest.mark.parametrize(("tokens", "nanos"), [(11, 1650), (17, 2550), (25, 3750)])
def test_no_truncation_where_float_math_loses_a_nano(tokens: int, nanos: int):
    entry = CATALOG["openai"]["gpt-4o-mini"]
    assert int(tokens * entry["input_cost_per_token"] * 1e9) == nanos - 1
    assert cost_nanousd(Usage(input=tokens), entry) == nanos
