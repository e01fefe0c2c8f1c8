"""Cost end to end: what the rows record, what callers see, and totals that agree with the
rows to the nano-dollar on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx

from app.stores.models import PriceOverride
from app.stores.totals import totals

MESSAGES = [{"role": "user", "content": "hi"}]


@contextmanager
def replaying(upstream, provider: str, recording: str) -> Iterator[None]:
    """Let real model ids (which the catalog prices) reach a recording."""
    upstream.fallback[provider] = recording
    try:
        yield
    finally:
        upstream.fallback.pop(provider, None)


def post(relay, model: str, tag: str, **fields) -> httpx.Response:
    body = {"model": model, "messages": MESSAGES, **fields}
    return httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag})


def nanos(usd: Decimal) -> int:
    return int(usd * 1_000_000_000)


def test_catalog_price_is_recorded_with_its_rates_and_shown_to_the_caller(relay, upstream) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    with replaying(upstream, "openai", "chat_nonstream_basic"):
        reply = post(relay, "openai/gpt-4o", tag)
    # gpt-4o: $2.50 in, $10 out per million; the recording reports 16 in, 363 out.
    want = Decimal(16) * Decimal("2.5e-6") + Decimal(363) * Decimal("10e-6")
    assert reply.json()["usage"]["cost"] == float(want)
    row = relay.row(reply.headers["x-request-id"])
    assert (row["cost_nanousd"], row["computed_cost_nanousd"], row["cost_source"]) == (
        nanos(want),
        nanos(want),
        "catalog",
    )
    assert (row["cost_input_nanousd"], row["cost_output_nanousd"]) == (40_000, 3_630_000)
    assert row["rates"]["rates"]["input_cost_per_token"] == "0.0000025"
    assert row["provider_cost_nanousd"] is None


def test_streamed_usage_chunk_carries_the_cost(relay, upstream, sdk) -> None:
    with replaying(upstream, "openai", "chat_stream_text_short"):
        chunks = list(
            sdk.openai(relay.url).chat.completions.create(
                model="openai/gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
    usage = next(c.usage for c in chunks if c.usage)
    assert usage.model_extra["cost"] == float(Decimal(13) * Decimal("2.5e-6") + Decimal(11) * Decimal("10e-6"))


def test_anthropic_cache_reads_and_writes_are_priced_apart(relay, upstream) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    with replaying(upstream, "anthropic", "messages_nonstream_cache_read_and_creation"):
        reply = post(relay, "anthropic/claude-sonnet-4-5", tag)
    row = relay.row(reply.headers["x-request-id"])
    # 3 uncached input at $3, 1111 cache reads at $0.30, 418 cache writes (5 minutes) at $3.75,
    # 33 output at $15 per million; input_tokens already leaves the cache out.
    parts = {
        "input": Decimal(3) * Decimal("3e-6"),
        "cache_read": Decimal(1111) * Decimal("0.3e-6"),
        "cache_write": Decimal(418) * Decimal("3.75e-6"),
        "output": Decimal(33) * Decimal("15e-6"),
    }
    assert row["cost_cache_read_nanousd"] == nanos(parts["cache_read"]) == 333_300
    assert row["cost_cache_write_nanousd"] == nanos(parts["cache_write"]) == 1_567_500
    assert row["cost_nanousd"] == nanos(sum(parts.values(), Decimal(0))) == 2_404_800


def test_provider_reported_cost_wins_and_ours_is_kept_beside_it(relay, upstream) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    reply = post(relay, "xai/chat_nonstream_reasoning", tag)
    row = relay.row(reply.headers["x-request-id"])
    assert (row["cost_nanousd"], row["cost_source"]) == (164_150, "provider")  # 1641500 ticks of 1e-10 USD
    assert row["computed_cost_nanousd"] is None  # the recording's model is not in the catalog
    with replaying(upstream, "xai", "chat_nonstream_reasoning"):
        priced = post(relay, "xai/grok-4.3", tag)
    row = relay.row(priced.headers["x-request-id"])
    # grok-4.3: $1.25 in (cached $0.20), $2.50 out; 12 prompt of which 2 cached, 322 output.
    computed = Decimal(10) * Decimal("1.25e-6") + Decimal(2) * Decimal("0.2e-6") + Decimal(322) * Decimal("2.5e-6")
    assert (row["cost_nanousd"], row["computed_cost_nanousd"]) == (164_150, nanos(computed))
    assert priced.json()["usage"]["cost"] == float(Decimal("0.00016415"))


def test_unknown_model_is_unpriced_never_zero(relay) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    reply = post(relay, "openai/chat_nonstream_basic", tag)
    assert "cost" not in reply.json()["usage"]
    row = relay.row(reply.headers["x-request-id"])
    assert (row["cost_nanousd"], row["cost_source"]) == (None, "unpriced")


def test_override_applies_live_and_past_rows_keep_their_cost(make_relay) -> None:
    relay = make_relay()
    tag = f"t-{uuid.uuid4().hex[:8]}"

    async def set_price(input_per_mtok: str) -> None:
        with relay.app.services.database.context:
            await PriceOverride.update_or_create(
                defaults={"input_per_mtok": Decimal(input_per_mtok), "output_per_mtok": Decimal(2)},
                provider="openai",
                model="chat_nonstream_basic",
            )
        await relay.app.live.reload()

    relay.server.call(lambda: set_price("1"))
    first = post(relay, "openai/chat_nonstream_basic", tag)
    relay.server.call(lambda: set_price("5"))
    second = post(relay, "openai/chat_nonstream_basic", tag)
    # 16 in, 363 out: at $1/$2 per million, then at $5/$2.
    assert relay.row(first.headers["x-request-id"])["cost_nanousd"] == 16 * 1000 + 363 * 2000
    assert relay.row(second.headers["x-request-id"])["cost_nanousd"] == 16 * 5000 + 363 * 2000
    assert relay.row(first.headers["x-request-id"])["cost_source"] == "override"

    async def remove() -> None:
        with relay.app.services.database.context:
            await PriceOverride.filter(provider="openai", model="chat_nonstream_basic").delete()

    relay.server.call(remove)


def test_totals_equal_the_sum_of_rows(make_relay, upstream) -> None:
    relay = make_relay()
    run = uuid.uuid4().hex[:6]
    a, b = f"a-{run}", f"b-{run}"
    with replaying(upstream, "openai", "chat_nonstream_basic"):
        for tags in (a, f"{a},{b}", b, f"{a},{b}"):
            post(relay, "openai/gpt-4o", tags)
    post(relay, "openai/chat_nonstream_basic", a)  # unpriced
    post(relay, "mystery-model", a)  # an error, unpriced
    mine = relay.rows(tag=a) + [r for r in relay.rows(tag=b) if a not in r["tags"]]
    since = min(r["created_at"] for r in mine)

    async def compute(by):
        with relay.app.services.database.context:
            return await totals(
                relay.app.services.database.connection, relay.app.services.database.backend, by=by, since=since
            )

    by_tag = {t.key: t for t in relay.server.call(lambda: compute("tag"))}
    per_request = 3_670_000  # 16 x $2.50 + 363 x $10 per million
    assert (by_tag[a].requests, by_tag[a].cost_nanousd, by_tag[a].unpriced) == (5, 3 * per_request, 1)
    assert (by_tag[b].requests, by_tag[b].cost_nanousd) == (3, 3 * per_request)
    assert by_tag[a].errors == 1
    overall = relay.server.call(lambda: compute(None))[0]
    assert overall.cost_nanousd == sum(r["cost_nanousd"] or 0 for r in relay.rows() if r["created_at"] >= since)
    by_model = {t.key: t for t in relay.server.call(lambda: compute("model"))}
    assert by_model["openai/gpt-4o"].cost_nanousd == 4 * per_request
    assert by_model["openai/gpt-4o"].output_tokens == 4 * 363
    by_day = relay.server.call(lambda: compute("day"))
    assert sum(t.cost_nanousd for t in by_day) == overall.cost_nanousd
    assert sum(t.requests for t in relay.server.call(lambda: compute("provider"))) == overall.requests
