"""The database: its Tortoise configuration, migrations, and one owned context per relay.

Tortoise keeps models and connections in a context; the relay owns one ``TortoiseContext``
and enters it in the tasks that use the database, so two relays (or a test and a relay)
never share state by accident.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

APP_LABEL = "relay"
log = logging.getLogger("llm_relay.db")


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": db_url},
        "apps": {
            APP_LABEL: {
                "models": ["app.stores.models"],
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite://") and ":memory:" not in db_url:
        Path(db_url.removeprefix("sqlite://")).expanduser().parent.mkdir(parents=True, exist_ok=True)


async def apply_migrations(db_url: str) -> None:
    """Bring the schema up to the newest migration (idempotent)."""
    ensure_sqlite_dir(db_url)
    ctx = TortoiseContext()
    with ctx:
        try:
            await migrate(config=tortoise_config(db_url))
        finally:
            await ctx.close_connections()


class Database:
    def __init__(self, db_url: str) -> None:
        self.url = db_url
        self.context = TortoiseContext()

    async def open(self, *, migrate_first: bool = True) -> None:
        if migrate_first:
            await apply_migrations(self.url)
        ensure_sqlite_dir(self.url)
        with self.context:
            await self.context.init(config=tortoise_config(self.url))

    async def close(self) -> None:
        await self.context.close_connections()

    async def reset(self) -> None:
        """Drop the connection pool after a failure: a database that restarted leaves dead
        connections in it. The client (and its configuration) stays; the next query opens a
        new pool. Closing the whole context instead would forget the configuration."""
        try:
            with self.context:
                await asyncio.wait_for(self.connection.close(), 10)
        except Exception as exc:  # the next query will tell whether the database is back
            log.debug("closing database connections failed: %r", exc)

    @property
    def connection(self) -> BaseDBAsyncClient:
        return self.context.connections.get("default")

    @property
    def backend(self) -> str:
        return "postgres" if self.url.startswith(("postgres", "asyncpg")) else "sqlite"
