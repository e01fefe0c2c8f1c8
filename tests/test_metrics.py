"""``/metrics``: Prometheus text whose counts, tokens and cost equal the usage rows, with
latency and time-to-first-token histograms; per-tag series only when asked for."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import httpx

from tests.test_stage_spend_limit import COST, MESSAGES

LINE = re.compile(r"^(?P<name>[a-z_]+)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")


def scrape(url: str) -> dict[str, dict[str, str]]:
    """name -> labels -> value, checking every line is a comment or a sample."""
    reply = httpx.get(url + "/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[str, str]] = {}
    for line in reply.text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        match = LINE.match(line)
        assert match, f"not a sample: {line!r}"
        samples.setdefault(match["name"], {})[match["labels"] or ""] = match["value"]
    return samples


def test_counts_tokens_cost_and_histograms_match_the_rows(make_relay, upstream, sdk) -> None:
    relay = make_relay()
    tag = f"m-{uuid.uuid4().hex[:8]}"
    upstream.fallback["openai"] = "chat_nonstream_basic"
    try:
        for _ in range(2):
            httpx.post(
                relay.url + "/v1/chat/completions",
                json={"model": "openai/gpt-4o", "messages": MESSAGES},
                headers={"X-Proxy-Tag": tag},
            )
    finally:
        upstream.fallback.pop("openai", None)
    list(
        sdk.openai(relay.url).chat.completions.create(
            model="openai/chat_stream_text_short", messages=MESSAGES, stream=True
        )
    )
    missing = httpx.post(relay.url + "/v1/chat/completions", json={"model": "no-such-model-x", "messages": MESSAGES})
    assert missing.status_code == 404

    m = scrape(relay.url)
    gpt = '{provider="openai",model="openai/gpt-4o"'
    assert m["llm_relay_requests_total"][gpt + ',outcome="ok"}'] == "2"
    assert Decimal(m["llm_relay_cost_usd_total"][gpt + "}"]) == Decimal(2 * COST) / 10**9
    rows = relay.rows(tag=tag)
    assert m["llm_relay_tokens_total"][gpt + ',kind="input"}'] == str(sum(r["input_tokens"] for r in rows))
    assert m["llm_relay_tokens_total"][gpt + ',kind="output"}'] == str(sum(r["output_tokens"] for r in rows))
    assert m["llm_relay_errors_total"]['{provider="none",model="none",outcome="client_error"}'] == "1"
    assert gpt + ',outcome="ok"}' not in m["llm_relay_errors_total"]

    buckets = {k: int(v) for k, v in m["llm_relay_request_duration_seconds_bucket"].items() if k.startswith(gpt)}
    assert buckets[gpt + ',le="+Inf"}'] == 2 == int(m["llm_relay_request_duration_seconds_count"][gpt + "}"])
    counts = [buckets[k] for k in sorted(buckets, key=lambda k: float(k.split('le="')[1].rstrip('"}')))]
    assert counts == sorted(counts)  # cumulative
    expected_sum = sum(r["latency_ms"] for r in rows) / 1000
    assert abs(float(m["llm_relay_request_duration_seconds_sum"][gpt + "}"]) - expected_sum) < 1e-9

    stream = '{provider="openai",model="openai/chat_stream_text_short"}'
    assert m["llm_relay_time_to_first_token_seconds_count"][stream] == "1"
    assert gpt + "}" not in m.get("llm_relay_time_to_first_token_seconds_count", {})  # not streamed
    assert "llm_relay_tag_requests_total" not in m  # tags only when asked for
    assert "llm_relay_usage_pending_rows" in m
    assert "llm_relay_usage_rows_rejected_total" in m


def test_tags_when_enabled(make_relay) -> None:
    relay = make_relay(metrics_tags=True)
    tag = f"m-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        httpx.post(
            relay.url + "/v1/chat/completions",
            json={"model": "openai/chat_nonstream_basic", "messages": MESSAGES},
            headers={"X-Proxy-Tag": f"{tag},shared"},
        )
    m = scrape(relay.url)
    assert m["llm_relay_tag_requests_total"][f'{{tag="{tag}"}}'] == "3"
    rows = relay.rows(tag=tag)
    tokens = sum(
        r["input_tokens"] + r["output_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"] for r in rows
    )
    assert m["llm_relay_tag_tokens_total"][f'{{tag="{tag}"}}'] == str(tokens)


def test_metrics_can_be_turned_off(make_relay) -> None:
    assert httpx.get(make_relay(metrics_enabled=False).url + "/metrics").status_code == 404


def test_a_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    """Prometheus buckets are "less than or equal"; past the last bound is +Inf."""
    from app.metrics import _histogram, _observe

    buckets = (0.1, 0.5, 1.0)
    histogram = _histogram(buckets)
    for seconds in (0.05, 0.1, 0.3, 1.0, 7.0):
        _observe(histogram, buckets, seconds)
    assert histogram[:-1] == [2, 1, 1, 1] and histogram[-1] == 0.05 + 0.1 + 0.3 + 1.0 + 7.0
