"""Pricing: which rates apply (:mod:`app.pricing.rates`) and what a request costs
(:mod:`app.pricing.engine`)."""

from app.pricing.engine import COMPONENTS, CostBreakdown, PriceOverride, compute, cost_nanousd
from app.pricing.pricer import Charge, Pricer, dollars, summed_cost

__all__ = [
    "COMPONENTS",
    "Charge",
    "CostBreakdown",
    "PriceOverride",
    "Pricer",
    "compute",
    "cost_nanousd",
    "dollars",
    "summed_cost",
]
