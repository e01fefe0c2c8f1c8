"""Golden costs for :func:`app.pricing.compute` (and :func:`app.pricing.cost_nanousd`): every
recorded response type, priced by hand.

Each case names the catalog entry it prices with; the rates it relies on are written out in
``PINS`` and checked against app/data/pricing.json, so a catalog update fails here loudly
instead of quietly moving the expectations. Expected costs are USD per component, written out
as token count x rate; the test turns them into nano-dollars itself (the exact sum, rounded
once, half to even). Components a case leaves out must come to 0. Synthetic edge cases live in
test_cost_golden_edges.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from app.catalog import load_pricing_snapshot
from app.internal import Usage
from app.pricing import COMPONENTS, PriceOverride, compute, cost_nanousd

D = Decimal
CATALOG = load_pricing_snapshot()
Pins = dict[tuple[str, str], dict[str, Any]]


def nanos(usd: Decimal) -> int:
    return int((usd * D(10) ** 9).quantize(D(1), rounding=ROUND_HALF_EVEN))


def search(low: str, medium: str | None = None, high: str | None = None) -> dict[str, str]:
    return {
        "search_context_size_high": high or low,
        "search_context_size_low": low,
        "search_context_size_medium": medium or low,
    }


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, float):
        return D(repr(value))
    if isinstance(value, str):
        try:
            return D(value)
        except ArithmeticError:
            return value
    return value


def entry_for(pins: Pins, model: tuple[str, str] | None) -> dict[str, Any] | None:
    """The catalog entry, after checking it still holds the pinned rates (None: pinned absent)."""
    if model is None:
        return None
    entry = CATALOG[model[0]][model[1]]
    assert {k: _norm(entry.get(k)) for k in pins[model]} == _norm(pins[model]), f"catalog changed for {model}"
    return entry


@dataclass(frozen=True)
class Case:
    name: str
    model: tuple[str, str] | None  # the catalog entry used; None: not in the catalog
    usage: Usage
    parts: dict[str, Decimal] | None  # expected USD per component; None: unpriced
    override: PriceOverride | None = None
    free: bool = False
    tier: str | None = None
    source: str = "catalog"
    total: Decimal | None = None  # the figure as a price list would quote it, when there is one
    applied: dict[str, str] = field(default_factory=dict)  # rates the breakdown must report


def check(case: Case, pins: Pins) -> None:
    entry = entry_for(pins, case.model)
    got = compute(case.usage, entry, override=case.override, free=case.free)
    if case.parts is None:
        assert got is None
        if case.usage.provider_cost_nanousd is None:
            assert cost_nanousd(case.usage, entry, free=case.free) is None
        return
    assert got is not None
    exact = sum(case.parts.values(), D(0))
    if case.total is not None:
        assert exact == case.total
    assert got.parts == {name: nanos(case.parts.get(name, D(0))) for name in COMPONENTS}
    assert got.total == nanos(exact)
    service = None if case.free and case.override is None else case.usage.service_tier
    assert (got.tier, got.service_tier, got.source) == (case.tier, service, case.source)
    assert {k: D(got.rates[k]) for k in case.applied} == {k: D(v) for k, v in case.applied.items()}
    if case.override is None and case.usage.provider_cost_nanousd is None:
        assert cost_nanousd(case.usage, entry, free=case.free) == got.total


def check_reported(case: Case, pins: Pins) -> None:
    """The provider's own figure is what is charged, whatever the catalog says."""
    entry = entry_for(pins, case.model)
    reported = case.usage.provider_cost_nanousd
    assert reported is not None
    assert cost_nanousd(case.usage, entry, free=case.free) == reported
    assert cost_nanousd(case.usage, None) == reported


