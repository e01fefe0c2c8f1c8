"""Cost of one request in integer nano-dollars, from the catalog's per-token rates.

This is the basic rule (tokens x rate per component); the provider's own figure wins when it
reports one. Rates are turned into Decimal from their shortest decimal text, never summed as
binary floats; the total is rounded once, half to even.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

from app.pipeline.core import Usage

NANOS_PER_USD = Decimal(1_000_000_000)


@lru_cache(maxsize=4096)
def _decimal(value: float | int | str) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def rate(rates: Mapping[str, Any], name: str, fallback: Decimal | None = None) -> Decimal | None:
    value = rates.get(name)
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return _decimal(value)
    return fallback


def cost_nanousd(usage: Usage, rates: Mapping[str, Any] | None, *, free: bool = False) -> int | None:
    """None means unpriced: the model has no known rates and the provider reported no cost."""
    if usage.provider_cost_nanousd is not None:
        return usage.provider_cost_nanousd
    if free:
        return 0
    if rates is None:
        return None
    input_rate = rate(rates, "input_cost_per_token")
    if input_rate is None:
        return None
    output_rate = rate(rates, "output_cost_per_token", Decimal(0))
    cached_rate = rate(rates, "cache_read_input_token_cost", input_rate)
    write_rate = rate(rates, "cache_creation_input_token_cost", input_rate)
    assert output_rate is not None and cached_rate is not None and write_rate is not None
    usd = (
        (usage.input - usage.cached_input) * input_rate
        + usage.cached_input * cached_rate
        + usage.cache_read * cached_rate
        + usage.cache_write * write_rate
        + usage.output * output_rate
    )
    return int((usd * NANOS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
