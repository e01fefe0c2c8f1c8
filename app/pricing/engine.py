"""The cost of one request, component by component, in integer nano-dollars.

Components follow the providers' invoices: uncached input; cached input (inside the prompt
count: OpenAI, DeepSeek, Gemini, Groq, xAI, Mistral); Anthropic cache reads and writes (outside
``input_tokens``), writes at the 5-minute or 1-hour rate; output, with reasoning billed as output
(or at its own rate where the catalog has one), never twice; per-request fees; web search fees.
Long-context and service tiers move the whole request to their rates.

Each component is exact (Decimal) and rounded once, half to even; the total is the rounded
exact sum. The rates used are returned with the figure so they can be stored with the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from app.pipeline.core import Usage
from app.pricing.rates import SERVICE_SUFFIX, TIER_PATTERN, as_decimal, pick, tier_for

NANOS_PER_USD = Decimal(1_000_000_000)
COMPONENTS = ("input", "cached_input", "cache_read", "cache_write", "output", "request", "search")


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """An admin's per-model prices (USD per token / per request); None keeps the catalog's."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_read_multiplier: Decimal | None = None  # of the input rate
    cache_write_multiplier: Decimal | None = None
    request_fee: Decimal | None = None
    tier_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    parts: dict[str, int]  # nano-dollars per component
    total: int
    rates: dict[str, str] = field(default_factory=dict)  # what was applied, USD per unit
    tier: str | None = None  # e.g. "above_200k"
    service_tier: str | None = None
    source: str = "catalog"  # catalog | override | free