SONNET_45 = ("anthropic", "claude-sonnet-4-5")
PINS: Pins = {
    SONNET_45: {
        "input_cost_per_token": "3e-6",
        "output_cost_per_token": "15e-6",
        "cache_read_input_token_cost": "0.3e-6",
        "cache_creation_input_token_cost": "3.75e-6",
        "cache_creation_input_token_cost_above_1hr": "6e-6",
    },
    ("anthropic", "claude-sonnet-5"): {
        "input_cost_per_token": "2e-6",
        "output_cost_per_token": "10e-6",
        "cache_read_input_token_cost": "0.2e-6",
        "cache_creation_input_token_cost": "2.5e-6",
    },
    ("anthropic", "claude-haiku-4-5"): {"input_cost_per_token": "1e-6", "output_cost_per_token": "5e-6"},
    ("openai", "gpt-4o"): {"input_cost_per_token": "2.5e-6", "output_cost_per_token": "10e-6"},
    ("openai", "gpt-5"): {"input_cost_per_token": "1.25e-6", "output_cost_per_token": "10e-6"},
    ("openai", "gpt-5-mini"): {"input_cost_per_token": "0.25e-6", "output_cost_per_token": "2e-6"},
    ("openai", "gpt-4.1-nano"): {"input_cost_per_token": "0.1e-6", "output_cost_per_token": "0.4e-6"},
    ("openai", "gpt-4o-search-preview"): {
        "input_cost_per_token": "2.5e-6",
        "output_cost_per_token": "10e-6",
        "search_context_cost_per_query": search("0.025"),
    },
    ("deepseek", "deepseek-v4-flash"): {
        "input_cost_per_token": "0.3e-6",
        "cache_read_input_token_cost": "0.006e-6",
        "output_cost_per_token": "1.2e-6",
        "output_cost_per_reasoning_token": None,
    },
    ("deepseek", "deepseek-reasoner"): {"input_cost_per_token": "0.28e-6", "output_cost_per_token": "0.42e-6"},
    ("mistral", "mistral-large-latest"): {
        "input_cost_per_token": "0.5e-6",
        "cache_read_input_token_cost": "0.05e-6",
        "output_cost_per_token": "1.5e-6",
    },
    ("mistral", "magistral-medium-latest"): {"input_cost_per_token": "1.5e-6", "output_cost_per_token": "7.5e-6"},
    ("mistral", "mistral-small-latest"): {"input_cost_per_token": "0.15e-6", "output_cost_per_token": "0.6e-6"},
    ("groq", "openai/gpt-oss-120b"): {"input_cost_per_token": "0.15e-6", "output_cost_per_token": "0.6e-6"},
    ("groq", "openai/gpt-oss-20b"): {"input_cost_per_token": "0.075e-6", "output_cost_per_token": "0.3e-6"},
    ("xai", "grok-4.20"): {
        "input_cost_per_token": "1.25e-6",
        "cache_read_input_token_cost": "0.2e-6",
        "output_cost_per_token": "2.5e-6",
    },
    ("gemini", "gemini-2.5-flash"): {
        "input_cost_per_token": "0.3e-6",
        "cache_read_input_token_cost": "0.03e-6",
        "output_cost_per_token": "2.5e-6",
        "output_cost_per_reasoning_token": "2.5e-6",
    },
    ("perplexity", "sonar"): {
        "input_cost_per_token": "1e-6",
        "output_cost_per_token": "1e-6",
        "search_context_cost_per_query": search("0.005", "0.008", "0.012"),
    },
    ("perplexity", "openai/gpt-6-luna"): {
        "input_cost_per_token": "0.1e-6",
        "cache_read_input_token_cost": "0.01e-6",
        "output_cost_per_token": "0.5e-6",
        "cache_creation_input_token_cost": None,  # Perplexity bills writes at 1.25x: not in the catalog
        "search_context_cost_per_query": None,  # nor its $0.001 per search_web call
    },
}
GROK_3_MINI = PriceOverride(input=D("0.3e-6"), cache_read=D("0.075e-6"), output=D("0.5e-6"))  # xAI's list price

