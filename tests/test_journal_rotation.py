"""Under steady load the usage journal is never empty, so it is never truncated: it must start
a new file instead, keeping only the rows not yet committed, or it grows until the disk is full."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.stores.db import Database
from app.stores.journal import Journal
from app.stores.journal_file import read_records
from app.stores.queries import usage_rows
from app.stores.usage import UsageWriter
from app.stores.usage_row import UsageRow


def row(tag: str) -> UsageRow:
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


def used(path: Path) -> int:
    """Bytes of a journal file that hold lines: the rest of its reserved blocks read as zeros."""
    data = path.read_bytes()
    return len(data) if b"\0" not in data else data.index(b"\0")


def test_the_journal_stays_small_under_steady_load(db_url: str, tmp_path: Path) -> None:
    tag = f"jr-{uuid.uuid4().hex[:8]}"
    limit = 16 * 1024

    async def scenario() -> tuple[int, list[Path], int, list[str]]:
        database = Database(db_url)
        await database.open(migrate_first=False)
        writer = UsageWriter(
            database, queue_size=10_000, batch_size=20, flush_seconds=0.01, journal_dir=tmp_path,
            journal_rotate_bytes=limit,
        )  # fmt: skip
        largest = 0
        submitted: list[str] = []
        try:
            writer.start()
            for _ in range(400):  # never idle: a few rows arrive while every batch is written
                for _ in range(3):
                    r = row(tag)
                    writer.submit(r)
                    submitted.append(r.request_id)
                largest = max(largest, sum(used(p) for p in tmp_path.glob("usage-journal.*")))
                await asyncio.sleep(0.002)
            await writer.stop()
            with database.context:
                written = [r["request_id"] async for r in usage_rows(tag=tag)]
        finally:
            await database.close()
        return largest, list(tmp_path.glob("usage-journal.*")), len(submitted), written

    largest, left, count, written = asyncio.run(scenario())
    assert sorted(written) == sorted(set(written)) and len(written) == count  # each row once
    assert largest < 3 * limit, f"the journal grew to {largest} bytes"
    assert left == []  # stopped with everything written: nothing left to replay


def test_rotation_keeps_what_is_not_committed_and_reuses_the_emptied_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    first = journal.path
    for n in range(5):
        journal.append({"n": n})
    journal.drop(3)  # committed
    journal.rotate()
    second = journal.path
    assert second != first
    assert [r["n"] for r in journal.records()] == [3, 4]
    journal.append({"n": 5})
    assert [r["n"] for r in journal.records()] == [3, 4, 5]
    assert list(read_records(first)) == []  # emptied, kept for the next rotation
    journal.drop(2)
    journal.rotate()
    assert journal.path == first and [r["n"] for r in journal.records()] == [5]
    assert list(read_records(second)) == []
    journal.close()
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # the empty one is removed


def test_a_lagging_writer_does_not_copy_its_backlog_into_every_new_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for n in range(100):
        journal.append({"n": n, "padding": "x" * 50})
    assert not journal.worth_rotating(journal.size + 1)  # not past the limit yet
    journal.drop(40)
    assert not journal.worth_rotating(1024)  # most of it still to be written: keep appending
    journal.drop(10)
    assert journal.worth_rotating(1024)  # half of it committed: a new file pays off
    journal.rotate()
    assert journal.lines == 50 and not journal.worth_rotating(1024)
    assert [r["n"] for r in journal.records()] == list(range(50, 100))
    journal.close()


def test_rows_go_in_as_arrays_under_a_header_and_come_back_as_dicts(tmp_path: Path) -> None:
    columns = ("request_id", "n")
    journal = Journal(tmp_path, columns, lambda row: (row[0], row[1]))
    journal.append(("a", 1))
    journal.append({"request_id": "b", "n": 2})  # adopted from an older journal: stays a dict
    assert journal.path.read_bytes().splitlines()[:2] == [b'{"columns":["request_id","n"]}', b'["a",1]']
    journal.truncate()
    journal.append(("c", 3))  # an emptied file gets its header again
    assert [r["n"] for r in journal.records()] == [3]
    journal.drop(1)
    assert journal.rotate([journal.encode(("d", 4))]) == 1  # a line from memory
    assert list(journal.records()) == [{"request_id": "d", "n": 4}]
    with journal.path.open("ab") as handle:
        handle.write(b'["torn"]\n')  # does not match the header: skipped, not a crash
    assert [r["n"] for r in journal.records()] == [4]
    journal.close()
