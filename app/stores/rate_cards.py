"""The rates a usage row was priced with, stored once per distinct set.

Rates as JSON are the same for every request to a model and tier, and were most of a usage
row's bytes when every row held them. A row now holds ``rates_id``, a digest of the
rates' JSON text, and the writer stores each text once in ``usage_rates`` under its digest
(idempotent: the same rates give the same id in every process, so workers and instances need
no coordination, and a replayed row finds its rates there). The text still waits with the row
in the journal, so a row needs nothing but its own line to be written. Cards outlive the
rows that used them (retention deletes rows only): a few hundred bytes per set of rates.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_CACHE_LIMIT = 1024


def rate_card(rates: dict[str, Any]) -> tuple[int, str]:
    """The rates' id (63 bits of a BLAKE2b digest of their JSON text, keys sorted) and that text."""
    text = orjson.dumps(rates, option=orjson.OPT_SORT_KEYS).decode()
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1, text


class RateCards:
    """The card of what a request was priced with: a plan's rates (one dict for all its
    requests), its tier and the request's service tier. Worked out once per combination;
    the plan's dict is kept with its card, so the identity it is looked up by stays its own."""

    __slots__ = ("_cards",)

    def __init__(self) -> None:
        self._cards: dict[tuple[int, str | None, str | None], tuple[dict[str, str], int, str]] = {}

    def card(self, rates: dict[str, str], tier: str | None, service_tier: str | None) -> tuple[int, str]:
        key = (id(rates), tier, service_tier)
        found = self._cards.get(key)
        if found is not None and found[0] is rates:
            return found[1], found[2]
        card_id, text = rate_card({"rates": rates, "tier": tier, "service_tier": service_tier})
        if len(self._cards) >= _CACHE_LIMIT:  # plans replaced by price syncs, one-off dicts (web search fees)
            self._cards.clear()
        self._cards[key] = (rates, card_id, text)
        return card_id, text