CASES = [
    # The classic: 10,000 prompt tokens, 5,000 of them read from the cache at 10%, 2,000 out.
    Case("anthropic/classic_cache_read", SONNET_45, Usage(input=5000, cache_read=5000, output=2000), {
        "input": D(5000) * D("3e-6"), "cache_read": D(5000) * D("0.3e-6"), "output": D(2000) * D("15e-6"),
    }, total=D("0.0465")),
    Case("anthropic/classic_by_override", None, Usage(input=5000, cache_read=5000, output=2000), {
        "input": D(5000) * D("3e-6"), "cache_read": D(5000) * (D("3e-6") * D("0.1")), "output": D(2000) * D("15e-6"),
    }, override=PriceOverride(input=D("3e-6"), output=D("15e-6"), cache_read_multiplier=D("0.1")),
        source="override", total=D("0.0465")),
    # messages_nonstream_cache_read_and_creation: 3 in, 1111 read, 418 written (all 5-minute), 33 out
    Case("anthropic/cache_read_and_creation", SONNET_45, Usage(input=3, cache_read=1111, cache_write=418, output=33), {
        "input": D(3) * D("3e-6"), "cache_read": D(1111) * D("0.3e-6"), "cache_write": D(418) * D("3.75e-6"),
        "output": D(33) * D("15e-6"),
    }),
    # the same reply had 300 of the 418 been written for an hour
    Case("anthropic/cache_creation_1h_split", SONNET_45,
        Usage(input=3, cache_read=1111, cache_write=418, cache_write_1h=300, output=33), {
        "input": D(3) * D("3e-6"), "cache_read": D(1111) * D("0.3e-6"),
        "cache_write": D(118) * D("3.75e-6") + D(300) * D("6e-6"), "output": D(33) * D("15e-6"),
    }),
    # messages_stream_prompt_cache_code_exec (claude-sonnet-5): the final, cumulative usage
    Case("anthropic/stream_prompt_cache", ("anthropic", "claude-sonnet-5"),
        Usage(input=6, cache_read=6289, cache_write=3337, output=198), {
        "input": D(6) * D("2e-6"), "cache_read": D(6289) * D("0.2e-6"), "cache_write": D(3337) * D("2.5e-6"),
        "output": D(198) * D("10e-6"),
    }),
    Case("anthropic/parallel_tool_use", ("anthropic", "claude-haiku-4-5"), Usage(input=423, output=202), {
        "input": D(423) * D("1e-6"), "output": D(202) * D("5e-6"),
    }),
    Case("openai/gpt-4o_tool_calls", ("openai", "gpt-4o"), Usage(input=68, output=12), {
        "input": D(68) * D("2.5e-6"), "output": D(12) * D("10e-6"),
    }),
    Case("openai/gpt-5_stream_text_short", ("openai", "gpt-5"), Usage(input=13, output=11), {
        "input": D(13) * D("1.25e-6"), "output": D(11) * D("10e-6"),
    }),
    Case("openai/gpt-4.1-nano_basic", ("openai", "gpt-4.1-nano"), Usage(input=16, output=363), {
        "input": D(16) * D("0.1e-6"), "output": D(363) * D("0.4e-6"),
    }),
    # chat_nonstream_search_preview: the request's web_search_options make it one search, "medium"
    Case("openai/search_preview", ("openai", "gpt-4o-search-preview"),
        Usage(input=12, output=293, web_search_requests=1, search_context_size="medium"), {
        "input": D(12) * D("2.5e-6"), "output": D(293) * D("10e-6"), "search": 1 * D("0.025"),
    }),
    # 563 prompt of which 512 cache hits; 116 completion of which 60 reasoning (billed as output, once)
    Case("deepseek/cache_hit_reasoning", ("deepseek", "deepseek-v4-flash"),
        Usage(input=563, cached_input=512, output=116, reasoning=60), {
        "input": D(51) * D("0.3e-6"), "cached_input": D(512) * D("0.006e-6"), "output": D(116) * D("1.2e-6"),
    }),
    Case("deepseek/stream_reasoner", ("deepseek", "deepseek-reasoner"), Usage(input=6, output=212, reasoning=198), {
        "input": D(6) * D("0.28e-6"), "output": D(212) * D("0.42e-6"),
    }),
    Case("mistral/prompt_cache", ("mistral", "mistral-large-latest"), Usage(input=268, cached_input=224, output=5), {
        "input": D(44) * D("0.5e-6"), "cached_input": D(224) * D("0.05e-6"), "output": D(5) * D("1.5e-6"),
    }),
    Case("mistral/thinking", ("mistral", "magistral-medium-latest"), Usage(input=664, output=747), {
        "input": D(664) * D("1.5e-6"), "output": D(747) * D("7.5e-6"),
    }),
    Case("mistral/tool_call", ("mistral", "mistral-small-latest"), Usage(input=124, output=22), {
        "input": D(124) * D("0.15e-6"), "output": D(22) * D("0.6e-6"),
    }),
    # Groq's recorded models (llama-3.3-70b-versatile, deepseek-r1-distill-llama-70b) are not in
    # the catalog: their counts are priced at the Groq entries it has.
    Case("groq/basic", ("groq", "openai/gpt-oss-120b"), Usage(input=45, output=607), {
        "input": D(45) * D("0.15e-6"), "output": D(607) * D("0.6e-6"),
    }),
    Case("groq/x_groq_stream_usage", ("groq", "openai/gpt-oss-20b"), Usage(input=21, output=988), {
        "input": D(21) * D("0.075e-6"), "output": D(988) * D("0.3e-6"),
    }),
    # xAI: 2 completion + 320 reasoning (outside completion_tokens) = 322 output; grok-3-mini is not
    # in the catalog, so an override prices it, and lands on the 1641500 ticks xAI reported.
    Case("xai/reasoning_outside_completion", None,
        Usage(input=12, cached_input=2, output=322, reasoning=320, provider_cost_nanousd=164_150), {
        "input": D(10) * D("0.3e-6"), "cached_input": D(2) * D("0.075e-6"), "output": D(322) * D("0.5e-6"),
    }, override=GROK_3_MINI, source="override", total=D(164_150) / D(10) ** 9),
    # chat_stream_reasoning (2 + 340 out, 11 of 12 in cached), priced at grok-4.20: xAI's 172125 wins
    Case("xai/stream_reasoning", ("xai", "grok-4.20"),
        Usage(input=12, cached_input=11, output=342, reasoning=340, provider_cost_nanousd=172_125), {
        "input": D(1) * D("1.25e-6"), "cached_input": D(11) * D("0.2e-6"), "output": D(342) * D("2.5e-6"),
    }),
    # generateContent_cached_content: 3520 prompt (3512 cached), 2 candidates + 42 thoughts
    Case("gemini/cached_content", ("gemini", "gemini-2.5-flash"),
        Usage(input=3520, cached_input=3512, output=44, reasoning=42), {
        "input": D(8) * D("0.3e-6"), "cached_input": D(3512) * D("0.03e-6"),
        "output": D(2) * D("2.5e-6") + D(42) * D("2.5e-6"),
    }),
    Case("gemini/thoughts_stream", ("gemini", "gemini-2.5-flash"), Usage(input=34, output=1256, reasoning=787), {
        "input": D(34) * D("0.3e-6"), "output": D(469) * D("2.5e-6") + D(787) * D("2.5e-6"),
    }),
    # promptTokenCount 10 + toolUsePromptTokenCount 50: the tool prompt is input, billed once
    Case("gemini/tool_use_prompt", ("gemini", "gemini-2.5-flash"), Usage(input=60, tool_prompt=50, output=3), {
        "input": D(60) * D("0.3e-6"), "output": D(3) * D("2.5e-6"),
    }),
    # Sonar chat_nonstream_usage_cost: search_context_size "low" is a $0.005 request fee; Perplexity's
    # own total (0.00501: it rounds the 6 input tokens up to $0.00001) is what is charged.
    Case("perplexity/sonar_low_context", ("perplexity", "sonar"),
        Usage(input=6, output=1, web_search_requests=1, search_context_size="low", provider_cost_nanousd=5_010_000), {
        "input": D(6) * D("1e-6"), "output": D(1) * D("1e-6"), "search": 1 * D("0.005"),
    }),
    # Agent API: 3007 in = 3 + 1780 read + 1224 written; reported total_cost 0.00119 wins. The catalog
    # has no write rate (writes fall back to the input rate) and no search fee for this model.
    Case("perplexity/agent_nonstream", ("perplexity", "openai/gpt-6-luna"),
        Usage(input=1783, cached_input=1780, cache_write=1224, output=36, web_search_requests=1,
              provider_cost_nanousd=1_190_000), {
        "input": D(3) * D("0.1e-6"), "cached_input": D(1780) * D("0.01e-6"), "cache_write": D(1224) * D("0.1e-6"),
        "output": D(36) * D("0.5e-6"),
    }),
    Case("perplexity/agent_stream", ("perplexity", "openai/gpt-6-luna"),
        Usage(input=3007, cached_input=3004, output=37, web_search_requests=1, provider_cost_nanousd=1_050_000), {
        "input": D(3) * D("0.1e-6"), "cached_input": D(3004) * D("0.01e-6"), "output": D(37) * D("0.5e-6"),
    }),
    # OpenRouter is not in the catalog: unpriced, its reported cost is the charge...
    Case("openrouter/usage_cost_unpriced", None,
        Usage(input=17, output=2177, reasoning=960, provider_cost_nanousd=4_358_250), None),
    Case("openrouter/stream_cost_unpriced", None,
        Usage(input=43, output=36, reasoning=13, provider_cost_nanousd=669_000), None),
    # ...and the upstream models' own catalog entries agree with it to the nano
    Case("openrouter/usage_cost_as_gpt-5-mini", ("openai", "gpt-5-mini"),
        Usage(input=17, output=2177, reasoning=960, provider_cost_nanousd=4_358_250), {
        "input": D(17) * D("0.25e-6"), "output": D(2177) * D("2e-6"),
    }, total=D("0.00435825")),
    Case("openrouter/stream_cost_as_sonnet-4-5", SONNET_45,
        Usage(input=43, output=36, reasoning=13, provider_cost_nanousd=669_000), {
        "input": D(43) * D("3e-6"), "output": D(36) * D("15e-6"),
    }, total=D("0.000669")),
    Case("ollama/free_local", None, Usage(input=136, output=15), {}, free=True, source="free"),
    Case("ollama/free_despite_catalog_rates", ("openai", "gpt-4o"), Usage(input=136, output=15), {}, free=True,
        source="free"),
    Case("custom/unpriced", None, Usage(input=136, output=15), None),
]  # fmt: skip


