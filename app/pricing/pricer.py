"""What a request is charged: the provider's own figure where it reports one, else the cost
engine's, with the admin's per-model overrides applied. Overrides are swapped in whole by the
live configuration, so each request sees one consistent set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.internal import Target, Usage
from app.pricing.engine import CostBreakdown, PriceOverride, compute

NANOS_PER_USD = Decimal(1_000_000_000)


@dataclass(frozen=True, slots=True)
class Charge:
    charged: int | None  # nano-dollars; None means unpriced
    source: str  # provider | catalog | override | free | unpriced
    computed: CostBreakdown | None  # our own figure, kept beside the provider's to compare


def dollars(nanos: int) -> float:
    """Nano-dollars as the JSON number OpenAI-style clients read (``usage.cost``): the double
    nearest the exact quotient (Python's int true division rounds correctly; a tenth of the
    cost of going through Decimal)."""
    return nanos / 1_000_000_000


def summed_cost(requests: int, priced: int, nanos: int) -> int | None:
    """A sum of request costs: None (unpriced, never $0) when requests went through and not one
    had a price; otherwise the priced ones' exact sum, the others counted apart."""
    return None if requests and not priced else nanos


class Pricer:
    def __init__(self, overrides: Mapping[tuple[str, str], PriceOverride] | None = None) -> None:
        self.overrides = dict(overrides or {})

    def override_for(self, target: Target) -> PriceOverride | None:
        return self.overrides.get((target.provider.name, target.model.lower()))

    def charge(self, target: Target, usage: Usage) -> Charge:
        computed = compute(
            usage, target.catalog_entry, override=self.override_for(target), free=target.provider.is_ollama
        )
        if usage.provider_cost_nanousd is not None:
            return Charge(usage.provider_cost_nanousd, "provider", computed)
        if computed is None:
            return Charge(None, "unpriced", None)
        return Charge(computed.total, computed.source, computed)
