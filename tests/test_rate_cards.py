"""Usage rows hold the rates they were priced with by id; each set of rates is stored once, in
usage_rates, and rows read back with their rates as before."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson

from app.stores.queries import usage_rows
from app.stores.rate_cards import RateCards, rate_card
from app.stores.usage_models import UsageRates, UsageRecord
from tests.test_usage_writer import row, running_writer

PLAN = {"input_cost_per_token": "1.5E-7", "output_cost_per_token": "6E-7"}


def test_the_same_rates_have_the_same_id_in_any_order_and_other_rates_another() -> None:
    card_id, text = rate_card({"rates": PLAN, "tier": None, "service_tier": None})
    reordered = {"service_tier": None, "tier": None, "rates": dict(reversed(PLAN.items()))}
    assert rate_card(reordered) == (card_id, text)
    assert orjson.loads(text) == {"rates": PLAN, "tier": None, "service_tier": None}
    assert 0 <= card_id < 2**63  # fits a signed 64-bit column
    # Written out: every version must give the same rates the same id, or cards stored by an
    # earlier one are stored again under new ids.
    assert (
        text
        == '{"rates":{"input_cost_per_token":"1.5E-7","output_cost_per_token":"6E-7"},"service_tier":null,"tier":null}'
    )
    assert card_id == 6929067011378300205
    assert rate_card({"rates": PLAN, "tier": "above_200k", "service_tier": None})[0] != card_id
    assert (
        rate_card({"rates": {**PLAN, "output_cost_per_token": "7E-7"}, "tier": None, "service_tier": None})[0]
        != card_id
    )


def test_a_plans_card_is_worked_out_once_and_never_mistaken_for_another_dicts() -> None:
    cards = RateCards()
    first = cards.card(PLAN, None, "priority")
    assert (
        cards.card(PLAN, None, "priority")
        == first
        == rate_card({"rates": PLAN, "tier": None, "service_tier": "priority"})
    )
    assert cards.card(PLAN, None, None) != first  # the service tier is part of the card
    for n in range(50):  # short-lived dicts (a web search fee's) whose ids the allocator reuses
        other = {**PLAN, "search_context_size_low": str(n)}
        assert cards.card(other, None, None) == rate_card({"rates": other, "tier": None, "service_tier": None})


def test_rows_store_their_rates_once_and_read_back_with_them(db_url: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, list[object], list[object]]:
        plans = [{**PLAN, "input_cost_per_token": f"{n}E-7"} for n in range(3)]
        cards = [rate_card({"rates": plan, "tier": None, "service_tier": None}) for plan in plans]
        rows = []
        for n in range(300):  # several batches, every one of them with the same three cards
            card_id, text = cards[n % 3]
            rows.append(dataclasses.replace(row("cards"), rates_id=card_id, rates=text))
        rows.append(dataclasses.replace(row("cards"), rates_id=None, rates=None))  # unpriced
        async with running_writer(db_url, tmp_path, queue_size=1000) as (_, writer):
            for r in rows:
                writer.submit(r)
            await asyncio.wait_for(writer.flush(), 30)
            stored = await UsageRates.filter(id__in=[c[0] for c in cards]).count()
            ids = [r.request_id for r in rows]
            with_card = await UsageRecord.filter(request_id__in=ids, rates_id__not_isnull=True).count()
            listed = {r["request_id"]: r["rates"] async for r in usage_rows(request_ids=ids)}
        return stored, with_card, [listed[r.request_id] for r in rows], [orjson.loads(r.rates or "null") for r in rows]

    stored, with_card, listed, expected = asyncio.run(scenario())
    assert stored == 3 and with_card == 300
    assert listed == expected


def test_a_journal_from_before_rate_cards_is_adopted_with_its_rates(db_url: str, tmp_path: Path) -> None:
    """An earlier version journalled each row's rates as a JSON object and had no rates_id: a
    crash's journal left by it is written with the rates stored as a card. That version wrote
    arrays under a header line into a file it reused: its lines end at the first zero byte, and
    what follows (rows committed before, then the zeros of reserved blocks) is not read."""
    rates = {"rates": PLAN, "tier": None, "service_tier": None}

    def old_line(tag: str) -> tuple[str, bytes]:
        old = dataclasses.asdict(row(tag))
        del old["rates_id"]
        old["rates"] = rates
        old["created_at"] = old["created_at"].isoformat()
        return old["request_id"], orjson.dumps({"columns": list(old)}) + b"\n" + orjson.dumps(list(old.values()))

    adopted, lines = old_line("old-journal")
    committed_before, stale = old_line("old-journal")
    orphan = tmp_path / "usage-journal.1.old.jsonl"
    orphan.write_bytes(lines + b"\n\0" + stale[1:] + b"\n" + bytes(4096))

    async def scenario() -> tuple[list[object], bool]:
        async with running_writer(db_url, tmp_path) as (_, writer):
            await asyncio.wait_for(writer.flush(), 30)
            listed = [r["rates"] async for r in usage_rows(request_ids=[adopted])]
            record = await UsageRecord.get(request_id=adopted)
            assert record.rates_id == rate_card(rates)[0]
            return listed, await UsageRecord.exists(request_id=committed_before)

    assert asyncio.run(scenario()) == ([rates], False)
    assert list(tmp_path.iterdir()) == []  # read, written and removed: nothing in it was unreadable
