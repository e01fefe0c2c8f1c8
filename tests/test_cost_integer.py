"""The cost engine works in exact integers (rates scaled to whole numbers once per model): its
figures must be those of plain Decimal arithmetic, rounded half to even, for every rate the
catalog holds and for awkward ones (long fractions from a service-tier discount, negatives)."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from app.catalog import load_pricing_snapshot
from app.internal import Usage
from app.pricing import compute
from app.pricing.engine import _round


def decimal_nanos(value: Decimal) -> int:
    return int((value * Decimal(1_000_000_000)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def reference(usage: Usage, input_rate: Decimal, output_rate: Decimal, cached_rate: Decimal) -> tuple[int, int]:
    """(input nanos, total nanos) by Decimal arithmetic, the way the engine used to compute them."""
    uncached = (usage.input - usage.cached_input) * input_rate
    total = uncached + usage.cached_input * cached_rate + usage.output * output_rate
    return decimal_nanos(uncached), decimal_nanos(total)


@pytest.mark.parametrize("value", range(-25, 26))
@pytest.mark.parametrize("divisor", [1, 2, 10, 1000])
def test_round_is_half_to_even(value: int, divisor: int) -> None:
    expected = int((Decimal(value) / Decimal(divisor)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert _round(value, divisor) == expected


def test_every_catalog_rate_prices_as_decimal_arithmetic_does() -> None:
    snapshot = load_pricing_snapshot()
    entries = [entry for provider in snapshot.values() for entry in provider.values()]
    entries = [e for e in entries if isinstance(e.get("input_cost_per_token"), (int, float))]
    assert len(entries) > 300
    checked = 0
    rng = random.Random(7)
    for entry in entries:
        usage = Usage(input=rng.randrange(1, 150_000), output=rng.randrange(0, 9_000), cached_input=0)
        usage.cached_input = rng.randrange(0, usage.input)
        got = compute(usage, entry)
        assert got is not None
        as_dec = Decimal(repr(entry["input_cost_per_token"]))
        out = Decimal(repr(entry.get("output_cost_per_token", 0)))
        cached = entry.get("cache_read_input_token_cost")
        cached_dec = as_dec if cached is None else Decimal(repr(cached))
        if any(key.startswith(("input_cost_per_token_above", "output_cost_per_token_above")) for key in entry):
            continue  # long-context tiers move the rates; test_cost_golden_edges covers those
        if entry.get("output_cost_per_reasoning_token") is not None or entry.get("input_cost_per_request"):
            continue
        assert (got.parts["input"], got.total) == reference(usage, as_dec, out, cached_dec), entry
        checked += 1
    assert checked > 250


def test_long_fractions_and_odd_counts_match_decimal() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        # A rate with up to 20 decimal places, as a service-tier discount ratio produces.
        rate = Decimal(rng.randrange(1, 10**12)).scaleb(-rng.randrange(9, 21))
        output = Decimal(rng.randrange(1, 10**12)).scaleb(-rng.randrange(9, 21))
        usage = Usage(input=rng.randrange(0, 2_000_000), output=rng.randrange(0, 200_000))
        entry = {"input_cost_per_token": str(rate), "output_cost_per_token": str(output)}
        got = compute(usage, entry)
        assert got is not None
        assert (got.parts["input"], got.total) == reference(usage, rate, output, rate)
        assert got.parts["output"] == decimal_nanos(usage.output * output)


def test_a_replaced_entry_is_priced_afresh() -> None:
    usage = Usage(input=1000, output=1000)
    first = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    second = {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6}
    assert compute(usage, first).total == 3_000_000  # type: ignore[union-attr]
    assert compute(usage, second).total == 7_000_000  # type: ignore[union-attr]
    assert compute(usage, first).total == 3_000_000  # type: ignore[union-attr]
