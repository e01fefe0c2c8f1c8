"""The journal is the usage writer's queue: batches are read straight out of its file, the rows
not committed yet move with it when it rotates, and rows the disk has no room for wait in
memory until there is room again, none lost and none written twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import orjson

from app.stores.journal import Journal
from app.stores.journal_file import read_records

COLUMNS = ("request_id", "n")


def run(script: str, **names: str) -> subprocess.CompletedProcess[str]:
    """A Python process of its own: the file size limits it sets must not touch ours."""
    source = textwrap.dedent(script)
    for name, value in names.items():
        source = source.replace(name, repr(value))
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1]
    )


def test_batches_come_out_of_the_file_in_order_and_survive_a_rotation(tmp_path: Path) -> None:
    journal = Journal(tmp_path, COLUMNS, lambda row: row)
    lines = [journal.encode((f"r{n}", n)) for n in range(10)]
    for line in lines:
        assert journal.add_line(line)
    assert journal.peek(4) == (b"".join(lines[:4]), 4)
    journal.drop(4)
    assert journal.waiting == 6 and journal.peek(100) == (b"".join(lines[4:]), 6)
    first = journal.path
    journal.rotate()
    assert journal.path != first and list(read_records(first)) == []
    assert journal.path.read_bytes().startswith(b'{"columns":["request_id","n"]}\n' + lines[4])
    assert journal.peek(3) == (b"".join(lines[4:7]), 3)
    journal.add_line(extra := journal.encode(("r10", 10)))
    journal.drop(3)
    assert journal.peek(100) == (b"".join(lines[7:]) + extra, 4)
    journal.drop(4)
    assert journal.waiting == 0 and journal.peek(1) == (b"", 0)
    journal.truncate()
    assert journal.lines == 0 and list(journal.records()) == []
    journal.close()


def test_a_rotation_that_finds_no_room_stays_on_its_file(tmp_path: Path) -> None:
    done = run(
        """
        import resource
        from app.stores import journal as journal_module
        from app.stores import journal_file
        from app.stores.journal import Journal
        journal_module.RETRY_SECONDS = 0.0  # try again at once once there is room
        journal = Journal(JOURNAL_DIR, ("request_id", "n"), lambda row: row)
        lines = [journal.encode((f"r{n}" + "x" * 500, n)) for n in range(1000)]
        for line in lines:
            assert journal.add_line(line)
        journal.drop(400)
        path = journal.path
        limit = 100_000  # bytes: the other file cannot take the 600 waiting rows (~300 KB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        assert journal.rotate() == 0
        assert journal.path == path and journal.peek(1000) == (b"".join(lines[400:]), 600)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        journal.rotate()
        assert journal.path != path and journal.peek(1000) == (b"".join(lines[400:]), 600)
        journal.close()
        print("ok")
        """,
        JOURNAL_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n" and "no room on disk" in done.stderr


def test_orphans_are_adopted_as_lines_and_an_unreadable_record_is_skipped(tmp_path: Path) -> None:
    orphan = tmp_path / "usage-journal.1.dead.jsonl"
    orphan.write_bytes(b'{"request_id":"a","n":1}\n{"request_id":"b","m":2}\n{"request_id":"c","n":3}\n')
    journal = Journal(tmp_path, COLUMNS, lambda row: row)

    def line_of(record: dict[str, object]) -> bytes:
        return orjson.dumps([record["request_id"], record["n"]], option=orjson.OPT_APPEND_NEWLINE)

    assert journal.adopt_orphans(line_of) == 2
    assert journal.peek(10) == (b'["a",1]\n["c",3]\n', 2)
    assert not orphan.exists()
    journal.close()


def test_rows_the_disk_has_no_room_for_wait_in_memory_and_are_written_once(db_url: str, tmp_path: Path) -> None:
    """With a file size limit the journal's next reserved step fails (EFBIG, as ENOSPC would):
    the rows after it wait in the writer's memory. Once the limit is gone, every row is
    written exactly once and the journal ends empty."""
    done = run(
        """
        import asyncio, resource
        from app.stores import journal as journal_module
        from app.stores import journal_file
        from app.stores.db import Database
        from app.stores.models import UsageRecord
        from app.stores.usage import UsageWriter
        from tests.test_journal_rotation import row

        journal_module.RETRY_SECONDS = 0.0

        async def main():
            database = Database(DB_URL)
            await database.open(migrate_first=False)
            writer = UsageWriter(
                database, queue_size=10_000, batch_size=100, flush_seconds=0.01, journal_dir=JOURNAL_DIR,
            )
            with database.context:
                writer.start()
                rows = [row("disk-full") for _ in range(3000)]
                for r in rows:
                    r.error = "x" * 600
                resource.setrlimit(resource.RLIMIT_FSIZE, (journal_file.GROW_BYTES, resource.RLIM_INFINITY))
                for r in rows:  # no await: the writer writes nothing meanwhile
                    writer.submit(r)
                in_memory = len(writer._memory)
                resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                await asyncio.wait_for(writer.flush(), 60)
                stored = await UsageRecord.filter(request_id__in=[r.request_id for r in rows]).count()
                print(in_memory, stored, writer.lost, writer.pending, flush=True)
                await writer.stop()
            await database.close()

        asyncio.run(main())
        """,
        DB_URL=db_url,
        JOURNAL_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    in_memory, stored, lost, pending = map(int, done.stdout.split())
    assert 0 < in_memory < 3000  # some rows found room in the journal, the rest waited in memory
    assert (stored, lost, pending) == (3000, 0, 0)
    assert "no room on disk" in done.stderr
    assert list(tmp_path.glob("usage-journal.*")) == []


def test_full_batches_are_written_at_once_and_the_rest_waits_for_the_flush(db_url: str, tmp_path: Path) -> None:
    """The writer wakes as soon as a batch's worth of rows waits, however they arrived (one
    burst of several batches, or a few rows on top of what a batch left), not at the flush."""
    from tests.test_journal_rotation import row
    from tests.test_usage_writer import running_writer

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
