"""``llm-relay pricing sync``: prices update, overrides and past costs stay, failures change
nothing. Runs against its own database so other tests keep the bundled prices."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from app.pricing.sync import MAX_CATALOG_BYTES
from app.stores.db import apply_migrations
from app.stores.models import PriceOverride, PricingSync
from tests.conftest import BACKEND, PG_SERVER, _create_pg_database, _drop_pg_database
from tests.live import LiveServer, free_port

LITELLM = Path(__file__).resolve().parents[2] / "shared" / "data" / "litellm_model_prices.json"
BUNDLED = Path(__file__).resolve().parent.parent / "app" / "data" / "pricing.json"


@pytest.fixture
def own_db(tmp_path) -> Iterator[str]:
    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    else:
        url = f"sqlite://{tmp_path / 'sync.db'}"
    asyncio.run(apply_migrations(url))
    yield url
    if BACKEND == "postgres":
        _drop_pg_database(name)


@pytest.fixture
def catalog_copy(tmp_path) -> Path:
    """A local copy of LiteLLM's catalog (from the bundled snapshot's source when available)
    with gpt-4o's input price doubled, one model removed and one added."""
    if LITELLM.exists():
        catalog = json.loads(LITELLM.read_text())
    else:  # rebuild LiteLLM's shape from the bundled snapshot
        models = json.loads(BUNDLED.read_text())["models"]
        catalog = {
            (m if p == "openai" else f"{p}/{m}"): {**e, "litellm_provider": e.get("litellm_provider", p)}
            for p, ms in models.items()
            for m, e in ms.items()
        }
    changed = copy.deepcopy(catalog)
    changed["gpt-4o"]["input_cost_per_token"] = 5e-06
    del changed["gpt-4o-mini"]
    changed["gpt-9-test"] = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(changed))
    return path


def cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=60)


def test_sync_updates_prices_keeps_overrides_and_past_costs(own_db, catalog_copy, make_relay, upstream) -> None:
    relay = make_relay(database_url=own_db)
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]}

    async def add_override() -> None:
        with relay.app.services.database.context:
            await PriceOverride.create(provider="openai", model="gpt-4o-2024-08-06", input_per_mtok=Decimal(1))
        await relay.app.live.reload()

    relay.server.call(add_override)
    upstream.fallback["openai"] = "chat_nonstream_basic"
    try:
        before = httpx.post(relay.url + "/v1/chat/completions", json=body)
        result = cli("pricing", "sync", "--url", str(catalog_copy), db=own_db)
        assert result.returncode == 0, result.stderr
        assert "1 models added, 1 removed, 1 with changed prices" in result.stdout
        relay.server.call(relay.app.live.reload)
        after = httpx.post(relay.url + "/v1/chat/completions", json=body)
        dated = httpx.post(relay.url + "/v1/chat/completions", json={**body, "model": "openai/gpt-4o-2024-08-06"})
    finally:
        upstream.fallback.pop("openai")
    # 16 in, 363 out: input at $2.50, then at the synced $5.00 per million; output $10.
    assert relay.row(before.headers["x-request-id"])["cost_nanousd"] == 16 * 2500 + 363 * 10000
    assert relay.row(after.headers["x-request-id"])["cost_nanousd"] == 16 * 5000 + 363 * 10000
    assert relay.row(dated.headers["x-request-id"])["cost_nanousd"] == 16 * 1000 + 363 * 10000  # override stays
    catalog = relay.app.services.catalog
    assert catalog.get("openai", "gpt-9-test") is not None and catalog.get("openai", "gpt-4o-mini") is None
    assert catalog.get("lab", "llama3.2") is not None  # discovered models survive the swap

    async def recorded() -> PricingSync:
        with relay.app.services.database.context:
            return await PricingSync.get(status="ok")

    sync_row = relay.server.call(recorded)
    assert sync_row.changes["changed"]["openai/gpt-4o"]["input_cost_per_token"] == [2.5e-06, 5e-06]
    assert sync_row.changes["added"] == ["openai/gpt-9-test"] and sync_row.changes["removed"] == ["openai/gpt-4o-mini"]
    assert "#1" in cli("pricing", "history", db=own_db).stdout


def test_sync_over_http(own_db, catalog_copy) -> None:
    data = catalog_copy.read_bytes()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    server = LiveServer(app, lifespan="off").start()
    try:
        result = cli("pricing", "sync", "--url", f"{server.url}/model_prices.json", db=own_db)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "1 with changed prices" in result.stdout


def test_a_source_that_never_ends_is_refused_not_read_into_memory(own_db) -> None:
    """``/dev/zero`` given in the admin's Settings grew the relay to 20 GB; an endless reply likewise."""

    async def endless(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        for _ in range(MAX_CATALOG_BYTES // 65536 + 2):
            await send({"type": "http.response.body", "body": b" " * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b"{}"})

    server = LiveServer(endless, lifespan="off").start()
    try:
        for source in ("/dev/zero", f"{server.url}/catalog.json"):
            result = cli("pricing", "sync", "--url", source, db=own_db)
            assert result.returncode == 1 and "not a pricing catalog" in result.stderr, result.stderr[-2000:]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("http://127.0.0.1:{port}/nothing-listens-here.json", "cannot fetch"),
        ("/nonexistent/catalog-{uuid}.json", "cannot read"),
        ("{notjson}", "not JSON"),
        ("{notcatalog}", "not a LiteLLM model catalog"),
    ],
)
def test_failed_sync_changes_nothing_and_says_why(own_db, tmp_path, source: str, reason: str) -> None:
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "other.json").write_text('{"hello": {"world": 1}}')
    source = source.format(
        port=free_port(), uuid=uuid.uuid4().hex, notjson=tmp_path / "bad.json", notcatalog=tmp_path / "other.json"
    )
    result = cli("pricing", "sync", "--url", source, db=own_db)
    assert result.returncode == 1
    assert "prices unchanged" in result.stderr and reason in result.stderr
    history = cli("pricing", "history", db=own_db).stdout
    assert "failed" in history and reason in history
