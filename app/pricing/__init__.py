"""Pricing: which rates apply (:mod:`app.pricing.rates`) and what a request costs
(:mod:`app.pricing.engine`)."""

from app.pricing.engine import COMPONENTS, CostBreakdown, PriceOverride, compute, cost_nanousd

__all__ = ["COMPONENTS", "CostBreakdown", "PriceOverride", "compute", "cost_nanousd"]