@pytest.mark.parametrize("model", list(PINS), ids="/".join)
def test_catalog_still_holds_the_pinned_rates(model: tuple[str, str]) -> None:
    entry_for(PINS, model)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_cost(case: Case) -> None:
    check(case, PINS)


@pytest.mark.parametrize("case", [c for c in CASES if c.usage.provider_cost_nanousd is not None], ids=lambda c: c.name)
def test_provider_reported_cost_wins(case: Case) -> None:
    check_reported(case, PINS)


def test_computed_figures_next_to_the_reported_ones() -> None:
    """Where both exist: xAI's and OpenRouter's agree with the catalog, Perplexity's do not
    (Sonar rounds each component; the Agent API adds writes at 1.25x and $0.001 per search)."""
    table = {c.name: c for c in CASES}

    def computed(name: str) -> int | None:
        case = table[name]
        got = compute(case.usage, entry_for(PINS, case.model), override=case.override)
        return None if got is None else got.total

    assert computed("xai/reasoning_outside_completion") == 164_150
    assert computed("openrouter/usage_cost_as_gpt-5-mini") == 4_358_250
    assert computed("openrouter/stream_cost_as_sonnet-4-5") == 669_000
    assert computed("openrouter/usage_cost_unpriced") is None
    assert computed("perplexity/sonar_low_context") == 5_007_000  # reported 5_010_000
    assert computed("perplexity/agent_nonstream") == 158_500  # reported 1_190_000
    assert computed("perplexity/agent_stream") == 48_840  # reported 1_050_000
