"""Golden costs, synthetic edges: long-context tiers at the boundary, service tiers, cache-only
prompts, reasoning, one-hour cache writes, search fees, overrides, free and unpriced models,
rounding. Same rules as test_cost_golden.py: rates pinned against the catalog, expected USD
written out per component, converted to nano-dollars by the test's own helper."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.internal import Usage
from app.pricing import PriceOverride, compute, cost_nanousd
from tests.test_cost_golden import Case, Pins, check, entry_for, nanos, search

D = Decimal
PRO = ("gemini", "gemini-2.5-pro")
FLASH = ("gemini", "gemini-2.5-flash")
GPT_51 = ("openai", "gpt-5.1")
SONNET_45 = ("anthropic", "claude-sonnet-4-5")
OSS_20B = ("groq", "openai/gpt-oss-20b")
HAIKU_55 = ("anthropic", "claude-haiku-5-5")
PINS: Pins = {
    PRO: {
        "input_cost_per_token": "1.25e-6",
        "cache_read_input_token_cost": "0.125e-6",
        "output_cost_per_token": "10e-6",
        "input_cost_per_token_above_200k_tokens": "2.5e-6",
        "cache_read_input_token_cost_above_200k_tokens": "0.25e-6",
        "output_cost_per_token_above_200k_tokens": "15e-6",
        "input_cost_per_token_priority": "2.25e-6",
        "cache_read_input_token_cost_priority": "0.225e-6",
        "output_cost_per_token_priority": "18e-6",
        "input_cost_per_token_flex": "0.625e-6",
        "output_cost_per_token_flex": "5e-6",
        "input_cost_per_token_batches": "0.625e-6",
        "output_cost_per_token_batches": "5e-6",
        "input_cost_per_token_above_200k_tokens_priority": "4.5e-6",
        "cache_read_input_token_cost_above_200k_tokens_priority": "0.45e-6",
        "output_cost_per_token_above_200k_tokens_priority": "27e-6",
        "input_cost_per_token_above_200k_tokens_batches": "1.25e-6",
        "output_cost_per_token_above_200k_tokens_batches": "7.5e-6",
    },
    FLASH: {
        "input_cost_per_token": "0.3e-6",
        "output_cost_per_token": "2.5e-6",
        "output_cost_per_reasoning_token": "2.5e-6",
        "output_cost_per_token_batches": "1.25e-6",
        "output_cost_per_token_priority": "4.5e-6",
        "output_cost_per_reasoning_token_batches": None,
        "output_cost_per_reasoning_token_priority": None,
        "search_context_cost_per_query": search("0.035"),
        "web_search_billing_unit": None,  # grounding billed per prompt
        "litellm_provider": "gemini",
    },
    ("gemini", "gemini-3-flash-preview"): {
        "input_cost_per_token": "0.5e-6",
        "output_cost_per_token": "3e-6",
        "search_context_cost_per_query": search("0.014"),
        "web_search_billing_unit": "per_query",
    },
    GPT_51: {
        "input_cost_per_token": "1.25e-6",
        "cache_read_input_token_cost": "0.125e-6",
        "output_cost_per_token": "10e-6",
        "input_cost_per_token_priority": "2.5e-6",
        "cache_read_input_token_cost_priority": "0.25e-6",
        "output_cost_per_token_priority": "20e-6",
        "input_cost_per_token_flex": "0.625e-6",
        "cache_read_input_token_cost_flex": "0.0625e-6",
        "output_cost_per_token_flex": "5e-6",
        "input_cost_per_token_batches": "0.625e-6",
        "cache_read_input_token_cost_batches": "0.0625e-6",
        "output_cost_per_token_batches": "5e-6",
    },
    SONNET_45: {
        "input_cost_per_token": "3e-6",
        "output_cost_per_token": "15e-6",
        "cache_read_input_token_cost": "0.3e-6",
        "cache_creation_input_token_cost": "3.75e-6",
        "cache_creation_input_token_cost_above_1hr": "6e-6",
        "input_cost_per_token_batches": "1.5e-6",
        "output_cost_per_token_batches": "7.5e-6",
        "cache_read_input_token_cost_batches": "0.15e-6",
        "cache_creation_input_token_cost_batches": "1.875e-6",
        "cache_creation_input_token_cost_above_1hr_batches": None,
        "search_context_cost_per_query": search("0.01"),
    },
    HAIKU_55: {
        "input_cost_per_token": "0.1e-6",
        "cache_read_input_token_cost": "0.01e-6",
        "cache_creation_input_token_cost": "0.125e-6",
        "output_cost_per_token": "0.5e-6",
        "input_cost_per_token_above_100k_tokens": "0.5e-6",
        "cache_read_input_token_cost_above_100k_tokens": "0.05e-6",
        "cache_creation_input_token_cost_above_100k_tokens": "0.625e-6",
        "cache_creation_input_token_cost_above_1hr_above_100k_tokens": "1e-6",
        "output_cost_per_token_above_100k_tokens": "2.5e-6",
    },
    ("xai", "grok-4.20"): {
        "input_cost_per_token_above_200k_tokens": "2.5e-6",
        "cache_read_input_token_cost_above_200k_tokens": "0.4e-6",
        "output_cost_per_token_above_200k_tokens": "5e-6",
    },
    ("openai", "gpt-4o"): {
        "input_cost_per_token": "2.5e-6",
        "cache_read_input_token_cost": "1.25e-6",
        "output_cost_per_token": "10e-6",
    },
    ("openai", "gpt-4o-mini-search-preview"): {
        "input_cost_per_token": "0.15e-6",
        "output_cost_per_token": "0.6e-6",
        "search_context_cost_per_query": search("0.025"),
    },
    ("perplexity", "sonar-pro"): {
        "input_cost_per_token": "3e-6",
        "output_cost_per_token": "15e-6",
        "search_context_cost_per_query": search("0.006", "0.01", "0.014"),
    },
    ("perplexity", "sonar-deep-research"): {
        "input_cost_per_token": "2e-6",
        "output_cost_per_token": "8e-6",
        "output_cost_per_reasoning_token": "3e-6",  # the catalog's only rate of its own for reasoning
        "search_context_cost_per_query": search("0.005"),
    },
    ("perplexity", "pplx-70b-online"): {
        "input_cost_per_token": "0",
        "output_cost_per_token": "2.8e-6",
        "input_cost_per_request": "0.005",
    },
    OSS_20B: {"input_cost_per_token": "0.075e-6", "cache_read_input_token_cost": "0.0375e-6"},
}
THREE_NINE = PriceOverride(input=D("3e-6"), output=D("9e-6"))  # the "custom" model an admin priced

CASES = [
    # Long context: 200,000 prompt tokens stay at the base rates, 200,001 move every component.
    Case("tier/gemini-2.5-pro_at_200000", PRO, Usage(input=200_000, cached_input=50_000, output=1000), {
        "input": D(150_000) * D("1.25e-6"), "cached_input": D(50_000) * D("0.125e-6"), "output": D(1000) * D("10e-6"),
    }),
    Case("tier/gemini-2.5-pro_at_200001", PRO, Usage(input=200_001, cached_input=50_000, output=1000), {
        "input": D(150_001) * D("2.5e-6"), "cached_input": D(50_000) * D("0.25e-6"), "output": D(1000) * D("15e-6"),
    }, tier="above_200k"),
    Case("tier/grok-4.20_above_200k", ("xai", "grok-4.20"), Usage(input=200_001, cached_input=60_000, output=100), {
        "input": D(140_001) * D("2.5e-6"), "cached_input": D(60_000) * D("0.4e-6"), "output": D(100) * D("5e-6"),
    }, tier="above_200k"),
    # Anthropic's cache reads and writes count toward the prompt: 5,000 + 90,000 + 5,001 > 100k,
    # and one-hour writes take the tier's own one-hour rate.
    Case("tier/haiku-5-5_cache_counts", HAIKU_55,
        Usage(input=5000, cache_read=90_000, cache_write=5001, cache_write_1h=1000, output=100), {
        "input": D(5000) * D("0.5e-6"), "cache_read": D(90_000) * D("0.05e-6"),
        "cache_write": D(4001) * D("0.625e-6") + D(1000) * D("1e-6"), "output": D(100) * D("2.5e-6"),
    }, tier="above_100k"),
    Case("tier/haiku-5-5_at_100000", HAIKU_55, Usage(input=5000, cache_read=90_000, cache_write=5000, output=100), {
        "input": D(5000) * D("0.1e-6"), "cache_read": D(90_000) * D("0.01e-6"), "cache_write": D(5000) * D("0.125e-6"),
        "output": D(100) * D("0.5e-6"),
    }),
    # An admin moves the entry's one tier to 100,000 (the label still names the catalog's tier).
    Case("tier/override_threshold_at", PRO, Usage(input=100_000, output=10), {
        "input": D(100_000) * D("1.25e-6"), "output": D(10) * D("10e-6"),
    }, override=PriceOverride(tier_threshold=100_000), source="override"),
    Case("tier/override_threshold_above", PRO, Usage(input=100_001, output=10), {
        "input": D(100_001) * D("2.5e-6"), "output": D(10) * D("15e-6"),
    }, override=PriceOverride(tier_threshold=100_000), tier="above_200k", source="override"),
    # Service tiers move the whole request too.
    *[Case(f"service/gpt-5.1_{tier}", GPT_51, Usage(input=10_000, cached_input=4000, output=2000, service_tier=tier), {
        "input": D(6000) * D(i), "cached_input": D(4000) * D(c), "output": D(2000) * D(o),
    }) for tier, i, c, o in [
        ("priority", "2.5e-6", "0.25e-6", "20e-6"),
        ("flex", "0.625e-6", "0.0625e-6", "5e-6"),
        ("batch", "0.625e-6", "0.0625e-6", "5e-6"),
        ("default", "1.25e-6", "0.125e-6", "10e-6"),
    ]],
    *[Case(f"service/gemini-2.5-pro_{tier}", PRO, Usage(input=1000, output=100, service_tier=tier), {
        "input": D(1000) * D(i), "output": D(100) * D(o),
    }) for tier, i, o in [
        ("priority", "2.25e-6", "18e-6"), ("flex", "0.625e-6", "5e-6"), ("batch", "0.625e-6", "5e-6"),
    ]],
    Case("service/gemini-2.5-pro_priority_above_200k", PRO,
        Usage(input=300_000, cached_input=100_000, output=5000, service_tier="priority"), {
        "input": D(200_000) * D("4.5e-6"), "cached_input": D(100_000) * D("0.45e-6"), "output": D(5000) * D("27e-6"),
    }, tier="above_200k"),
    Case("service/gemini-2.5-pro_batch_above_200k", PRO, Usage(input=250_000, output=5000, service_tier="batch"), {
        "input": D(250_000) * D("1.25e-6"), "output": D(5000) * D("7.5e-6"),
    }, tier="above_200k"),
    Case("service/sonnet-4-5_batch_cache", SONNET_45,
        Usage(input=1000, cache_read=2000, cache_write=500, output=300, service_tier="batch"), {
        "input": D(1000) * D("1.5e-6"), "cache_read": D(2000) * D("0.15e-6"), "cache_write": D(500) * D("1.875e-6"),
        "output": D(300) * D("7.5e-6"),
    }),
    # Cache-only prompts, zero output, reasoning.
    Case("cache_only/openai", GPT_51, Usage(input=8000, cached_input=8000, output=100), {
        "cached_input": D(8000) * D("0.125e-6"), "output": D(100) * D("10e-6"),
    }),
    Case("cache_only/anthropic", SONNET_45, Usage(cache_read=8000, output=100), {
        "cache_read": D(8000) * D("0.3e-6"), "output": D(100) * D("15e-6"),
    }),
    Case("zero_output", ("openai", "gpt-4o"), Usage(input=1000), {"input": D(1000) * D("2.5e-6")}),
    Case("reasoning_heavy_billed_once", GPT_51, Usage(input=100, output=10_000, reasoning=9500), {
        "input": D(100) * D("1.25e-6"), "output": D(10_000) * D("10e-6"),
    }),
    Case("reasoning_own_rate/sonar-deep-research", ("perplexity", "sonar-deep-research"),
        Usage(input=1000, output=10_000, reasoning=8000, web_search_requests=5), {
        "input": D(1000) * D("2e-6"), "output": D(2000) * D("8e-6") + D(8000) * D("3e-6"), "search": 5 * D("0.005"),
    }),
    Case("cache_write_1h_only", SONNET_45, Usage(input=10, cache_write=4000, cache_write_1h=4000, output=50), {
        "input": D(10) * D("3e-6"), "cache_write": D(4000) * D("6e-6"), "output": D(50) * D("15e-6"),
    }),
    # Search: Anthropic per search; Gemini 2.5 per grounded prompt; Gemini 3 per query; OpenAI
    # search models and Sonar by context size (medium when the reply does not say).
    Case("search/anthropic_web_search", SONNET_45, Usage(input=1000, output=500, web_search_requests=3), {
        "input": D(1000) * D("3e-6"), "output": D(500) * D("15e-6"), "search": 3 * D("0.01"),
    }),
    Case("search/gemini-2.5_per_prompt", FLASH, Usage(input=100, output=50, web_search_requests=3), {
        "input": D(100) * D("0.3e-6"), "output": D(50) * D("2.5e-6"), "search": 1 * D("0.035"),
    }),
    Case("search/gemini-3_per_query", ("gemini", "gemini-3-flash-preview"),
        Usage(input=100, output=50, web_search_requests=3), {
        "input": D(100) * D("0.5e-6"), "output": D(50) * D("3e-6"), "search": 3 * D("0.014"),
    }),
    Case("search/openai_search_preview_high", ("openai", "gpt-4o-mini-search-preview"),
        Usage(input=12, output=293, web_search_requests=1, search_context_size="high"), {
        "input": D(12) * D("0.15e-6"), "output": D(293) * D("0.6e-6"), "search": 1 * D("0.025"),
    }),
    Case("search/sonar-pro_high", ("perplexity", "sonar-pro"),
        Usage(input=10, output=251, web_search_requests=1, search_context_size="high"), {
        "input": D(10) * D("3e-6"), "output": D(251) * D("15e-6"), "search": 1 * D("0.014"),
    }),
    Case("search/sonar-pro_size_unsaid", ("perplexity", "sonar-pro"),
        Usage(input=10, output=251, web_search_requests=1), {
        "input": D(10) * D("3e-6"), "output": D(251) * D("15e-6"), "search": 1 * D("0.01"),
    }),
    Case("request_fee/catalog", ("perplexity", "pplx-70b-online"), Usage(input=50, output=100), {
        "input": D(50) * D(0), "output": D(100) * D("2.8e-6"), "request": D("0.005"),
    }),
    # Unknown and free models.
    Case("unknown/none", None, Usage(input=1000, output=1000), None),
    Case("free/with_override_is_priced", None, Usage(input=1000, output=100), {
        "input": D(1000) * D("3e-6"), "output": D(100) * D("9e-6"),
    }, override=THREE_NINE, free=True, source="override"),
    # Overrides.
    Case("override/rates", ("openai", "gpt-4o"), Usage(input=1000, cached_input=400, output=500), {
        "input": D(600) * D("2e-6"), "cached_input": D(400) * D("0.5e-6"), "output": D(500) * D("8e-6"),
    }, override=PriceOverride(input=D("2e-6"), output=D("8e-6"), cache_read=D("0.5e-6")), source="override",
        applied={"input_cost_per_token": "2e-6", "cache_read_input_token_cost": "0.5e-6"}),
    Case("override/input_only_keeps_catalog_rest", ("openai", "gpt-4o"),
        Usage(input=1000, cached_input=400, output=500), {
        "input": D(600) * D("2e-6"), "cached_input": D(400) * D("1.25e-6"), "output": D(500) * D("10e-6"),
    }, override=PriceOverride(input=D("2e-6")), source="override"),
    Case("override/multipliers", SONNET_45, Usage(input=100, cache_read=1000, cache_write=1000, output=10), {
        "input": D(100) * D("3e-6"), "cache_read": D(1000) * (D("3e-6") * D("0.2")),
        "cache_write": D(1000) * (D("3e-6") * D("1.5")), "output": D(10) * D("15e-6"),
    }, override=PriceOverride(cache_read_multiplier=D("0.2"), cache_write_multiplier=D("1.5")), source="override"),
    Case("override/request_fee", ("openai", "gpt-4o"), Usage(input=100, output=10), {
        "input": D(100) * D("2.5e-6"), "output": D(10) * D("10e-6"), "request": D("0.002"),
    }, override=PriceOverride(request_fee=D("0.002")), source="override"),
    # Unknown to the catalog, priced by the override alone: cache reads and writes (5-minute and
    # one-hour alike) at their multipliers of its input rate.
    Case("override/unknown_model", None,
        Usage(input=100, cache_read=1000, cache_write=1000, cache_write_1h=400, output=10), {
        "input": D(100) * D("3e-6"), "cache_read": D(1000) * (D("3e-6") * D("0.1")),
        "cache_write": D(1000) * (D("3e-6") * D("1.25")), "output": D(10) * D("9e-6"),
    }, override=PriceOverride(input=D("3e-6"), output=D("9e-6"), cache_read_multiplier=D("0.1"),
                              cache_write_multiplier=D("1.25")), source="override"),
    Case("override/unknown_model_no_cache_rates", None, Usage(input=100, cached_input=40, output=10), {
        "input": D(60) * D("3e-6"), "cached_input": D(40) * D("3e-6"), "output": D(10) * D("9e-6"),
    }, override=THREE_NINE, source="override"),
    # Rounding: each component once, half to even, and the total from the exact sum.
    Case("rounding/half_nano_up_to_even", OSS_20B, Usage(input=1, cached_input=1), {
        "cached_input": D(1) * D("0.0375e-6"),  # 37.5 nanos -> 38
    }),
    Case("rounding/half_nano_down_to_even", OSS_20B, Usage(input=3, cached_input=3), {
        "cached_input": D(3) * D("0.0375e-6"),  # 112.5 nanos -> 112
    }),
    Case("rounding/total_from_exact_sum", OSS_20B, Usage(input=2, cached_input=1), {
        "input": D(1) * D("0.075e-6"), "cached_input": D(1) * D("0.0375e-6"),  # 75 + 38 parts, 112 total
    }),
]  # fmt: skip

# Service tiers where the catalog lists no variant: thinking is output at the tier's rate
# (Google prices output "including thinking tokens", batch at half), and Anthropic's batch
# discount covers one-hour cache writes too (the catalog's 5-minute batch write is half).
SERVICE_DISCOUNTS = [
    Case("service/gemini-2.5-flash_batch_thoughts", FLASH,
        Usage(input=1000, output=1000, reasoning=800, service_tier="batch"), {
        "input": D(1000) * D("0.15e-6"), "output": D(1000) * D("1.25e-6"),
    }),
    Case("service/gemini-2.5-flash_priority_thoughts", FLASH,
        Usage(input=1000, output=1000, reasoning=800, service_tier="priority"), {
        "input": D(1000) * D("0.54e-6"), "output": D(1000) * D("4.5e-6"),
    }),
    Case("service/sonnet-4-5_batch_1h_write", SONNET_45,
        Usage(input=100, cache_write=1000, cache_write_1h=1000, output=10, service_tier="batch"), {
        "input": D(100) * D("1.5e-6"), "cache_write": D(1000) * (D("1.5e-6") * 2), "output": D(10) * D("7.5e-6"),
    }),
]  # fmt: skip


@pytest.mark.parametrize("model", list(PINS), ids="/".join)
def test_catalog_still_holds_the_pinned_rates(model: tuple[str, str]) -> None:
    entry_for(PINS, model)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_cost(case: Case) -> None:
    check(case, PINS)


@pytest.mark.parametrize("case", SERVICE_DISCOUNTS, ids=lambda c: c.name)
def test_service_tier_discounts_where_the_catalog_has_no_variant(case: Case) -> None:
    check(case, PINS)


def test_unpriced_is_none_never_zero() -> None:
    usage = Usage(input=1000, output=1000)
    assert compute(usage, None) is None and cost_nanousd(usage, None) is None
    assert compute(usage, {}) is None and cost_nanousd(usage, {}) is None
    assert compute(usage, {"output_cost_per_token": 1e-06}) is None  # no input rate: not priced
    assert compute(usage, None, free=True) is not None and cost_nanousd(usage, None, free=True) == 0


def test_rounding_parts_do_not_have_to_add_up() -> None:
    got = compute(Usage(input=2, cached_input=1), entry_for(PINS, OSS_20B))
    assert got is not None and (got.parts["input"], got.parts["cached_input"], got.total) == (75, 38, 112)


def test_many_small_requests_add_up_exactly() -> None:
    entry = entry_for(PINS, GPT_51)
    one = Usage(input=7, cached_input=3, output=11)
    each = D(4) * D("1.25e-6") + D(3) * D("0.125e-6") + D(11) * D("10e-6")  # 115,375 nanos exactly
    assert cost_nanousd(one, entry) == nanos(each) == 115_375
    assert sum(cost_nanousd(one, entry) or 0 for _ in range(10_000)) == nanos(10_000 * each) == 1_153_750_000
    assert cost_nanousd(Usage(input=70_000, cached_input=30_000, output=110_000), entry) == 1_153_750_000
    as_float = 4 * 1.25e-06 + 3 * 1.25e-07 + 11 * 1e-05
    assert sum([as_float] * 10_000) != 1.15375  # what binary floats would have drifted to


def test_admin_override_is_the_price_at_every_tier() -> None:
    """An override is what the admin says the model costs, above a long-context tier too."""
    entry = entry_for(PINS, ("gemini", "gemini-2.5-pro"))
    override = PriceOverride(input=D("1e-6"), output=D("2e-6"))
    usage = Usage(input=200_001, output=10)
    breakdown = compute(usage, entry, override=override)
    assert breakdown is not None and breakdown.source == "override" and breakdown.tier == "above_200k"
    assert breakdown.parts["input"] == nanos(D(200_001) * D("1e-6"))
    assert breakdown.parts["output"] == nanos(D(10) * D("2e-6"))
