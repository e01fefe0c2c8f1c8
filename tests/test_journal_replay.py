"""The journal's rows into the database through the usage writer, whatever happened to them: a
damaged journal loses only its unreadable lines (logged, the file kept aside), kills during
start-up neither grow the journal nor double a row, rows a full disk held in memory are written
without a restart, and under steady load the journal stays small."""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app.stores.journal import PATTERN
from app.stores.queries import UsageFilter, usage_rows
from app.stores.usage_models import UsageRecord, UsageTag
from app.stores.usage_row import journal_line
from tests.test_usage_writer import row, running_writer

LINES = 20


def journal_of(path: Path, tag: str, count: int) -> list[str]:
    """A journal left by a process that is gone; returns its rows' request ids."""
    rows = [row(tag) for _ in range(count)]
    path.write_bytes(b"".join(journal_line(r) for r in rows))
    return [r.request_id for r in rows]


def first_line_damaged(data: bytes) -> tuple[bytes, int, int]:
    """(damaged data, offset of the damage's line, lines lost)"""
    return b'{"request_id":"r0","created_at":\xff\xfe garbage' + data[data.index(b"\n") :], 0, 1


def zero_byte_mid_file(data: bytes) -> tuple[bytes, int, int]:
    start = [n for n, byte in enumerate(data) if byte == ord("\n")][LINES // 2 - 1] + 1
    return data[: start + 40] + b"\0" + data[start + 41 :], start, 1


def torn_last_line(data: bytes) -> tuple[bytes, int, int]:
    return data + data[:100], len(data), 0  # killed mid-append: half of a line, no line lost


def not_a_usage_row(data: bytes) -> tuple[bytes, int, int]:
    return b'{"hello": "world"}\n' + data, 0, 0


@pytest.mark.parametrize("damage", [first_line_damaged, zero_byte_mid_file, torn_last_line, not_a_usage_row])
def test_a_damaged_journal_loses_only_its_unreadable_lines_and_is_kept_aside(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], tuple[bytes, int, int]]
) -> None:
    tag = f"dmg-{uuid.uuid4().hex[:8]}"
    orphan = tmp_path / "usage-journal.1.gone.jsonl"
    ids = journal_of(orphan, tag, LINES)
    damaged, offset, lost = damage(orphan.read_bytes())
    orphan.write_bytes(damaged)

    async def scenario() -> set[str]:
        async with running_writer(db_url, tmp_path) as (_, writer):
            await asyncio.wait_for(writer.flush(), 30)
            assert writer.pending == 0
            return {r["request_id"] async for r in usage_rows(UsageFilter(tag=tag))}

    with caplog.at_level(logging.ERROR, logger="llm_relay.journal"):
        written = asyncio.run(scenario())
    assert len(written) == LINES - lost and written <= set(ids)
    assert f"{orphan}, byte {offset}: unreadable usage row skipped" in caplog.text
    aside = tmp_path / (orphan.name + ".damaged")
    assert not orphan.exists() and aside.read_bytes() == damaged  # kept as it was, never deleted


def test_kills_during_start_up_neither_grow_the_journal_nor_double_a_row(db_url: str, tmp_path: Path) -> None:
    """Each start adopts the journal and is killed part-way through writing it: what is on disk
    never grows past the journal's rows, and once a start finishes, each row is stored once."""
    tag = f"kill-{uuid.uuid4().hex[:8]}"
    count = 5000
    ids = journal_of(tmp_path / "usage-journal.1.gone.jsonl", tag, count)
    script = textwrap.dedent(
        """
        import asyncio, sys
        from app.stores.db import Database
        from app.stores.usage import UsageWriter

        async def main():
            database = Database(sys.argv[1])
            await database.open(migrate_first=False)
            writer = UsageWriter(database, queue_size=100, batch_size=10, flush_seconds=0.01, journal_dir=sys.argv[2])
            writer.start()
            print("started", flush=True)
            await writer.flush()
            await writer.stop()
            await database.close()

        asyncio.run(main())
        """
    )
    command = [sys.executable, "-c", script, db_url, str(tmp_path)]
    for kill in range(6):
        start = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
        if kill:  # the first is killed before it has even started
            assert start.stdout is not None and start.stdout.readline() == "started\n"
        time.sleep(random.uniform(0.02, 0.15))
        start.kill()
        start.communicate()
        assert start.returncode == -9, "the start finished before it was killed: use a larger journal"
        on_disk = sum(path.read_bytes().count(b"\n") for path in tmp_path.glob(PATTERN))
        assert on_disk <= count
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert finished.returncode == 0, finished.stderr

    async def stored() -> tuple[int, int]:
        async with running_writer(db_url, tmp_path / "after"):
            records = await UsageRecord.filter(request_id__in=ids).count()
            return records, await UsageTag.filter(tag=tag).count()

    assert asyncio.run(stored()) == (count, count)
    assert list(tmp_path.glob("usage-journal.*")) == []


