"""Migrations from zero on the backend under test, and the schema they leave behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg

from app.stores.db import apply_migrations
from tests.conftest import BACKEND, PG_SERVER, _create_pg_database, _drop_pg_database

RECORD_COLUMNS = {
    "id", "request_id", "created_at", "endpoint", "dialect", "client", "requested_model", "resolved_model",
    "provider", "route", "input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens",
    "cache_read_tokens", "cache_write_tokens", "usage_reported", "cost_nanousd", "latency_ms", "ttft_ms",
    "streamed", "status", "outcome", "error", "cache_write_1h_tokens", "web_search_requests", "service_tier",
    "cost_source", "computed_cost_nanousd", "provider_cost_nanousd", "cost_input_nanousd",
    "cost_cached_input_nanousd", "cost_cache_read_nanousd", "cost_cache_write_nanousd", "cost_output_nanousd",
    "cost_request_nanousd", "cost_search_nanousd", "pricing_tier", "rates", "rates_id", "client_host",
    "attempts",
}  # fmt: skip
# A usage row as the first release wrote it (only the columns it had).
OLD_ROW = (
    "INSERT INTO usage_record (request_id, created_at, endpoint, dialect, client, requested_model, "
    "route, input_tokens, output_tokens, reasoning_tokens, cached_input_tokens, cache_read_tokens, "
    "cache_write_tokens, usage_reported, cost_nanousd, streamed, status, outcome) VALUES ('old-1', "
    "'2026-01-01 00:00:00+00:00', '/v1/chat/completions', 'openai', '', 'm', 'direct', 1, 2, 0, 0, "
    "0, 0, TRUE, 5, FALSE, 200, 'ok')"
)
# Every index of the usage tables, by its columns in order (primary keys aside): what the admin's
# queries use, and nothing a composite index already leads with (each one costs every insert).
USAGE_INDEXES = {
    ("usage_record", ("request_id",)), ("usage_record", ("created_at",)),
    ("usage_record", ("provider", "created_at")), ("usage_record", ("resolved_model", "created_at")),
    ("usage_record", ("outcome", "created_at")),
    ("usage_tag", ("request_id", "tag")), ("usage_tag", ("tag", "request_id")),
}  # fmt: skip


async def sqlite_schema(path: str) -> tuple[dict[str, set[str]], set[tuple[str, tuple[str, ...]]]]:
    import aiosqlite

    columns: dict[str, set[str]] = {}
    indexes: set[tuple[str, tuple[str, ...]]] = set()
    async with aiosqlite.connect(path) as db:
        for table in ("usage_record", "usage_tag", "model_alias", "price_override", "pricing_sync"):
            columns[table] = {row[1] async for row in await db.execute(f"PRAGMA table_info({table})")}
            for index in await (await db.execute(f"PRAGMA index_list({table})")).fetchall():
                info = await (await db.execute(f"PRAGMA index_info('{index[1]}')")).fetchall()
                indexes.add((table, tuple(row[2] for row in sorted(info))))
    return columns, indexes


async def postgres_schema(url: str) -> tuple[dict[str, set[str]], set[tuple[str, tuple[str, ...]]]]:
    conn = await asyncpg.connect(url)
    try:
        columns: dict[str, set[str]] = {}
        for row in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ):
            columns.setdefault(row["table_name"], set()).add(row["column_name"])
        indexes = set()
        for row in await conn.fetch(
            "SELECT t.relname AS table_name, ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY "
            "AS k(attnum, position) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "ORDER BY k.position) AS index_columns FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public' AND NOT i.indisprimary"
        ):
            indexes.add((row["table_name"], tuple(row["index_columns"])))
        types = {
            r["column_name"]: r["data_type"]
            for r in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'usage_record'"
            )
        }
        assert types["cost_nanousd"] == "bigint" and types["created_at"] == "timestamp with time zone"
        return columns, indexes
    finally:
        await conn.close()


def test_migrate_from_zero_twice(tmp_path) -> None:
    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    else:
        path = str(tmp_path / f"fresh-{uuid.uuid4().hex}.db")
        url = f"sqlite://{path}"
    try:
        asyncio.run(apply_migrations(url))
        asyncio.run(apply_migrations(url))  # idempotent: nothing left to apply
        if BACKEND == "postgres":
            columns, indexes = asyncio.run(postgres_schema(url))
        else:
            columns, indexes = asyncio.run(sqlite_schema(path))
    finally:
        if BACKEND == "postgres":
            _drop_pg_database(name)
    assert columns["usage_record"] == RECORD_COLUMNS
    assert columns["usage_tag"] == {"id", "request_id", "tag"}
    assert columns["model_alias"] == {"name", "target", "created_at"}
    assert {"provider", "model", "input_per_mtok", "tier_threshold"} <= columns["price_override"]
    assert {"started_at", "status", "changes", "snapshot"} <= columns["pricing_sync"]
    usage = {(table, cols) for table, cols in indexes if table in ("usage_record", "usage_tag")}
    assert usage == USAGE_INDEXES


def test_instances_starting_together_on_a_new_database_each_migrate(tmp_path) -> None:
    """Three processes migrating one new database at once: one creates the tables, the others
    wait for it (before the lock, all but one failed with "relation already exists")."""
    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    else:
        path = str(tmp_path / "together.db")
        url = f"sqlite://{path}"
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "app", "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
        columns, _ = asyncio.run(postgres_schema(url) if BACKEND == "postgres" else sqlite_schema(path))
    finally:
        if BACKEND == "postgres":
            _drop_pg_database(name)
    assert columns["usage_record"] == RECORD_COLUMNS


def test_default_sqlite_file_is_created_under_data_dir(tmp_path) -> None:
    from app.settings import Settings

    settings = Settings(data_dir=str(tmp_path / "nested" / "data"))
    asyncio.run(apply_migrations(settings.resolved_database_url))
    assert (tmp_path / "nested" / "data" / "llm-relay.db").exists()


def test_upgrade_keeps_existing_rows(tmp_path) -> None:
    """Columns added by later migrations get their defaults on rows written before them."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate

    from app.stores.db import tortoise_config

    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    else:
        url = f"sqlite://{tmp_path / 'upgrade.db'}"

    async def run() -> tuple:
        ctx = TortoiseContext()
        with ctx:
            await migrate(config=tortoise_config(url), target="relay.0002_quirk_override")
            await ctx.connections.get("default").execute_script(OLD_ROW)
            await ctx.close_connections()
        await apply_migrations(url)
        ctx = TortoiseContext()
        with ctx:
            await ctx.init(config=tortoise_config(url))
            from app.stores.usage_models import UsageRecord

            row = await UsageRecord.get(request_id="old-1")
            await ctx.close_connections()
        return row.cost_nanousd, row.cost_source, row.web_search_requests, row.cache_write_1h_tokens

    try:
        assert asyncio.run(run()) == (5, "unpriced", 0, 0)
    finally:
        if BACKEND == "postgres":
            _drop_pg_database(name)


