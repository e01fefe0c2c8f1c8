"""The cost of one request, component by component, in integer nano-dollars.

Components follow the providers' invoices: uncached input; cached input (inside the prompt
count: OpenAI, DeepSeek, Gemini, Groq, xAI, Mistral); Anthropic cache reads and writes (outside
``input_tokens``), writes at the 5-minute or 1-hour rate; output, with reasoning billed as output
(or at its own rate where the catalog has one), never twice; per-request fees; web search fees.
Long-context and service tiers move the whole request to their rates.

Each component is exact and rounded once, half to even; the total is the rounded exact sum.
Rates are read as Decimal from the catalog's shortest text and, once per model and tier, scaled
to exact integers (:class:`RatePlan`): a request is priced in integer arithmetic alone, with no
binary float and no Decimal context rounding. The rates used are returned with the figure so
they can be stored with the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.internal import Usage
from app.pricing.rates import SERVICE_SUFFIX, TIER_PATTERN, as_decimal, pick, tier_for, tier_thresholds

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
    entry = entry or _NO_ENTRY
    override = override or _NO_OVERRIDE
    known = _known(entry)
    tier = tier_for(known.tiers, usage.prompt_total, override.tier_threshold)
    label = tier[1] if tier else None
    key = (override, label, usage.service_tier)
    if key not in known.plans:
        known.plans[key] = _build_plan(entry, override, label, usage.service_tier)
    plan = known.plans[key]
    return None if plan is None else plan.cost(usage)


class _Known:
    """What one catalog entry prices, worked out once: finding the rates costs ten times what
    applying them does. Its tiers, and a plan per (override, tier, service tier)."""

    __slots__ = ("entry", "plans", "tiers")

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.entry = entry  # held, so its id is not reused while it is known
        self.tiers = tier_thresholds(entry)
        self.plans: dict[tuple[PriceOverride, str | None, str | None], RatePlan | None] = {}


_NO_ENTRY: Mapping[str, Any] = {}
_NO_OVERRIDE = PriceOverride()
_KNOWN: dict[int, _Known] = {}


def _known(entry: Mapping[str, Any]) -> _Known:
    """Catalog entries are never changed in place (a sync or an edit replaces them), so an
    entry is known by its identity."""
    known = _KNOWN.get(id(entry))
    if known is None or known.entry is not entry:
        if len(_KNOWN) >= 4096:
            _KNOWN.clear()
        known = _KNOWN[id(entry)] = _Known(entry)
    return known


def _build_plan(
    entry: Mapping[str, Any], override: PriceOverride, label: str | None, service: str | None
) -> RatePlan | None:
    rates: dict[str, str] = {}
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
    request_fee = _request_fee(entry, override, rates)
    return RatePlan(
        (input_rate, cached_rate, write_5m, write_1h, output_rate, reasoning_rate, request_fee),
        rates=rates,
        tier=f"above_{label}" if label else None,
        source="override" if any(v is not None for v in _fields(override)) else "catalog",
        entry=entry,
    )


class RatePlan:
    """A model's rates as exact integers (USD x 10**digits), so a request's cost is a handful of
    integer products, rounded half to even once per component and once for the total."""

    __slots__ = ("digits", "entry", "rates", "scaled", "source", "tier")

    def __init__(
        self, decimals: tuple[Decimal, ...], *, rates: dict[str, str], tier: str | None, source: str,
        entry: Mapping[str, Any],
    ) -> None:  # fmt: skip
        self.digits = max(9, *(_decimals_of(d) for d in decimals))
        self.scaled = tuple(_as_int(d, self.digits) for d in decimals)
        self.rates = rates
        self.tier = tier
        self.source = source
        self.entry = entry

    def cost(self, usage: Usage) -> CostBreakdown:
        input_rate, cached, write_5m, write_1h, output, reasoning, request = self.scaled
        write_1h_tokens = min(usage.cache_write_1h, usage.cache_write)
        exact = {
            "input": (usage.input - usage.cached_input) * input_rate,
            "cached_input": usage.cached_input * cached,
            "cache_read": usage.cache_read * cached,
            "cache_write": (usage.cache_write - write_1h_tokens) * write_5m + write_1h_tokens * write_1h,
            "output": (usage.output - usage.reasoning) * output + usage.reasoning * reasoning,
            "request": request,
            "search": 0,
        }
        digits, rates = self.digits, self.rates
        if usage.web_search_requests:
            rates = dict(rates)  # the plan's own stays as it is for the next request
            fee = _search_fee(self.entry, usage, rates)
            if fee:
                wider = max(digits, _decimals_of(fee))
                exact = {name: value * 10 ** (wider - digits) for name, value in exact.items()}
                exact["search"] = _as_int(fee, wider)
                digits = wider
        divisor = 10 ** (digits - 9)
        return CostBreakdown(
            parts={name: _round(value, divisor) for name, value in exact.items()},
            total=_round(sum(exact.values()), divisor),
            rates=rates,
            tier=self.tier,
            service_tier=usage.service_tier,
            source=self.source,
        )


def _decimals_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite rate: {value}")
    return -exponent


def _as_int(value: Decimal, digits: int) -> int:
    """``value`` x 10**digits, exactly (``digits`` is at least the value's own decimal places)."""
    sign, figures, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    magnitude: int = int("".join(map(str, figures)) or "0") * 10 ** (exponent + digits)
    return -magnitude if sign else magnitude


def _round(value: int, divisor: int) -> int:
    """value / divisor, rounded half to even (as Decimal's ROUND_HALF_EVEN)."""
    quotient, remainder = divmod(value, divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2):
        quotient += 1
    return quotient


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
