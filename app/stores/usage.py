"""Usage rows leave the request path here: journalled, buffered, written in batches.

``submit`` appends the row's line to the journal (:mod:`app.stores.journal`), which is also
the queue: it never blocks and never awaits, so it is safe in a ``finally`` of a cancelled
request. One task writes the journal's waiting lines in batches, one transaction each,
idempotent on ``request_id``. When the database is down, locked or slow the batch is retried
with backoff, and the rows wait in the journal meanwhile; a row the journal has no room for (a
full disk) waits in a bounded buffer in memory. After a crash the next start adopts the
journal's rows. Nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tortoise.transactions import in_transaction

from app.stores.db import Database, sqlite_file
from app.stores.journal import Journal
from app.stores.pending import PendingLines
from app.stores.sqlite_values import CARD_INSERT, sqlite_cards, sqlite_inserts, sqlite_missing, sqlite_tags
from app.stores.usage_row import (
    JOURNAL_COLUMNS,
    POSTGRES_BATCH,
    UsageRow,
    decode,
    decode_lines,
    encode_values,
    journal_line,
    journal_values,
    postgres_batch,
    row_of_values,
)
from app.stores.usage_sqlite import CHUNK_ROWS, SqliteBusy, SqliteRows

log = logging.getLogger("llm_relay.usage")
WRITE_TIMEOUT = 30.0  # seconds a batch may take before the writer gives up on the connection
JOURNAL_ROTATE_BYTES = 512 << 10  # the other file once this much is in one and mostly committed (journal.py)
BUSY_RETRY_SECONDS = 0.02  # another connection was writing to SQLite: try again this soon
BUSY_WARN_SECONDS = 5.0  # locked out for this long: say so once
_CLIENT = JOURNAL_COLUMNS.index("client")
_CLIENT_HOST = JOURNAL_COLUMNS.index("client_host")


class UsageListener(Protocol):
    """Told of every row as it is submitted and again once it is committed (a stage that keeps
    running totals, such as spend_limit, counts rows the database does not hold yet)."""

    def submitted(self, row: UsageRow) -> None: ...

    def committed(self, rows: list[UsageRow]) -> None: ...


class UsageWriter:
    def __init__(
        self,
        db: Database,
        *,
        queue_size: int,
        batch_size: int,
        flush_seconds: float,
        journal_dir: str | Path,
        resolve_hostnames: Callable[[], bool] = lambda: False,
        journal_rotate_bytes: int = JOURNAL_ROTATE_BYTES,
    ) -> None:
        self.db = db
        self.journal_rotate_bytes = journal_rotate_bytes
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.journal_dir = journal_dir
        self.journal: Journal | None = None
        self.resolve_hostnames = resolve_hostnames
        self._hosts: dict[str, str | None] = {}
        self._memory = PendingLines()  # lines the journal had no room for (see app/stores/pending.py)
        # Rows waiting when the writer last took a batch, and submitted since: a batch is
        # full once this reaches batch_size (counted: working out what waits costs ~0.45 us).
        self._fresh = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.failures = 0
        self.lost = 0  # rows neither the buffer nor the journal could take
        self.listeners: list[UsageListener] = []
        self._sqlite: SqliteRows | None = None  # SQLite's inserts, unless the database is in memory
        self._busy_since: float | None = None  # when SQLite's write lock was first found taken

    @property
    def pending(self) -> int:
        """Rows taken and not yet written (buffered, or only in the journal)."""
        return (0 if self.journal is None else self.journal.waiting) + len(self._memory)

    def submit(self, row: UsageRow) -> None:
        """Journal the row, where it waits for the writer; never blocks, never awaits. The
        journal holds the row once this returns, before any reply leaves (see
        :mod:`app.stores.journal`)."""
        line = journal_line(row)
        journal = self.journal
        if journal is None or not journal.add_line(line):
            if len(self._memory) < self.queue_size:
                self._memory.add(line)
            else:
                self.lost += 1
                log.error("usage row %s lost: the disk has no room and the buffer is full", row.request_id)
        for listener in self.listeners:
            listener.submitted(row)
        self._idle.clear()
        self._fresh += 1
        if self._fresh >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        self.journal = Journal(self.journal_dir, JOURNAL_COLUMNS, journal_values)
        path = sqlite_file(self.db.url)
        if path is not None:
            self._sqlite = SqliteRows(path)
        if self.journal.adopt_orphans(lambda record: journal_line(decode(record))):
            self._idle.clear()
        with self.db.context:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def flush(self) -> None:
        """Wait until every row submitted so far is written."""
        self._wake.set()
        await self._idle.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        """Write what is left; what the database won't take within ``timeout`` stays in the
        journal for the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.error("usage writer: %d rows left in the journal %s", self.pending, self.journal_path)
        if self._sqlite is not None:
            await self._sqlite.close()
        if self.journal is not None:
            self.journal.close()

    @property
    def journal_path(self) -> Path | None:
        return None if self.journal is None else self.journal.path

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            journal = self.journal
            if not self.pending:
                if journal is not None:
                    journal.truncate()  # everything it holds is committed
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                self._fresh = 0
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
                except TimeoutError:
                    pass
                continue
            if self.pending < self.batch_size and not self._stopping and not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
                except TimeoutError:
                    pass
            source: Journal | PendingLines = journal if journal is not None and journal.waiting else self._memory
            lines, count = source.peek(self.batch_size)
            try:
                await asyncio.wait_for(self._write(lines, source.cuts(count, CHUNK_ROWS)), WRITE_TIMEOUT)
            except SqliteBusy:
                await self._busy()
                continue
            except Exception as exc:
                self.failures += 1
                log.error("writing %d usage rows failed (%s); retrying in %.1fs", count, repr(exc), backoff)
                await self._reset()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            source.drop(count)
            backoff = 0.1
            self._busy_since = None
            self.written += count
            self._wake.clear()
            self._fresh = self.pending
            if journal is not None and journal.worth_rotating(self.journal_rotate_bytes, len(self._memory)):
                self._memory.drop(journal.rotate(self._memory.lines()))

    async def _busy(self) -> None:
        """Another connection holds SQLite's write lock: wait a moment (said once when long)."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        elif now - self._busy_since >= BUSY_WARN_SECONDS:
            log.warning(
                "usage rows wait: the database is locked by another connection (%.0f s so far); %d rows pending",
                now - self._busy_since,
                self.pending,
            )
            self._busy_since = now  # and again after as long, if it lasts
        await asyncio.sleep(BUSY_RETRY_SECONDS)

    async def _reset(self) -> None:
        await self.db.reset()
        if self._sqlite is not None:
            self._sqlite.reset()

    async def _hostnames(self, batch: list[list[Any]]) -> None:
        """Reverse DNS for client addresses, here in the writer and never on the request path;
        cached, and bounded in time so a slow resolver only delays the batch."""
        loop = asyncio.get_running_loop()
        for address in {row[_CLIENT] for row in batch if row[_CLIENT] and row[_CLIENT] not in self._hosts}:
            try:
                host, _ = await asyncio.wait_for(loop.getnameinfo((address, 0)), timeout=1.0)
            except (OSError, TimeoutError):
                host = None
            if len(self._hosts) > 10_000:
                self._hosts.clear()
            self._hosts[address] = host if host and host != address else None
        for row in batch:
            row[_CLIENT_HOST] = self._hosts.get(row[_CLIENT])

    async def _write(self, lines: bytes, cuts: list[int] | None = None) -> None:
        """Write the rows of these journal lines, in one transaction or one statement (``cuts``:
        where each ``CHUNK_ROWS`` of them end)."""
        rows: list[list[Any]] | None = None
        if self.resolve_hostnames():
            rows = decode_lines(lines)
            await self._hostnames(rows)
            lines, cuts = encode_values(rows), None  # journalled before the names were known
        if self.db.backend == "postgres":  # one statement: atomic without a transaction around it
            await self.db.connection.execute_query(POSTGRES_BATCH, [postgres_batch(lines)])
        else:
            await self._write_sqlite(lines, cuts)
        if self.listeners:
            committed = [row_of_values(values) for values in (rows or decode_lines(lines))]
            for listener in self.listeners:
                listener.committed(committed)

    async def _write_sqlite(self, lines: bytes, cuts: list[int] | None) -> None:
        if self._sqlite is not None:
            # Under Tortoise's own lock: one of its transactions (an admin change, the retention
            # job) that had read before this commit could not write after it (a stale snapshot
            # fails at once with "database is locked"), so none runs in between.
            async with self.db.connection.acquire_connection():
                await self._sqlite.write(lines, cuts)  # on this thread (see app/stores/usage_sqlite.py)
            await asyncio.sleep(0)  # a backlog's batches leave the loop a turn between them
        else:
            rows = decode_lines(lines)
            cards = [(CARD_INSERT, list(sqlite_cards(rows).items()))]
            async with in_transaction() as connection:
                for statement, values in cards + sqlite_inserts(rows) + sqlite_missing(rows) + sqlite_tags(rows):
                    if values:
                        await connection.execute_many(statement, values)
