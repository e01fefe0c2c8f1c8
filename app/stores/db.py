"""The database: its Tortoise configuration, migrations, and one owned context per relay.

Tortoise keeps models and connections in a context; the relay owns one ``TortoiseContext``
and enters it in the tasks that use the database, so two relays (or a test and a relay)
never share state by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import inspect
import logging
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext, _current_context
from tortoise.migrations.api import migrate

from app.stores.database_url import DatabaseUnusable, url_problem

APP_LABEL = "relay"
CONNECT_TIMEOUT = 10.0  # seconds a database that does not answer gets before it counts as away
MIGRATION_LOCK = int.from_bytes(b"llmrelay")  # PostgreSQL's advisory lock key while migrating
log = logging.getLogger("llm_relay.db")


# SQLite's write-ahead log: commits append to it without waiting for the disk (rows survive a
# killed process, as the usage journal does, not a power cut), it is copied into the database
# every 10,000 pages instead of every 1,000, and the file is kept for reuse instead of cut back.
# A multi-row insert keeps a statement journal (to undo itself alone, should it fail half-way):
# in memory, not in a temporary file. A setting the URL names itself is left as given.
JOURNAL_SIZE_LIMIT = 64 << 20  # bytes of write-ahead log kept after a checkpoint
SQLITE_PRAGMAS = {
    "synchronous": "NORMAL",
    "wal_autocheckpoint": "10000",
    "journal_size_limit": str(JOURNAL_SIZE_LIMIT),
    "temp_store": "MEMORY",
}


def with_sqlite_pragmas(db_url: str) -> str:
    """``db_url`` with :data:`SQLITE_PRAGMAS` added as query parameters (Tortoise applies the
    query of a ``sqlite://`` URL as pragmas), unless it names them itself."""
    if sqlite_file(db_url) is None:
        return db_url
    base, _, query = db_url.partition("?")
    given = dict(parse_qsl(query, keep_blank_values=True))
    return base + "?" + urlencode({**SQLITE_PRAGMAS, **given})


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": with_sqlite_pragmas(db_url)},
        "apps": {
            APP_LABEL: {
                "models": ["app.stores.models", "app.stores.usage_models"],
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_file(db_url: str) -> str | None:
    """The database file of a ``sqlite://`` URL, as Tortoise opens it; None for an in-memory
    database or another backend."""
    if not db_url.startswith("sqlite://"):
        return None
    path = db_url.removeprefix("sqlite://").partition("?")[0]
    return None if path in ("", ":memory:") else path


def unusable_storage(db_url: str, journal_dir: Path) -> str | None:
    """Why the usage journal's directory or the SQLite file cannot be written (None: they can).
    Tried for real, not with ``os.access``, which says yes to root and knows no read-only mount."""
    try:
        journal_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=journal_dir).close()
    except OSError as exc:
        return f"the usage journal's directory {journal_dir} cannot be written ({exc.strerror}: {exc.filename})"
    path = sqlite_file(db_url)
    if path is None:
        return None
    database = Path(path).expanduser()
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=database.parent).close()  # SQLite writes its -wal and -shm files beside it
        if database.exists():
            database.open("r+b").close()
    except OSError as exc:
        return f"the SQLite database {database} cannot be written ({exc.strerror}: {exc.filename})"
    return not_a_database(database)


def not_a_database(database: Path) -> str | None:
    """Why an existing SQLite file is no database (None: it is, or it is not there yet): such a
    file will not mend itself, and opening it through Tortoise hangs a migration."""
    if not database.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"the SQLite database {database} cannot be read: {exc}"
    return None


def ensure_sqlite_dir(db_url: str) -> None:
    path = sqlite_file(db_url)
    if path is not None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


async def apply_migrations(db_url: str) -> None:
    """Bring the schema up to the newest migration (idempotent), one process at a time."""
    ensure_sqlite_dir(db_url)
    async with migration_lock(db_url):
        ctx = TortoiseContext()
        with ctx:
            try:
                await migrate(config=tortoise_config(db_url))
            finally:
                await ctx.close_connections()


@contextlib.asynccontextmanager
async def migration_lock(db_url: str) -> AsyncIterator[None]:
    """Held while migrating: instances starting together on a new database would each create
    the same tables, and all but one fail ("relation already exists"). PostgreSQL: an advisory
    lock on a connection of its own; SQLite: ``flock`` on a file beside the database (not the
    database itself: closing it would drop SQLite's own locks of this process)."""
    path = sqlite_file(db_url)
    if path is not None:
        database = Path(path).expanduser()
        fd = os.open(database.with_name(database.name + "-migrating.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # which releases the lock
        return
    config = expand_db_url(db_url)
    if config["engine"] != "tortoise.backends.asyncpg":
        yield  # an in-memory SQLite database: no other process can see it
        return
    credentials = config["credentials"]
    named = ("host", "port", "user", "password", "database", "ssl")  # not Tortoise's pool settings
    given = {key: credentials[key] for key in named if key in credentials}
    connection = await asyncpg.connect(**given, timeout=CONNECT_TIMEOUT)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        yield
    finally:
        await connection.close()  # the session's lock goes with it


class EnteredContext:
    """The relay's TortoiseContext, safe to enter from many tasks at once.

    ``with TortoiseContext():`` keeps its reset token on the shared object, so two tasks
    entering it concurrently (the usage writer, the live-config reload, an admin request)
    swap each other's tokens ("created in a different Context"). Each ``with`` here keeps its
    own token; any other attribute is the context's own.
    """

    def __init__(self, context: TortoiseContext) -> None:
        self._context = context
        self._token: contextvars.Token[TortoiseContext | None] | None = None

    def __enter__(self) -> TortoiseContext:
        # NOTE: Tortoise's own __enter__ does exactly this, minus the shared token.
        self._token = _current_context.set(self._context)
        return self._context

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current_context.reset(self._token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class Database:
    def __init__(self, db_url: str) -> None:
        self.url = db_url
        self._context = TortoiseContext()
        self._configured = False
        self.attached = asyncio.Event()  # set once the database answered (see open)

    @property
    def context(self) -> EnteredContext:
        """A fresh handle per use: ``with db.context:`` in as many tasks as you like."""
        return EnteredContext(self._context)

    async def open(self, *, migrate_first: bool = True) -> None:
        """Connect, then migrate (unless told not to); raises while the database does not answer,
        and may be called again until it does. Only connecting is bounded in time: a migration
        cut off half-way would only start again."""
        with self.context:
            if not self._configured:  # configured twice, the first pool would leak
                ensure_sqlite_dir(self.url)
                await self._context.init(config=tortoise_config(self.url))
                self._configured = True
            await asyncio.wait_for(self.connection.execute_query("SELECT 1"), CONNECT_TIMEOUT)
        if migrate_first:
            await apply_migrations(self.url)
        self.attached.set()

    async def close(self) -> None:
        await self._context.close_connections()
        self._configured = False  # closing forgets the configuration: a later open sets it again

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
        return self._context.connections.get("default")

    @property
    def backend(self) -> str:
        return "postgres" if self.url.startswith(("postgres", "asyncpg")) else "sqlite"


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    """The database migrated, open and entered for a command's duration (the CLI's)."""
    database = Database(url)
    await _open_or_say_why(url, database.open(migrate_first=True))
    try:
        with database.context:
            yield database
    finally:
        await database.close()


async def migrated(url: str) -> None:
    """``llm-relay migrate``: the migrations applied, or DatabaseUnusable saying why not."""
    await _open_or_say_why(url, apply_migrations(url))


async def _open_or_say_why(url: str, opening: Awaitable[None]) -> None:
    sqlite = sqlite_file(url)
    problem = url_problem(url) or (not_a_database(Path(sqlite).expanduser()) if sqlite else None)
    if problem is not None:
        if inspect.iscoroutine(opening):
            opening.close()
        raise DatabaseUnusable(problem)
    try:
        await opening
    except Exception as exc:  # the command can do nothing without it: one line, not a traceback
        where = url.rpartition("@")[2]
        raise DatabaseUnusable(f"cannot open the database {where}: {type(exc).__name__}: {exc}") from None
