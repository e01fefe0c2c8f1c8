"""SQLite usage inserts on the event loop's own thread, through a connection of the writer's own.

Through Tortoise they ran in aiosqlite's thread. The sqlite3 module lets go of the GIL around
every row it inserts, and that thread then waited for an event loop that seldom lets go of it
under load: at 128 concurrent requests the thread wrote ~4,000 rows a second while the relay
served ~4,500, and the backlog grew (with the memory holding it) until the buffer spilled. On
the loop's thread a batch of 500 rows takes ~5 ms, in chunks between turns of the loop, always
keeps up, and costs less CPU per request (bench A/B). The connection differs from Tortoise's in
what would otherwise stall the loop:

- ``synchronous=NORMAL``: a commit appends to the write-ahead log without an fsync. Rows keep
  the guarantee the journal gives them: they survive a killed process, not a power cut.
- ``busy_timeout=0``: while another process writes (another worker, the CLI),
  ``BEGIN IMMEDIATE`` fails at once with :class:`SqliteBusy` and the writer tries again a
  little later, instead of SQLite sleeping on the loop's thread. Within the process the writer
  holds Tortoise's connection lock (:meth:`app.stores.usage.UsageWriter._write`), so its own
  admin changes and retention runs never meet it half-way.
- ``wal_autocheckpoint=0``: copying the log into the database (tens of milliseconds) runs in a
  thread of its own, every ``CHECKPOINT_ROWS`` rows (:meth:`SqliteRows.checkpoint`).
- ``temp_store=MEMORY``: a multi-row insert keeps a statement journal (the pages it changed,
  to undo it alone should it fail half-way); past 64 KB SQLite spilled it to a temporary file,
  and 20,000 rows in batches of 500 made ~64,600 ``pwrite`` calls instead of ~17,000 (strace).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.stores.db import JOURNAL_SIZE_LIMIT
from app.stores.sqlite_values import BLOCK_ROWS, CARD_INSERT, sqlite_cards, sqlite_inserts, sqlite_missing, sqlite_tags
from app.stores.usage_row import chunks, decode_lines

log = logging.getLogger("llm_relay.usage.sql")  # each statement at DEBUG, as Tortoise logs its own
CHUNK_ROWS = 6 * BLOCK_ROWS  # rows inserted between two turns of the event loop (~1 ms); whole blocks
CHECKPOINT_ROWS = 10_000  # ~4,000 log pages (~16 MB) between two copies into the database
KNOWN_CARDS = 10_000  # rate cards remembered as stored (a few per model; beyond this, forgotten and stored again)


class SqliteBusy(Exception):
    """Another connection holds the database's write lock; nothing was written."""


class SqliteRows:
    def __init__(self, path: str, *, checkpoint_rows: int = CHECKPOINT_ROWS) -> None:
        self.path = path
        self.checkpoint_rows = checkpoint_rows
        self._connection: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._cards: set[int] = set()  # rate cards known to be in usage_rates

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            for pragma in (
                "synchronous=NORMAL",
                "wal_autocheckpoint=0",
                f"journal_size_limit={JOURNAL_SIZE_LIMIT}",
                "temp_store=MEMORY",
            ):
                connection.execute(f"PRAGMA {pragma}")
            self._connection = connection
        return self._connection

    async def write(self, lines: bytes, cuts: Sequence[int] | None = None) -> None:
        """Insert the rows of these journal lines in one transaction, or raise with nothing written. Between chunks of
        ``CHUNK_ROWS`` rows the loop takes a turn: a whole batch at once held every request
        that arrived meanwhile for its ~5 ms, at one concurrent request ~2.5 ms of added p99.
        ``cuts``: where each chunk ends, when the journal knows (:meth:`Journal.cuts`)."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise SqliteBusy(str(exc)) from exc
            raise
        written = 0
        cards: dict[int, str] = {}
        try:
            for number, chunk in enumerate(chunks(lines, CHUNK_ROWS, cuts)):
                if number:
                    await asyncio.sleep(0)
                rows = decode_lines(chunk)  # a chunk at a time: fewer objects alive at once
                written += len(rows)
                if new := sqlite_cards(rows, self._cards):  # a new card again in a later chunk: ignored
                    _execute(connection, [(CARD_INSERT, list(new.items()))])
                    cards |= new
                before = connection.total_changes
                _execute(connection, sqlite_inserts(rows))
                if connection.total_changes - before < len(rows):  # replayed, or missing a value
                    _execute(connection, sqlite_missing(rows))
                _execute(connection, sqlite_tags(rows))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if len(self._cards) + len(cards) > KNOWN_CARDS:
            self._cards.clear()
        self._cards.update(cards)
        self._since_checkpoint += written
        if self._since_checkpoint >= self.checkpoint_rows and self._checkpoint is None:
            self._since_checkpoint = 0
            self._checkpoint = asyncio.create_task(self.checkpoint(), name="usage-checkpoint")

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database, in a thread. PASSIVE never waits for
        anyone, nor makes anyone wait (RESTART would hold the write lock while a long admin
        read finishes): what it copies completely, the next commit starts over from the log's
        beginning; what a reader or a commit kept it from copying, the next one copies."""
        try:
            await asyncio.to_thread(_checkpoint, self.path)
        except sqlite3.Error as exc:  # the next one will try again
            log.warning("usage database checkpoint failed: %r", exc)
        finally:
            self._checkpoint = None

    def reset(self) -> None:
        """Drop the connection after a failure; the next write opens a new one."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        self.reset()


def _execute(connection: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> None:
    for statement, values in statements:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", statement)
        connection.executemany(statement, values)


def _checkpoint(path: str) -> None:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        connection.close()
