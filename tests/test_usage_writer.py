"""The usage writer inserts a batch its own way (on SQLite multi-row inserts, on PostgreSQL one
JSON array of the rows): every column must hold exactly what Tortoise itself stores for the same
values, on both, or the admin's filters (which compare SQLite's datetime text) and totals would
quietly go wrong."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tortoise.transactions import in_transaction

from app.stores.db import Database
from app.stores.queries import usage_rows
from app.stores.rate_cards import rate_card
from app.stores.usage import UsageWriter
from app.stores.usage_models import UsageRates, UsageRecord, UsageTag
from app.stores.usage_row import RECORD_COLUMNS, UsageRow

RATES = rate_card({"rates": {"input": "0.00000015", "output": "6E-7"}, "tier": None, "service_tier": "priority"})


def full_row(**changes: Any) -> UsageRow:
    """Every column set to a value that is not its default, with text that JSON must escape."""
    row = UsageRow(
        request_id=uuid.uuid4().hex, created_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
        endpoint="/v1/chat/completions", dialect="openai", client="10.0.0.7", requested_model='gpt "x"\\y',
        resolved_model="openai/gpt-4o-mini ✓", provider="openai", route="direct", input_tokens=123456789012,
        output_tokens=5, reasoning_tokens=6, cached_input_tokens=7, cache_read_tokens=8, cache_write_tokens=9,
        usage_reported=True, cache_write_1h_tokens=10, web_search_requests=2, service_tier="priority",
        cost_nanousd=9_007_199_254_740_993, cost_source="provider", computed_cost_nanousd=-12,
        provider_cost_nanousd=13, cost_input_nanousd=14, cost_cached_input_nanousd=15, cost_cache_read_nanousd=16,
        cost_cache_write_nanousd=17, cost_output_nanousd=18, cost_request_nanousd=19, cost_search_nanousd=20,
        pricing_tier="above_200k", rates_id=RATES[0], rates=RATES[1],
        latency_ms=21, ttft_ms=22, streamed=True, status=499, outcome="client_closed", error="line\nbreak 'q'",
        tags=["user:ana", "team:ü", "user:ana"], client_host="host.example",
    )  # fmt: skip
    return dataclasses.replace(row, **changes)


def row(tag: str) -> UsageRow:
    """A plain row of a successful request, tagged."""
    return UsageRow(
        request_id=uuid.uuid4().hex, created_at=datetime.now(UTC), endpoint="/v1/chat/completions",
        dialect="openai", client="127.0.0.1", requested_model="m", resolved_model="p/m", provider="p",
        route="direct", input_tokens=3, output_tokens=5, reasoning_tokens=0, cached_input_tokens=0,
        cache_read_tokens=0, cache_write_tokens=0, usage_reported=True, cache_write_1h_tokens=0,
        web_search_requests=0, service_tier=None, cost_nanousd=7, cost_source="catalog", computed_cost_nanousd=7,
        provider_cost_nanousd=None, cost_input_nanousd=None, cost_cached_input_nanousd=None,
        cost_cache_read_nanousd=None, cost_cache_write_nanousd=None, cost_output_nanousd=None,
        cost_request_nanousd=None, cost_search_nanousd=None, pricing_tier=None, rates_id=None, rates=None, latency_ms=1,
        ttft_ms=None, streamed=False, status=200, outcome="ok", error=None, tags=[tag],
    )  # fmt: skip


async def stored(database: Database, request_ids: list[str]) -> dict[str, dict[str, Any]]:
    connection = database.connection
    marks = ", ".join(f"${i + 1}" if database.backend == "postgres" else "?" for i in range(len(request_ids)))
    columns = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
    rows = await connection.execute_query_dict(
        f'SELECT {columns} FROM "usage_record" WHERE request_id IN ({marks})', request_ids
    )
    return {r["request_id"]: r for r in rows}


@contextlib.asynccontextmanager
async def running_writer(
    db_url: str, journal_dir: Path, *, resolve: bool = False, **options: Any
) -> AsyncIterator[tuple[Database, UsageWriter]]:
    """A started usage writer on the database under test, inside its Tortoise context;
    ``options`` replace the writer's settings (queue_size, batch_size, flush_seconds)."""
    database = Database(db_url)
    await database.open(migrate_first=False)
    settings: dict[str, Any] = {"queue_size": 100, "batch_size": 50, "flush_seconds": 0.01, **options}
    writer = UsageWriter(database, journal_dir=journal_dir, resolve_hostnames=lambda: resolve, **settings)
    try:
        with database.context:
            writer.start()
            yield database, writer
    finally:
        await writer.stop()
        await database.close()


