"""SQLite's usage inserts through the writer's own connection: a taken write lock is reported at
once instead of waited for on the event loop's thread, and the write-ahead log is copied into
the database in a thread every so many rows, then reused instead of growing."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.stores.db import Database
from app.stores.sqlite_values import BLOCK_ROWS, sqlite_inserts
from app.stores.usage_sqlite import CHUNK_ROWS, SqliteBusy, SqliteRows
from tests.test_usage_writer import full_row, journalled, lines


def migrated(tmp_path: Path) -> Path:
    path = tmp_path / "relay.db"

    async def migrate() -> None:
        database = Database(f"sqlite://{path}")
        await database.open()
        await database.close()

    asyncio.run(migrate())
    return path


def rows(count: int) -> bytes:
    """Journal lines of ``count`` rows, as the writer hands them over."""
    return lines([dataclasses.replace(full_row(), request_id=uuid.uuid4().hex) for _ in range(count)])


def count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM usage_record").fetchone()[0])


def test_a_taken_write_lock_fails_at_once_and_writes_nothing(tmp_path: Path) -> None:
    path = migrated(tmp_path)
    writer = SqliteRows(str(path))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(SqliteBusy):
        asyncio.run(writer.write(rows(3)))
    other.execute("COMMIT")
    assert count(path) == 0
    asyncio.run(writer.write(rows(3)))  # the same connection writes once the lock is free
    assert count(path) == 3
    asyncio.run(writer.close())


def test_a_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    path = migrated(tmp_path)
    writer = SqliteRows(str(path))
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE usage_tag")  # the tag insert, after the records, fails
    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(writer.write(rows(3)))
    assert count(path) == 0
    asyncio.run(writer.close())


def wal_bytes_after(path: Path, *, checkpoint_rows: int) -> int:
    async def scenario() -> int:
        writer = SqliteRows(str(path), checkpoint_rows=checkpoint_rows)
        for _ in range(20):
            await writer.write(rows(100))
            if writer._checkpoint is not None:
                await writer._checkpoint
        size = Path(f"{path}-wal").stat().st_size
        # The database file alone (no log) already holds what was checkpointed.
        copy = path.with_name("copy.db")
        shutil.copy(path, copy)
        assert count(copy) >= 2000 - checkpoint_rows
        writer.reset()
        return size

    return asyncio.run(scenario())


def test_the_log_is_copied_into_the_database_and_reused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    without = wal_bytes_after(migrated(tmp_path / "a"), checkpoint_rows=10**9)
    checkpointed = wal_bytes_after(migrated(tmp_path / "b"), checkpoint_rows=200)
    assert checkpointed * 4 < without


def test_a_write_cancelled_between_chunks_leaves_nothing_behind(tmp_path: Path) -> None:
    """A batch is inserted in chunks with the loop taking turns between them; a writer stopped
    there rolls the whole batch back, and its connection writes the next one."""
    path = migrated(tmp_path)
    writer = SqliteRows(str(path))

    async def scenario() -> None:
        task = asyncio.create_task(writer.write(rows(CHUNK_ROWS * 3)))
        await asyncio.sleep(0)  # the first chunk is in, uncommitted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert count(path) == 0
        await writer.write(rows(2))
        await writer.close()

    asyncio.run(scenario())
    assert count(path) == 2


def test_rows_in_blocks_and_one_by_one_are_stored_alike(tmp_path: Path) -> None:
    """A batch goes in as multi-row inserts of ``BLOCK_ROWS`` rows and the rest one at a time,
    whichever of their columns are NULL; every row, whichever way it went, holds the same
    values, and a request id seen twice (a journal replayed over rows already written) is
    stored once; so are their tags."""
    path = migrated(tmp_path)
    mixed = [
        dataclasses.replace(
            full_row(), request_id=f"r{i:04d}", error=None if i % 3 else "x", ttft_ms=i, tags=[f"t{i % 3}", "all"]
        )
        for i in range(2 * BLOCK_ROWS + 5)
    ]
    inserts = sqlite_inserts(journalled(mixed))
    assert sum(len(values) * statement.count("(?") for statement, values in inserts) == len(mixed)
    assert [(statement.count("(?"), len(values)) for statement, values in inserts] == [(BLOCK_ROWS, 2), (1, 5)]

    async def scenario() -> None:
        writer = SqliteRows(str(path))
        await writer.write(lines(mixed[:BLOCK_ROWS]))
        await writer.write(lines(mixed))  # the first block again: skipped, the rest written
        await writer.close()

    asyncio.run(scenario())
    with sqlite3.connect(path) as connection:
        got = connection.execute('SELECT request_id, error, ttft_ms FROM "usage_record" ORDER BY request_id').fetchall()
        tags = connection.execute('SELECT request_id, tag FROM "usage_tag" ORDER BY request_id, tag').fetchall()
    assert got == [(row.request_id, row.error, row.ttft_ms) for row in mixed]
    assert tags == sorted((row.request_id, tag) for row in mixed for tag in row.tags)  # 4 blocks of pairs and 10 more


def test_the_writers_connection_keeps_statement_journals_in_memory(tmp_path: Path) -> None:
    """Multi-row inserts keep a statement journal; in a temporary file it cost a system call
    per page (see app/stores/usage_sqlite.py)."""
    writer = SqliteRows(str(migrated(tmp_path)))
    asyncio.run(writer.write(rows(BLOCK_ROWS)))
    assert writer._connect().execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    assert writer._connect().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    asyncio.run(writer.close())


def test_a_row_missing_a_required_value_inside_a_block_is_stored_with_the_rest(tmp_path: Path) -> None:
    """A multi-row insert skips a row that breaks NOT NULL (OR IGNORE); the writer notices that
    fewer rows went in than it sent, and stores that row with an empty value there."""
    path = migrated(tmp_path)
    batch = [dataclasses.replace(full_row(), request_id=f"r{i:04d}") for i in range(BLOCK_ROWS + 3)]
    batch[3].endpoint = None  # type: ignore[assignment]
    batch[BLOCK_ROWS + 1].created_at = None  # type: ignore[assignment]

    async def scenario() -> None:
        writer = SqliteRows(str(path))
        await writer.write(lines(batch))
        await writer.write(lines(batch))  # replayed: nothing more, nothing doubled
        await writer.close()

    asyncio.run(scenario())
    with sqlite3.connect(path) as connection:
        got = dict(connection.execute('SELECT request_id, endpoint FROM "usage_record"').fetchall())
        at = connection.execute('SELECT created_at FROM "usage_record" WHERE request_id = ?', (batch[-2].request_id,))
        [(created,)] = at.fetchall()
    assert len(got) == len(batch) and got[batch[3].request_id] == "" and got[batch[0].request_id] == batch[0].endpoint
    assert created.startswith(str(datetime.now(UTC).year)) and " " in created  # stored as Tortoise stores times
