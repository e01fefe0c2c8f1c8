"""Usage rows leave the request path here: journalled, then written in batches.

``submit`` appends the row's line to the journal (:mod:`app.stores.journal`) and returns: it
never blocks and never awaits, so it is safe in a ``finally`` of a cancelled request. One task
reads the waiting rows back in batches and writes each batch in one transaction (or one
statement), idempotent on ``request_id``. While the database is away or locked the batch is
retried with backoff and its rows wait on disk. A row the database refuses is set aside with the
reason in ``usage-rejected.jsonl`` beside the journal, and holds up nothing behind it. A row the
disk has no room for waits in memory (at most ``queue_size`` of them; beyond that a row is lost,
counted and logged) and is written first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import orjson
from tortoise.exceptions import IntegrityError

from app.stores.db import Database
from app.stores.journal import ROTATE_BYTES, Batch, Journal
from app.stores.usage_row import UsageRow, journal_line, stored_row, usage_row
from app.stores.usage_sql import write_postgres, write_sqlite

log = logging.getLogger("llm_relay.usage")
WRITE_TIMEOUT = 30.0  # seconds a batch may take before the writer gives up on the connection
FIRST_BACKOFF, LAST_BACKOFF = 0.1, 10.0  # seconds between retries while the database is away
REJECTED = "usage-rejected.jsonl"
# Errors that say the database refuses the rows themselves (bad values, a constraint), not that
# it is away: such a batch is halved until the refused rows are found, and only they are set aside.
REFUSALS = (asyncpg.DataError, IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
NOT_VALUES = (LookupError, TypeError, ValueError)  # a row whose values cannot be converted for the database


class UsageListener(Protocol):
    """Told of every row as it is submitted and again once it is committed (a stage that keeps
    running totals, such as spend_limit, counts rows the database does not hold yet)."""

    def submitted(self, row: UsageRow) -> None: ...

    def committed(self, rows: list[UsageRow]) -> None: ...


def refused(exc: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, says the rows are wrong."""
    while exc is not None:
        if isinstance(exc, REFUSALS + NOT_VALUES):
            return True
        exc = exc.__cause__
    return False


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
        journal_rotate_bytes: int = ROTATE_BYTES,
    ) -> None:
        self.db = db
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.journal_dir = Path(journal_dir)
        self.journal_rotate_bytes = journal_rotate_bytes
        self.journal: Journal | None = None
        self.resolve_hostnames = resolve_hostnames
        self.listeners: list[UsageListener] = []
        self._memory: deque[bytes] = deque()  # lines the disk had no room for
        self._hosts: dict[str, str | None] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.failures = 0  # batches that failed and were retried
        self.lost = 0  # rows neither the journal nor memory could take
        self.rejected = 0  # rows the database refused, set aside

    @property
    def pending(self) -> int:
        """Rows taken and not in the database yet (in the journal, or in memory)."""
        return (self.journal.waiting if self.journal is not None else 0) + len(self._memory)

    @property
    def journal_path(self) -> Path | None:
        return self.journal.path if self.journal is not None else None

    def submit(self, row: UsageRow) -> None:
        """Journal the row; never blocks, never awaits. The row is on file once this returns,
        before any reply leaves."""
        line = journal_line(row)
        if self.journal is None or not self.journal.append(line):
            if len(self._memory) < self.queue_size:
                self._memory.append(line)
            else:
                self.lost += 1
                log.error(
                    "usage row %s lost: the disk has no room and memory holds %d rows", row.request_id, self.queue_size
                )
        for listener in self.listeners:
            listener.submitted(row)
        self._idle.clear()
        if self.pending >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        self.journal = Journal(self.journal_dir, self.journal_rotate_bytes)
        if self.journal.adopt_orphans():
            self._idle.clear()
        with self.db.context:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def flush(self) -> None:
        """Wait until every row submitted so far is written (or set aside)."""
        self._wake.set()
        await self._idle.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        """Write what is left; what the database won't take within ``timeout`` stays in the
        journal for the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self.db.attached.is_set():  # no database to write to
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if self.pending:
                log.error("usage writer: %d rows left in the journal in %s", self.pending, self.journal_dir)
        elif self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.error("usage writer: %d rows left in the journal in %s", self.pending, self.journal_dir)
        if self.journal is not None:
            for line in self._memory:
                if not self.journal.append(line):
                    self.lost += 1
                    log.error("usage row lost at stop, the disk has no room: %s", line.decode(errors="replace"))
            self._memory.clear()
            self.journal.close()
            self.journal = None

    async def _run(self) -> None:
        await self.db.attached.wait()  # until the database first answers, rows wait in the journal
        backoff = FIRST_BACKOFF
        while True:
            if not self.pending:
                if self.journal is not None:
                    self.journal.empty()
                self._idle.set()
                if self._stopping:
                    return
            if self.pending < self.batch_size and not self._stopping:
                with contextlib.suppress(TimeoutError):  # a full batch, or a flush, wakes the writer sooner
                    await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            try:
                batch = self._take()
                if batch is None:
                    continue
                written = await self._write(batch)
            except Exception as exc:  # the database is away (or the journal unreadable): the rows wait
                self.failures += 1
                log.error("writing usage rows failed (%r); retrying in %.1fs", exc, backoff)
                if self.db.backend == "postgres":
                    await self.db.reset()  # a restarted server leaves dead connections in the pool
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, LAST_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            if batch.file is None:
                for _ in batch.lines:
                    self._memory.popleft()
            elif self.journal is not None:
                self.journal.commit(batch)
            self.written += written

    def _take(self) -> Batch | None:
        """The next batch: lines held in memory first (a kill would lose them), then the journal's."""
        if self._memory:
            return Batch(None, list(islice(self._memory, self.batch_size)))
        return None if self.journal is None else self.journal.take(self.batch_size)

    async def _write(self, batch: Batch) -> int:
        """Store the batch's rows; returns how many went in (a row the database refuses is set aside)."""
        decoded = await self._hostnames(list(batch.rows(stored_row))) if self.resolve_hostnames() else None
        rows: Iterable[bytes | dict[str, Any]]
        if decoded is not None:
            rows = decoded
        elif batch.own and self.db.backend == "postgres":
            rows = batch.lines  # PostgreSQL reads the JSON objects itself
        elif batch.own:
            rows = map(orjson.loads, batch.lines)  # whole rows: a value one lacks is found when SQLite refuses it
        else:
            rows = batch.rows(stored_row)  # decoded one at a time, as they are written
        try:
            written = await self._insert(rows)
            stored = decoded
        except Exception as exc:
            if not refused(exc):
                raise
            stored = await self._store(decoded if decoded is not None else list(batch.rows(stored_row)))
            written = len(stored)
        if self.listeners:
            committed = [usage_row(row) for row in (stored if stored is not None else batch.rows(stored_row))]
            for listener in self.listeners:
                listener.committed(committed)
        return written

    async def _insert(self, rows: Iterable[Any]) -> int:
        """Rows as dicts, or (for PostgreSQL) as the JSON objects their journal lines hold."""
        if self.db.backend == "postgres":
            return await asyncio.wait_for(write_postgres(self.db.connection, rows), WRITE_TIMEOUT)
        return await asyncio.wait_for(write_sqlite(rows), WRITE_TIMEOUT)

    async def _store(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows stored, half a batch at a time until those the database refuses are found
        and set aside; raises while the database is away."""
        try:
            await self._insert(rows)
        except Exception as exc:
            if not refused(exc):
                raise
            if len(rows) > 1:
                half = len(rows) // 2
                return await self._store(rows[:half]) + await self._store(rows[half:])
            if not await self._answers():  # not the row's fault after all
                raise
            self._set_aside(rows[0], exc)
            return []
        return rows

    async def _answers(self) -> bool:
        try:
            await asyncio.wait_for(self.db.connection.execute_query("SELECT 1"), WRITE_TIMEOUT)
        except Exception:  # whatever it is, the database is not taking queries
            return False
        return True

    def _set_aside(self, row: dict[str, Any], exc: Exception) -> None:
        self.rejected += 1
        path = self.journal_dir / REJECTED
        reason = f"{type(exc).__name__}: {exc}"
        line = orjson.dumps({"reason": reason, "row": row}, default=repr, option=orjson.OPT_APPEND_NEWLINE)
        try:
            with path.open("ab") as rejected:
                rejected.write(line)
        except OSError as error:
            log.error("usage row refused by the database and not set aside (%r): %s", error, line.decode())
            return
        log.error("usage row %s refused by the database (%s): set aside in %s", row["request_id"], reason, path)

    async def _hostnames(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Reverse DNS for client addresses, here in the writer and never on the request path;
        cached, and bounded in time so a slow resolver only delays the batch."""
        loop = asyncio.get_running_loop()
        for address in {row["client"] for row in rows if row["client"] and row["client"] not in self._hosts}:
            try:
                host, _ = await asyncio.wait_for(loop.getnameinfo((address, 0)), timeout=1.0)
            except (OSError, TimeoutError):
                host = None
            if len(self._hosts) > 10_000:
                self._hosts.clear()
            self._hosts[address] = host if host and host != address else None
        for row in rows:
            row["client_host"] = self._hosts.get(row["client"])
        return rows