def test_a_batch_stores_what_tortoise_stores(db_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_writer(db_url, tmp_path) as (database, writer):
            ours = full_row()
            whole_second = full_row(created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), tags=[])
            nulls = full_row(
                resolved_model=None, provider=None, service_tier=None, cost_nanousd=None, rates_id=None, rates=None,
                ttft_ms=None, error=None, client_host=None, usage_reported=False, streamed=False,
            )  # fmt: skip
            for row in (ours, whole_second, nulls, ours):  # the repeat is written once
                writer.submit(row)
            await writer.flush()
            references = {}
            for row in (ours, whole_second, nulls):
                values = {c: getattr(row, c) for c in RECORD_COLUMNS}
                values["request_id"] = uuid.uuid4().hex
                await UsageRecord.create(**values)
                references[row.request_id] = values["request_id"]
            got = await stored(database, [*references, *references.values()])
            for mine, reference in references.items():
                assert {**got[mine], "request_id": "-"} == {**got[reference], "request_id": "-"}
            assert await UsageRecord.filter(request_id=ours.request_id).count() == 1
            tags = await UsageTag.filter(request_id=ours.request_id).order_by("tag").values_list("tag", flat=True)
            assert tags == ["team:ü", "user:ana"]
            assert not await UsageTag.filter(request_id=whole_second.request_id).exists()
            # The admin's date filters compare against the stored text on SQLite.
            at = ours.created_at
            assert await UsageRecord.filter(request_id=ours.request_id, created_at__gte=at).exists()
            assert not await UsageRecord.filter(request_id=ours.request_id, created_at__gt=at).exists()
            record = await UsageRecord.get(request_id=ours.request_id)
            assert record.created_at == at and record.streamed is True
            # The rates are stored once, by id; the row reads back with them.
            assert record.rates is None and record.rates_id == ours.rates_id
            assert (await UsageRates.get(id=ours.rates_id)).rates == orjson.loads(ours.rates)
            assert [row["rates"] async for row in usage_rows(request_ids=[ours.request_id])] == [
                orjson.loads(ours.rates)
            ]

    asyncio.run(scenario())


