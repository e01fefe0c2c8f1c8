"""The spend_limit stage: a tag's monthly budget refuses the request that would start after it is
spent, with a 429 in the caller's dialect and a usage row; two relays on one database agree."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from app.pipeline.stages.spend_limit import SpendLimitStage, usd_to_nanos
from tests.conftest import BACKEND

# gpt-4o ($2.50 in, $10 out per million) on the recording chat_nonstream_basic: 16 in, 363 out.
COST = 16 * 2_500 + 363 * 10_000  # nano-dollars
MESSAGES = [{"role": "user", "content": "hi"}]
STAGES = '["tags", "spend_limit", "resolve", "quirks", "dispatch", "meter", "cost"]'


def pipeline_file(tmp_path: Path, budgets: str, refresh: float = 2.0) -> str:
    path = tmp_path / f"pipeline-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        f"stages = {STAGES}\n[options.spend_limit]\nbudgets = {{ {budgets} }}\nrefresh_seconds = {refresh}\n"
    )
    return str(path)


def stage_of(relay) -> SpendLimitStage:
    return next(s for s in relay.app.pipeline.stages if isinstance(s, SpendLimitStage))


def chat(relay, tag: str) -> httpx.Response:
    body = {"model": "openai/gpt-4o", "messages": MESSAGES}
    return httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag})


@pytest.fixture
def priced(upstream):
    upstream.fallback["openai"] = "chat_nonstream_basic"
    yield
    upstream.fallback.pop("openai", None)


def test_budgets_are_exact_dollars() -> None:
    assert usd_to_nanos("0.009175") == 9_175_000
    assert usd_to_nanos(2.3) == 2_300_000_000  # through its decimal text, not its binary value
    assert usd_to_nanos(25) == 25 * 10**9


def test_the_request_after_the_budget_is_spent_is_refused(make_relay, tmp_path, priced) -> None:
    tag, other = f"sl-{uuid.uuid4().hex[:8]}", f"sl-{uuid.uuid4().hex[:8]}"
    budget = Decimal(COST) * Decimal("2.5") / Decimal(10**9)  # room for two and a half requests
    relay = make_relay(pipeline_file=pipeline_file(tmp_path, f'"{tag}" = "{budget}"'))
    codes = [chat(relay, tag).status_code for _ in range(3)]
    assert codes == [200, 200, 200]  # the third starts with 2 x COST spent, under the budget
    refused = chat(relay, tag)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    assert tag in error["message"] and "monthly budget" in error["message"]
    assert refused.headers["x-should-retry"] == "false"
    assert chat(relay, other).status_code == 200  # a tag without a budget is not limited

    rows = sorted(relay.rows(tag=tag), key=lambda r: r["created_at"])
    assert [r["status"] for r in rows] == [200, 200, 200, 429]
    assert [r["cost_nanousd"] for r in rows[:3]] == [COST] * 3
    assert rows[3]["cost_nanousd"] in (None, 0) and rows[3]["outcome"] == "client_error"

    # The stage's view after a refresh from the database is the same as before it.
    relay.server.call(stage_of(relay).refresh)
    status = stage_of(relay).status()
    entry = next(b for b in status["budgets"] if b["tag"] == tag)
    assert Decimal(entry["spent_usd"]) == Decimal(3 * COST) / Decimal(10**9)
    assert entry["exhausted"] and status["refused"] == 1
    assert chat(relay, tag).status_code == 429


def test_refusal_in_each_dialect_and_when_streaming(make_relay, tmp_path, upstream, sdk) -> None:
    tag = f"sl-{uuid.uuid4().hex[:8]}"
    relay = make_relay(pipeline_file=pipeline_file(tmp_path, f'"{tag}" = "0.000001"'))
    upstream.fallback["openai"] = "chat_stream_text_short"
    try:
        client = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag})
        first = list(client.chat(model="openai/gpt-4o", messages=MESSAGES, stream=True))
        assert first[-1].done
        with pytest.raises(ollama.ResponseError) as ollama_error:
            list(client.chat(model="openai/gpt-4o", messages=MESSAGES, stream=True))
        assert ollama_error.value.status_code == 429 and "monthly budget" in ollama_error.value.error
        oa = sdk.openai(relay.url)
        with pytest.raises(openai.RateLimitError) as openai_error:
            list(
                oa.chat.completions.create(
                    model="openai/gpt-4o", messages=MESSAGES, stream=True, extra_headers={"X-Proxy-Tag": tag}
                )
            )
        assert openai_error.value.code == "budget_exceeded"
    finally:
        upstream.fallback.pop("openai", None)
    statuses = sorted(r["status"] for r in relay.rows(tag=tag))
    assert statuses == [200, 429, 429]  # the OpenAI SDK did not retry: x-should-retry: false


def test_default_budget_applies_to_every_other_tag(make_relay, tmp_path, priced) -> None:
    rich, anyone = f"sl-{uuid.uuid4().hex[:8]}", f"sl-{uuid.uuid4().hex[:8]}"
    relay = make_relay(pipeline_file=pipeline_file(tmp_path, f'"{rich}" = 100, "*" = "0.000001"'))
    assert [chat(relay, anyone).status_code for _ in range(2)] == [200, 429]
    assert [chat(relay, rich).status_code for _ in range(2)] == [200, 200]
    # A request with several tags is refused when any of them is out of budget.
    assert chat(relay, f"{rich},{anyone}").status_code == 429


def test_last_months_spend_does_not_count(make_relay, tmp_path, priced) -> None:
    tag = f"sl-{uuid.uuid4().hex[:8]}"
    relay = make_relay(pipeline_file=pipeline_file(tmp_path, f'"{tag}" = "0.000001"'))
    assert [chat(relay, tag).status_code for _ in range(2)] == [200, 429]
    rows = relay.rows(tag=tag)
    earlier = datetime.now(UTC).replace(day=1) - timedelta(days=2)

    async def move_to_last_month() -> None:
        database = relay.app.services.database
        with database.context:
            when: Any = earlier if BACKEND == "postgres" else earlier.isoformat(sep=" ")
            mark = "$1" if BACKEND == "postgres" else "?"
            for row in rows:
                ident = "$2" if BACKEND == "postgres" else "?"
                await database.connection.execute_query(
                    f"UPDATE usage_record SET created_at = {mark} WHERE request_id = {ident}", [when, row["request_id"]]
                )
            await stage_of(relay).refresh()

    relay.server.call(move_to_last_month)
    assert chat(relay, tag).status_code == 200


def test_two_relays_on_one_database_agree(make_relay, tmp_path, priced) -> None:
    tag = f"sl-{uuid.uuid4().hex[:8]}"
    budget = Decimal(COST) * Decimal("2.5") / Decimal(10**9)
    config = pipeline_file(tmp_path, f'"{tag}" = "{budget}"', refresh=0.1)
    first, second = make_relay(pipeline_file=config), make_relay(pipeline_file=config)
    for relay in (first, second, first):
        assert chat(relay, tag).status_code == 200
        relay.rows(tag=tag)  # flush this relay's writer: the row is committed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        spent = {stage_of(r).spent(tag) for r in (first, second)}
        if spent == {3 * COST}:
            break
        time.sleep(0.05)
    assert spent == {3 * COST}, f"the relays disagree or are wrong: {spent}"
    assert chat(second, tag).status_code == 429
    assert chat(first, tag).status_code == 429


def test_admin_shows_the_pipeline_and_the_budgets(make_admin, tmp_path, priced) -> None:
    tag = f"sl-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "admin-pipeline.toml"
    config.write_text(f'stages = {STAGES}\n[options.spend_limit]\nbudgets = {{ "{tag}" = "0.000001" }}\n')
    admin = make_admin(pipeline_file=str(config))
    assert [chat(admin.relay, tag).status_code for _ in range(2)] == [200, 429]
    view = admin.client.get("/api/pipeline").json()
    assert [s["name"] for s in view["stages"]] == [
        "tags",
        "spend_limit",
        "resolve",
        "quirks",
        "dispatch",
        "meter",
        "cost",
    ]
    assert [s["position"] for s in view["stages"]] == list(range(1, 8))
    assert next(s for s in view["stages"] if s["terminal"])["name"] == "dispatch"
    limit = view["stages"][1]
    assert limit["source"] == "llm-relay" and limit["options"] == {"budgets": {tag: "0.000001"}}
    assert limit["status"]["refused"] == 1
    assert limit["status"]["budgets"] == [
        {
            "tag": tag,
            "budget_usd": "0.000001",
            "spent_usd": f"{Decimal(COST) / Decimal(10**9):.6f}",
            "remaining_usd": "0.000000",
            "exhausted": True,
        }
    ]
    page = admin.client.get("/pipeline")
    assert page.status_code == 200
    assert f"<code>{tag}</code>" in page.text and "spent: refusing" in page.text
    assert 'id="stage-spend_limit"' in page.text
