"""Which catalog rate applies to a request: long-context tiers and service tiers.

LiteLLM's catalog names rates ``<rate>``, ``<rate>_<service>`` (``batches``, ``flex``,
``priority``), ``<rate>_above_<N>_tokens`` and ``<rate>_above_<N>_tokens_<service>``. When the
prompt crosses N (more than N tokens), the whole request moves to that tier, as the providers
bill it. Rates become Decimal from their shortest decimal text, never binary floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

TIER_PATTERN = re.compile(r"_above_(\d+(?:\.\d+)?)([km]?)_tokens(?:_[a-z]+)?$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}
# How providers and the catalog name service tiers.
SERVICE_SUFFIX = {"batch": "batches", "batches": "batches", "flex": "flex", "priority": "priority"}


@lru_cache(maxsize=8192)
def _decimal(value: float | int | str) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, (int, float, str, Decimal)) and not isinstance(value, bool):
        return value if isinstance(value, Decimal) else _decimal(value)
    return None


def tier_thresholds(entry: Mapping[str, Any]) -> dict[int, str]:
    """Token thresholds this entry prices, e.g. {200000: "200k"}."""
    found: dict[int, str] = {}
    for key in entry:
        match = TIER_PATTERN.search(key)
        if match:
            tokens = int(Decimal(match.group(1)) * _UNITS[match.group(2)])
            found[tokens] = match.group(1) + match.group(2)
    return found


def tier_for(tiers: dict[int, str], prompt_tokens: int, threshold: int | None = None) -> tuple[int, str] | None:
    """The highest of an entry's ``tier_thresholds`` the prompt crosses (strictly more tokens).

    ``threshold`` (an admin override) moves where the entry's single tier begins."""
    if threshold is not None and len(tiers) == 1:
        tiers = {threshold: next(iter(tiers.values()))}
    crossed = [n for n in tiers if prompt_tokens > n]
    if not crossed:
        return None
    top = max(crossed)
    return top, tiers[top]


def pick(
    entry: Mapping[str, Any], name: str, tier_label: str | None, service: str | None
) -> tuple[str, Decimal] | None:
    """The most specific rate for this tier and service tier: (catalog key, rate)."""
    suffix = SERVICE_SUFFIX.get(service or "")
    candidates = []
    if tier_label and suffix:
        candidates.append(f"{name}_above_{tier_label}_tokens_{suffix}")
    if tier_label:
        candidates.append(f"{name}_above_{tier_label}_tokens")
    if suffix:
        candidates.append(f"{name}_{suffix}")
    candidates.append(name)
    for key in candidates:
        rate = as_decimal(entry.get(key))
        if rate is not None:
            return key, rate
    return None