def test_a_nul_in_a_callers_text_does_not_hold_up_the_writer(db_url: str, tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text and JSON: such a row once failed its batch on every retry
    and held up every row behind it. Now it is written (NUL as U+FFFD on PostgreSQL, kept on
    SQLite), and so is the row after it."""

    async def scenario() -> tuple[dict[str, Any], list[str], bool]:
        async with running_writer(db_url, tmp_path) as (database, writer):
            bad = full_row(requested_model="gpt\x00x", error="no model gpt\x00x", tags=["team:\x00"])
            after = full_row()
            writer.submit(bad)
            writer.submit(after)
            await asyncio.wait_for(writer.flush(), 10)
            got = await stored(database, [bad.request_id])
            tags = await UsageTag.filter(request_id=bad.request_id).values_list("tag", flat=True)
            return got[bad.request_id], list(tags), await UsageRecord.exists(request_id=after.request_id)

    record, tags, after_written = asyncio.run(scenario())
    nul = "\ufffd" if db_url.startswith("postgres") else "\x00"
    assert record["requested_model"] == f"gpt{nul}x" and record["error"] == f"no model gpt{nul}x"
    assert tags == [f"team:{nul}"] and after_written


def test_rows_with_missing_flags_are_written(db_url: str, tmp_path: Path) -> None:
    """The same on the way into the database, on both backends."""

    async def scenario() -> dict[str, Any]:
        async with running_writer(db_url, tmp_path) as (database, writer):
            row = full_row(usage_reported=None, streamed=None)
            writer.submit(row)
            await asyncio.wait_for(writer.flush(), 10)
            return (await stored(database, [row.request_id]))[row.request_id]

    record = asyncio.run(scenario())
    assert not record["usage_reported"] and not record["streamed"]


def test_a_row_missing_a_required_value_is_stored_and_holds_nothing_up(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row that somehow holds None where a value is required (a NOT NULL column) is stored
    with an empty value, its error column saying which values were missing, and an error
    logged: it is neither skipped in silence nor left to fail its batch on every retry."""

    async def scenario() -> tuple[dict[str, Any], bool]:
        async with running_writer(db_url, tmp_path) as (database, writer):
            broken = full_row(endpoint=None, input_tokens=None)  # type: ignore[arg-type]
            after = full_row()
            writer.submit(broken)
            writer.submit(after)
            await asyncio.wait_for(writer.flush(), 10)
            record = (await stored(database, [broken.request_id]))[broken.request_id]
            return record, await UsageRecord.exists(request_id=after.request_id)

    with caplog.at_level("ERROR", logger="llm_relay.usage"):
        record, after_written = asyncio.run(scenario())
    assert after_written and record["endpoint"] == "" and record["input_tokens"] == 0
    assert record["error"] == "line\nbreak 'q'; usage row had no value for endpoint, input_tokens"
    assert "no value for endpoint, input_tokens" in caplog.text


def test_a_row_the_database_refuses_is_set_aside_and_holds_nothing_up(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A value the database will not take (here a list where a number goes: PostgreSQL refuses
    the text, SQLite cannot bind it) once failed its batch on every retry, holding up every row
    behind it. Now the batch is split until the refused row is found, and that row alone goes
    to ``usage-rejected.jsonl`` beside the journal, with the reason."""
    rows = [full_row() for _ in range(9)]
    refused = full_row(input_tokens=[1, 2])  # type: ignore[arg-type]
    rows.insert(4, refused)

    async def scenario() -> tuple[int, int, int, int]:
        async with running_writer(db_url, tmp_path) as (_, writer):
            for r in rows:
                writer.submit(r)
            await asyncio.wait_for(writer.flush(), 10)
            written = await UsageRecord.filter(request_id__in=[r.request_id for r in rows]).count()
            return written, writer.written, writer.rejected, writer.pending

    with caplog.at_level("ERROR", logger="llm_relay.usage"):
        assert asyncio.run(scenario()) == (9, 9, 1, 0)
    [set_aside] = [orjson.loads(line) for line in (tmp_path / "usage-rejected.jsonl").read_bytes().splitlines()]
    assert set_aside["row"]["request_id"] == refused.request_id and set_aside["row"]["input_tokens"] == [1, 2]
    assert set_aside["reason"]
    assert f"usage row {refused.request_id} refused by the database" in caplog.text


def test_a_row_without_its_time_is_stored_with_the_time_it_was_written(db_url: str, tmp_path: Path) -> None:
    """``created_at`` is converted to text before it is bound: a None there must not make
    the conversion raise (its batch would fail on every retry) nor be skipped."""

    async def scenario() -> dict[str, Any]:
        async with running_writer(db_url, tmp_path) as (database, writer):
            row = full_row(created_at=None)  # type: ignore[arg-type]
            writer.submit(row)
            await asyncio.wait_for(writer.flush(), 10)
            return (await stored(database, [row.request_id]))[row.request_id]

    began = datetime.now(UTC)
    record = asyncio.run(scenario())
    at = record["created_at"]
    at = datetime.fromisoformat(at) if isinstance(at, str) else at  # SQLite holds text
    assert began - timedelta(seconds=1) <= at <= datetime.now(UTC)


def test_client_names_found_after_journalling_are_stored(db_url: str, tmp_path: Path) -> None:
    """With reverse DNS on, the writer names the client after the row's journal line was made:
    the stored row has the name, not the line's empty one."""
    name, _ = socket.getnameinfo(("127.0.0.1", 0), 0)
    expected = name if name != "127.0.0.1" else None

    async def scenario() -> dict[str, Any]:
        async with running_writer(db_url, tmp_path, resolve=True) as (database, writer):
            row = full_row(client="127.0.0.1", client_host=None)
            writer.submit(row)
            await asyncio.wait_for(writer.flush(), 10)
            return (await stored(database, [row.request_id]))[row.request_id]

    assert asyncio.run(scenario())["client_host"] == expected


def test_a_transaction_that_reads_then_writes_is_not_interleaved(db_url: str, tmp_path: Path) -> None:
    """On SQLite the writer has a connection of its own. A transaction of Tortoise's (an admin
    change, the retention job) that read before the writer committed could not write after it
    (its snapshot is stale: "database is locked" at once), so the writer waits for Tortoise's
    own lock; it writes when that transaction is done."""

    async def scenario() -> bool:
        async with running_writer(db_url, tmp_path) as (_, writer):
            row = full_row()
            async with in_transaction() as connection:
                await connection.execute_query('SELECT COUNT(*) FROM "usage_record"')
                writer.submit(row)
                await asyncio.sleep(0.3)  # the writer flushes every 10 ms, were it free to
                await connection.execute_query(
                    "INSERT INTO relay_setting (key, value, updated_at) VALUES ('probe', '1', '2026-01-01')"
                )
            await asyncio.wait_for(writer.flush(), 10)
            return bool(await UsageRecord.exists(request_id=row.request_id))

    assert asyncio.run(scenario())