def _nanos(usd: Decimal) -> int:
    return int((usd * NANOS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def compute(
    usage: Usage,
    entry: Mapping[str, Any] | None,
    *,
    override: PriceOverride | None = None,
    free: bool = False,
) -> CostBreakdown | None:
    """None means unpriced: no catalog rates and no override for this model."""
    if free and override is None:
        return CostBreakdown(dict.fromkeys(COMPONENTS, 0), 0, source="free")
    entry = entry or {}
    override = override or PriceOverride()
    rates: dict[str, str] = {}
    tier = tier_for(entry, usage.prompt_total, override.tier_threshold)
    label = tier[1] if tier else None
    service = usage.service_tier
    discount = _service_ratio(entry, label, service)

    def rate(name: str, replaced: Decimal | None, fallback: Decimal | None = None) -> Decimal | None:
        """An admin's rate is the price at every tier; otherwise the catalog's most specific
        rate, scaled by the service tier's discount where the catalog lists no variant."""
        if replaced is not None:
            rates[name] = str(replaced)
            return replaced
        found = pick(entry, name, label, service)
        if found is None:
            if fallback is not None:
                rates[name] = str(fallback)
            return fallback
        key, value = found
        if discount is not None and not _has_service(key, service):
            value = value * discount
        rates[name] = str(value)
        return value

    input_rate = rate("input_cost_per_token", override.input)
    if input_rate is None:
        return None
    output_rate = rate("output_cost_per_token", override.output, Decimal(0))
    read_rate = _scaled(override.cache_read, override.cache_read_multiplier, input_rate)
    cached_rate = rate("cache_read_input_token_cost", read_rate, input_rate)
    write_rate = _scaled(override.cache_write, override.cache_write_multiplier, input_rate)
    write_5m = rate("cache_creation_input_token_cost", write_rate, input_rate)
    write_1h = rate("cache_creation_input_token_cost_above_1hr", None, write_5m)
    # Reasoning has its own rate only where the catalog gives one as specific as the output rate
    # (Gemini lists a standard-tier reasoning rate only; thoughts are billed as output per tier).
    reasoning_found = pick(entry, "output_cost_per_reasoning_token", label, service)
    output_found = pick(entry, "output_cost_per_token", label, service)
    if reasoning_found and output_found and _specificity(reasoning_found[0]) >= _specificity(output_found[0]):
        reasoning_rate = rate("output_cost_per_reasoning_token", None, output_rate)
    else:
        reasoning_rate = output_rate
    assert output_rate is not None and cached_rate is not None and write_5m is not None
    assert write_1h is not None and reasoning_rate is not None

    cache_write_1h = min(usage.cache_write_1h, usage.cache_write)
    exact = {
        "input": (usage.input - usage.cached_input) * input_rate,
        "cached_input": usage.cached_input * cached_rate,
        "cache_read": usage.cache_read * cached_rate,
        "cache_write": (usage.cache_write - cache_write_1h) * write_5m + cache_write_1h * write_1h,
        "output": (usage.output - usage.reasoning) * output_rate + usage.reasoning * reasoning_rate,
        "request": _request_fee(entry, override, rates),
        "search": _search_fee(entry, usage, rates),
    }
    source = "override" if any(v is not None for v in _fields(override)) else "catalog"
    return CostBreakdown(
        parts={name: _nanos(value) for name, value in exact.items()},
        total=_nanos(sum(exact.values(), Decimal(0))),
        rates=rates,
        tier=f"above_{label}" if label else None,
        service_tier=usage.service_tier,
        source=source,
    )


def _has_service(key: str, service: str | None) -> bool:
    suffix = SERVICE_SUFFIX.get(service or "")
    return suffix is None or key.endswith("_" + suffix)


def _specificity(key: str) -> int:
    """How many of (long-context tier, service tier) a catalog key is specific to."""
    service = any(key.endswith("_" + suffix) for suffix in set(SERVICE_SUFFIX.values()))
    return int(TIER_PATTERN.search(key) is not None) + int(service)


def _service_ratio(entry: Mapping[str, Any], label: str | None, service: str | None) -> Decimal | None:
    """How a service tier scales prices, read off the input rate, for rates the catalog lists
    without that tier's variant (Anthropic's one-hour cache writes in a batch, say)."""
    if SERVICE_SUFFIX.get(service or "") is None:
        return None
    with_service = pick(entry, "input_cost_per_token", label, service)
    without = pick(entry, "input_cost_per_token", label, None)
    if not with_service or not without or not _has_service(with_service[0], service) or not without[1]:
        return None
    return with_service[1] / without[1]


def _fields(override: PriceOverride) -> tuple[Any, ...]:
    return tuple(getattr(override, name) for name in PriceOverride.__dataclass_fields__)


def _scaled(rate: Decimal | None, multiplier: Decimal | None, base: Decimal) -> Decimal | None:
    if rate is not None:
        return rate
    return base * multiplier if multiplier is not None else None


def _request_fee(entry: Mapping[str, Any], override: PriceOverride, rates: dict[str, str]) -> Decimal:
    fee = override.request_fee if override.request_fee is not None else as_decimal(entry.get("input_cost_per_request"))
    if fee is None:
        return Decimal(0)
    rates["input_cost_per_request"] = str(fee)
    return fee


def _search_fee(entry: Mapping[str, Any], usage: Usage, rates: dict[str, str]) -> Decimal:
    """Web search and grounding: per search, or per grounded request where the catalog bills
    per prompt (Gemini before 3: ``web_search_billing_unit`` absent), at the context size's rate."""
    searches = usage.web_search_requests
    table = entry.get("search_context_cost_per_query")
    if not searches or not isinstance(table, dict):
        return Decimal(0)
    size = usage.search_context_size or "medium"
    per_query = as_decimal(table.get(f"search_context_size_{size}"))
    if per_query is None:
        return Decimal(0)
    if entry.get("litellm_provider", "") == "gemini" and entry.get("web_search_billing_unit") != "per_query":
        searches = 1
    rates[f"search_context_size_{size}"] = str(per_query)
    return searches * per_query


def cost_nanousd(usage: Usage, rates: Mapping[str, Any] | None, *, free: bool = False) -> int | None:
    """The charged figure: the provider's own report when it gives one, else the computed cost."""
    if usage.provider_cost_nanousd is not None:
        return usage.provider_cost_nanousd
    breakdown = compute(usage, rates, free=free)
    return None if breakdown is None else breakdown.total