def test_dropping_the_redundant_indexes_does_not_rebuild_the_usage_tables(tmp_path) -> None:
    """0008 drops four single-column indexes by name and 0009 adds a nullable column: a usage
    history of millions of rows must not be copied into a new table to do either (Tortoise's
    own AlterField does that on SQLite)."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate

    from app.stores.db import tortoise_config

    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
        # A rewrite (or a copy into a new table) gives the table a new storage file.
        storage = "SELECT relname, relfilenode FROM pg_class WHERE relname IN ('usage_record', 'usage_tag')"
    else:
        url = f"sqlite://{tmp_path / 'upgrade.db'}"
        storage = "SELECT name, rootpage FROM sqlite_master WHERE name IN ('usage_record', 'usage_tag')"

    async def tables(ctx: TortoiseContext) -> dict[str, int]:
        _, rows = await ctx.connections.get("default").execute_query(storage)
        return {row[0]: row[1] for row in (tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)}

    async def run() -> tuple[dict[str, int], dict[str, int], int]:
        ctx = TortoiseContext()
        with ctx:
            await migrate(config=tortoise_config(url), target="relay.0007_usage_daily")
            await ctx.connections.get("default").execute_script(
                OLD_ROW + ";INSERT INTO usage_tag (request_id, tag) VALUES ('old-1', 'team:a')"
            )
            before = await tables(ctx)
            await ctx.close_connections()
        await apply_migrations(url)
        ctx = TortoiseContext()
        with ctx:
            await ctx.init(config=tortoise_config(url))
            after = await tables(ctx)
            from app.stores.usage_models import UsageRecord, UsageTag

            kept = await UsageRecord.filter(request_id="old-1", outcome="ok").count()
            kept += await UsageTag.filter(tag="team:a", request_id="old-1").count()
            await ctx.close_connections()
        return before, after, kept

    try:
        before, after, kept = asyncio.run(run())
    finally:
        if BACKEND == "postgres":
            _drop_pg_database(name)
    assert set(before) == {"usage_record", "usage_tag"} and after == before
    assert kept == 2


def test_model_docstrings_are_safe_sql_comments() -> None:
    """Tortoise writes model docstrings into the schema as comments, unescaped: a quote or a
    semicolon there breaks the migration on one database or the other."""
    from tortoise.models import Model

    import app.stores.models as models
    import app.stores.usage_models as usage_models

    found = [v for m in (models, usage_models) for v in vars(m).values()]
    checked = [v for v in found if isinstance(v, type) and issubclass(v, Model) and v is not Model]
    assert len(checked) >= 14  # both modules' models
    for value in checked:
        doc = value.__doc__ or ""
        assert ";" not in doc and "'" not in doc, value.__name__
