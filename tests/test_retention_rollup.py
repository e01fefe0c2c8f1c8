"""Retention keeps daily totals: after old rows are deleted, every total over their range (the
usage API, the CLI's totals, month-to-date spend) is what it was, on both databases; running
the job again counts nothing twice, and a row written late for a folded day is added."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.stores.rollup import fold_and_purge
from app.stores.spend import spend_by_tag
from app.stores.totals import totals
from app.stores.usage_models import UsageDaily, UsageRecord, UsageTag
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)

PROVIDERS = (("openai", "openai/gpt-4o"), ("anthropic", "anthropic/claude-haiku-4-5"), (None, None))
OUTCOMES = (("ok", 200), ("ok", 200), ("upstream_error", 502), ("client_error", 400))


def fake_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Rows over the last 60 days (some today), with tags, costs (some unpriced) and outcomes."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        provider, model = rng.choice(PROVIDERS)
        outcome, status = rng.choice(OUTCOMES)
        rows.append(
            {
                "request_id": f"rr-{seed}-{i}-{uuid.uuid4().hex[:6]}",
                "created_at": now - timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86_000)),
                "endpoint": "/v1/chat/completions",
                "dialect": rng.choice(("openai", "ollama")),
                "client": rng.choice(("10.0.0.1", "10.0.0.2")),
                "provider": provider,
                "resolved_model": model,
                "outcome": outcome,
                "status": status,
                "input_tokens": rng.randint(0, 5000),
                "output_tokens": rng.randint(0, 900),
                "reasoning_tokens": rng.randint(0, 100),
                "cached_input_tokens": rng.randint(0, 50),
                "cache_read_tokens": rng.randint(0, 70),
                "cache_write_tokens": rng.randint(0, 30),
                "cost_nanousd": None if rng.random() < 0.2 else rng.randint(0, 9_000_000),
                "tags": rng.sample(("alpha", "beta", "gamma"), rng.randint(0, 2)),
            }
        )
    return rows


async def insert(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        fields = {k: v for k, v in row.items() if k != "tags"}
        await UsageRecord.create(**fields)
        for tag in row["tags"]:
            await UsageTag.create(request_id=row["request_id"], tag=tag)


def snapshot(admin, since: str, until: str) -> dict[str, Any]:
    """Everything the usage API reports over the range, with and without filters."""
    out: dict[str, Any] = {}
    for extra in ({}, {"tag": "alpha"}, {"provider": "openai"}, {"outcome": "ok"}, {"status": "502"}):
        params = {"from": since, "to": until, **extra}
        key = str(sorted(extra.items()))
        out["summary" + key] = admin.client.get("/api/usage/summary", params=params).json()
        out["series" + key] = admin.client.get("/api/usage/series", params=params).json()
        for by in ("tag", "provider", "model", "client", "outcome"):
            if by == "tag" and "tag" in extra:
                continue  # the other tags of a tag's requests: daily totals keep no pairs of tags
            out[f"{by}{key}"] = admin.client.get("/api/usage/breakdown", params={**params, "by": by}).json()
    return out


def test_totals_survive_retention(own_db, make_admin) -> None:  # noqa: F811
    admin = make_admin(database_url=own_db)
    database = admin.relay.app.services.database
    rows = fake_rows(300, seed=7)

    def run(coroutine_fn: Any) -> Any:
        async def inside() -> Any:
            with database.context:
                return await coroutine_fn()

        return admin.relay.server.call(inside)

    run(lambda: insert(rows))
    today = datetime.now(UTC).date()
    since, until = (today - timedelta(days=70)).isoformat(), today.isoformat()
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def everything() -> dict[str, Any]:
        figures = snapshot(admin, since, until)
        for by in (None, "tag", "provider", "model", "client", "day", "outcome"):
            figures[f"cli-{by}"] = run(lambda by=by: totals(database.connection, database.backend, by=by))
        figures["spend"] = run(lambda: spend_by_tag(database.connection, database.backend, month))
        return figures

    before = everything()
    assert before["summary[]"]["requests"] == len(rows)

    assert admin.client.put("/api/settings", json={"retention_days": 20}).status_code == 200
    deleted = admin.client.post("/api/settings/retention/run").json()["deleted"]
    cutoff = datetime.combine(today - timedelta(days=20), datetime.min.time(), UTC)
    assert deleted == sum(1 for r in rows if r["created_at"] < cutoff) > 50
    assert run(lambda: UsageRecord.all().count()) == len(rows) - deleted
    assert everything() == before

    # Again: nothing left to fold, nothing counted twice.
    assert admin.client.post("/api/settings/retention/run").json()["deleted"] == 0
    assert everything() == before

    # A row that arrives late for a day already folded joins that day's totals.
    late = fake_rows(1, seed=8)[0]
    late.update(created_at=cutoff - timedelta(days=3), cost_nanousd=1_000, tags=["alpha"], outcome="ok", status=200)
    run(lambda: insert([late]))
    assert admin.client.post("/api/settings/retention/run").json()["deleted"] == 1
    after = admin.client.get("/api/usage/summary", params={"from": since, "to": until}).json()
    assert after["requests"] == len(rows) + 1
    assert after["cost_nanousd"] == before["summary[]"]["cost_nanousd"] + 1_000


def test_concurrent_runs_count_each_row_once(own_db, make_admin) -> None:  # noqa: F811
    """Two instances running the job at the same moment (two relays on one database)."""
    first, second = make_admin(database_url=own_db), make_admin(database_url=own_db)
    rows = fake_rows(200, seed=9)
    database = first.relay.app.services.database

    async def prepare() -> Any:
        with database.context:
            await insert(rows)

    first.relay.server.call(prepare)
    cutoff = datetime.combine(datetime.now(UTC).date() - timedelta(days=10), datetime.min.time(), UTC)
    old = [r for r in rows if r["created_at"] < cutoff]

    def purge(admin) -> Any:
        async def go() -> int:
            db = admin.relay.app.services.database
            with db.context:
                try:
                    return await fold_and_purge(db.backend, cutoff)
                except Exception as exc:  # SQLite may refuse the second writer: it retries later
                    return -1 if "locked" in str(exc) or "busy" in str(exc).lower() else exc  # type: ignore[return-value]

        return admin.relay.server.call(go)

    async def both() -> list[Any]:
        return list(await asyncio.gather(asyncio.to_thread(purge, first), asyncio.to_thread(purge, second)))

    results = asyncio.run(both())
    assert all(isinstance(r, int) for r in results), results
    assert sum(r for r in results if r > 0) == len(old)

    async def folded() -> tuple[int, int]:
        with database.context:
            overall = await UsageDaily.filter(tag="").all()
            return sum(d.requests for d in overall), sum(d.cost_nanousd for d in overall)

    requests, cost = first.relay.server.call(folded)
    assert requests == len(old)
    assert cost == sum(r["cost_nanousd"] or 0 for r in old)