def test_rows_the_disk_has_no_room_for_are_written_from_memory_without_a_restart(db_url: str, tmp_path: Path) -> None:
    """With a file size limit the journal refuses lines (EFBIG, as ENOSPC would): the rows after
    them wait in memory, up to ``queue_size``; more are lost, counted. Once there is room the
    writer writes them, the journal's and memory's, each once."""
    script = """
        import asyncio, resource, sys
        from app.stores.db import Database
        from app.stores.usage_models import UsageRecord
        from app.stores.usage import UsageWriter
        from tests.test_usage_writer import row

        async def main():
            database = Database(sys.argv[1])
            await database.open(migrate_first=False)
            writer = UsageWriter(database, queue_size=1000, batch_size=100, flush_seconds=0.01, journal_dir=sys.argv[2])
            with database.context:
                writer.start()
                rows = [row("disk-full") for _ in range(3000)]
                for r in rows:
                    r.error = "x" * 600
                resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, resource.RLIM_INFINITY))
                for r in rows:  # no await: the writer writes nothing meanwhile
                    writer.submit(r)
                journalled, in_memory = writer.journal.waiting, writer.pending - writer.journal.waiting
                resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                await asyncio.wait_for(writer.flush(), 60)
                stored = await UsageRecord.filter(request_id__in=[r.request_id for r in rows]).count()
                print(journalled, in_memory, stored, writer.lost, writer.pending, flush=True)
                await writer.stop()
            await database.close()

        asyncio.run(main())
        """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), db_url, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    journalled, in_memory, stored, lost, pending = map(int, done.stdout.split())
    assert 0 < journalled < 2000 and in_memory == 1000
    assert (stored, lost, pending) == (journalled + in_memory, 3000 - journalled - in_memory, 0)
    assert "no room on disk" in done.stderr and "lost" in done.stderr
    assert list(tmp_path.glob("usage-journal.*")) == []


def test_the_journal_stays_small_under_steady_load(db_url: str, tmp_path: Path) -> None:
    tag = f"jr-{uuid.uuid4().hex[:8]}"
    limit = 16 * 1024

    async def scenario() -> tuple[int, int, list[str]]:
        largest = 0
        submitted = 0
        async with running_writer(db_url, tmp_path, queue_size=10, batch_size=20, journal_rotate_bytes=limit) as (
            _,
            writer,
        ):
            for _ in range(400):  # never idle: a few rows arrive while every batch is written
                while writer.pending > 20:  # a slow machine's writer falls behind: what waits is not the point here
                    await asyncio.sleep(0.001)
                for _ in range(3):
                    writer.submit(row(tag))
                    submitted += 1
                largest = max(largest, sum(p.stat().st_size for p in tmp_path.glob(PATTERN)))
                await asyncio.sleep(0.002)
            await writer.flush()
            return largest, submitted, [r["request_id"] async for r in usage_rows(UsageFilter(tag=tag))]

    largest, count, written = asyncio.run(scenario())
    assert sorted(written) == sorted(set(written)) and len(written) == count  # each row once
    assert largest < 3 * limit, f"the journal grew to {largest} bytes"
    assert list(tmp_path.glob(PATTERN)) == []  # stopped with everything written: nothing to replay


def test_full_batches_are_written_at_once_and_the_rest_waits_for_the_flush(db_url: str, tmp_path: Path) -> None:
    """The writer wakes as soon as a batch's worth of rows waits, however they arrived (one
    burst of several batches, or a few rows on top of what a batch left), not at the flush."""

    async def until(condition: Callable[[], bool]) -> bool:
        for _ in range(200):
            if condition():
                return True
            await asyncio.sleep(0.05)
        return condition()

    async def scenario() -> tuple[bool, int, bool, int]:
        async with running_writer(db_url, tmp_path, queue_size=1000, flush_seconds=60) as (_, writer):
            for _ in range(120):  # two batches and 20 rows
                writer.submit(row("batches"))
            two_batches = await until(lambda: writer.written == 100)
            await asyncio.sleep(0.3)
            after_burst = writer.written  # the 20 wait: neither a batch nor the flush yet
            for _ in range(30):  # with the 20 waiting, a batch again
                writer.submit(row("batches"))
            third = await until(lambda: writer.written == 150)
            return two_batches, after_burst, third, writer.written

    assert asyncio.run(scenario()) == (True, 100, True, 150)
