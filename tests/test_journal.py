"""The usage journal: a line is in its file once appended, batches come back from the file in
order, a large file mostly committed is followed by a new one, a full disk refuses a line whole,
files nobody holds are adopted as they are (never copied), and a file a killed process made but
never named a journal is removed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson

from app.stores.journal import PATTERN, Journal


def line(n: int, padding: int = 0) -> bytes:
    return orjson.dumps({"request_id": f"r{n}", "n": n, "padding": "x" * padding}) + b"\n"


def as_row(record: Any) -> dict[str, Any]:
    """The journal's conversion of a record into a row, as the writer's: it refuses non-rows."""
    if not isinstance(record, dict) or "request_id" not in record:
        raise ValueError("not a row")
    return record


def read_all(journal: Journal, limit: int = 1000) -> list[int]:
    """Every row's ``n`` the journal gives back, each batch committed."""
    numbers: list[int] = []
    while (batch := journal.take(limit)) is not None:
        numbers += [row["n"] for row in batch.rows(as_row)]
        journal.commit(batch)
    return numbers


def run(script: str, tmp_path: Path, **popen: Any) -> subprocess.Popen[str]:
    """A Python process of its own (killed, or under a file size limit, without touching ours)."""
    source = textwrap.dedent(script).replace("JOURNAL_DIR", repr(str(tmp_path)))
    command = [sys.executable, "-c", source]
    return subprocess.Popen(command, text=True, cwd=Path(__file__).parents[1], **popen)


def test_a_line_is_in_the_file_when_append_returns_and_batches_come_back_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    lines = [line(n) for n in range(10)]
    for each in lines:
        assert journal.append(each)
    assert journal.path.read_bytes() == b"".join(lines)  # read through a file of its own
    first = journal.take(4)
    assert first is not None and [r["n"] for r in first.rows(as_row)] == [0, 1, 2, 3]
    again = journal.take(4)  # not committed: the same rows again
    assert again is not None and [r["n"] for r in again.rows(as_row)] == [0, 1, 2, 3]
    journal.commit(first)
    assert journal.waiting == 6 and read_all(journal) == [4, 5, 6, 7, 8, 9]
    assert journal.waiting == 0 and journal.take(4) is None
    journal.empty()  # everything committed: the file starts over
    assert journal.path.stat().st_size == 0
    journal.append(line(10))
    assert read_all(journal) == [10]
    path = journal.path
    journal.close()
    assert not path.exists()  # nothing left to write: removed


def test_a_line_longer_than_a_batch_is_expected_to_be_comes_back_whole(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for n, padding in enumerate((10, 50_000, 10)):
        journal.append(line(n, padding))
    assert read_all(journal, limit=1) == [0, 1, 2]
    journal.close()


def test_a_killed_process_leaves_its_rows_for_the_next_one(tmp_path: Path) -> None:
    """Appended lines are in the kernel's page cache: a process killed with SIGKILL loses none."""
    done = run(
        """
        import os, signal, orjson
        from app.stores.journal import Journal
        journal = Journal(JOURNAL_DIR)
        for n in range(1000):
            journal.append(orjson.dumps({"request_id": f"r{n}", "n": n}) + b"\\n")
        print(journal.path, flush=True)
        os.kill(os.getpid(), 9)
        """,
        tmp_path,
        stdout=subprocess.PIPE,
    )
    path = Path(done.communicate(timeout=60)[0].strip())
    assert done.returncode == -9
    successor = Journal(tmp_path)
    assert successor.adopt_orphans() == 1000
    assert successor.files[0].path == path  # adopted as it is, not copied
    assert read_all(successor, limit=300) == list(range(1000))
    assert not path.exists()  # every row committed: removed
    successor.close()


def test_a_large_mostly_committed_file_is_followed_by_a_new_one(tmp_path: Path) -> None:
    """Under steady load a file is never all committed, so never emptied: past ``rotate_bytes``,
    once at least half of it is committed, lines go to a new file and the old one is removed
    when the rest of its rows are. A writer that lags keeps its file (no rows copied)."""
    journal = Journal(tmp_path, rotate_bytes=4096)
    for n in range(100):
        journal.append(line(n, 50))
    first = journal.path
    batch = journal.take(40)
    assert batch is not None
    journal.commit(batch)
    journal.append(line(100, 50))
    assert journal.path == first  # most of it still to be written: the same file
    batch = journal.take(20)
    assert batch is not None
    journal.commit(batch)
    journal.append(line(101, 50))
    assert journal.path != first and first.exists()
    assert read_all(journal) == list(range(60, 102))
    assert not first.exists() and sorted(tmp_path.glob(PATTERN)) == [journal.path]
    journal.close()


def test_a_full_disk_refuses_a_line_whole_and_lines_go_in_again_once_there_is_room(tmp_path: Path) -> None:
    """A file size limit makes the append fail (EFBIG, as ENOSPC would), after part of the line
    was written: the part is cut off again, so the file holds whole lines only."""
    done = run(
        """
        import resource, orjson
        from app.stores.journal import Journal
        journal = Journal(JOURNAL_DIR)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        lines = [orjson.dumps({"request_id": f"r{n}", "n": n, "padding": "x" * 300}) + b"\\n" for n in range(400)]
        taken = [journal.append(each) for each in lines]
        refused = taken.index(False)
        assert all(taken[:refused]) and not any(taken[refused:]), taken
        assert journal.path.read_bytes() == b"".join(lines[:refused])
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert journal.append(lines[refused])
        assert journal.waiting == refused + 1
        print(refused, flush=True)
        """,
        tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    assert 0 < int(out) < 400
    assert "no room on disk" in err and "takes rows again" in err  # said once each, not per row
    assert err.count("no room on disk") == 1


def test_a_journal_a_live_process_holds_is_left_alone(tmp_path: Path) -> None:
    holder = run(
        """
        import sys, time, orjson
        from app.stores.journal import Journal
        journal = Journal(JOURNAL_DIR)
        journal.append(orjson.dumps({"request_id": "held", "n": 0}) + b"\\n")
        print(journal.path, flush=True)
        time.sleep(60)
        """,
        tmp_path,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        held = Path(holder.stdout.readline().strip())
        orphan = tmp_path / "usage-journal.1.gone.jsonl"
        orphan.write_bytes(line(1) + line(2))
        journal = Journal(tmp_path)
        assert journal.adopt_orphans() == 2
        assert read_all(journal) == [1, 2]
        assert held.exists() and not orphan.exists()
        journal.close()
    finally:
        holder.kill()
        holder.communicate()


def test_a_file_a_killed_process_made_but_never_named_is_removed(tmp_path: Path) -> None:
    unnamed = tmp_path / "usage-journal.1.gone.new"  # killed between making and naming it, a while ago
    unnamed.touch()
    os.utime(unnamed, (time.time() - 120, time.time() - 120))
    recent = tmp_path / "usage-journal.3.new.new"  # made a moment ago: its process may not have locked it yet
    recent.touch()
    holder = run(  # a live process between making its file and naming it
        """
        import fcntl, os, time
        path = os.path.join(JOURNAL_DIR, "usage-journal.2.live.new")
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.utime(path, (time.time() - 120, time.time() - 120))  # old, but held: it stays
        print("held", flush=True)
        time.sleep(60)
        """,
        tmp_path,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        journal = Journal(tmp_path)
        assert journal.adopt_orphans() == 0
        journal.close()
        assert not unnamed.exists() and recent.exists() and (tmp_path / "usage-journal.2.live.new").exists()
    finally:
        holder.kill()
        holder.communicate()
