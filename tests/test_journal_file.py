"""The usage journal is a file mapped into memory, its blocks reserved ahead: a row is on file
as soon as it is added, a killed process leaves a file whose rest reads as zeros, and a full
disk keeps rows in memory instead of crashing the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from app.stores import journal_file
from app.stores.journal import Journal

COLUMNS = ("request_id", "n")


def values(row: tuple[str, int]) -> tuple[str, int]:
    return row


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A Python process of its own (killed, or given a file size limit, without touching ours)."""
    source = textwrap.dedent(script).replace("JOURNAL_DIR", repr(str(tmp_path)))
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1]
    )


def test_a_killed_process_leaves_every_added_row_for_the_next_one(tmp_path: Path) -> None:
    """Added rows are in the kernel's page cache at once: a process killed without closing its
    journal (SIGKILL) loses none. Its file ends in the zeros of its reserved blocks, and a torn
    last line (killed mid-copy) is skipped, not the rows before it."""
    done = run(
        """
        import os, signal
        from app.stores.journal import Journal
        journal = Journal(JOURNAL_DIR, ("request_id", "n"), lambda row: row)
        for n in range(1000):
            journal.add_line(journal.encode((f"r{n}", n)))
        print(journal.path, journal.size, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    assert done.returncode == -9, done.stderr
    path_text, size_text = done.stdout.split()
    path, size = Path(path_text), int(size_text)
    assert path.stat().st_size >= journal_file.GROW_BYTES > size  # the reserved rest is still there
    with path.open("r+b") as handle:  # killed mid-copy: half a line in the zeros
        handle.seek(size)
        handle.write(b'["r1000", 10')
    successor = Journal(tmp_path, COLUMNS, values)
    assert successor.adopt_orphans() == 1000
    assert [record["n"] for record in successor.records()] == list(range(1000))
    assert not path.exists()
    successor.close()


def test_a_closed_journal_keeps_only_its_lines(tmp_path: Path) -> None:
    journal = Journal(tmp_path, COLUMNS, values)
    journal.append(("a", 1))
    path = journal.path
    journal.close()
    assert path.read_bytes() == b'{"columns":["request_id","n"]}\n["a",1]\n'
    empty = Journal(tmp_path, COLUMNS, values)
    empty.close()
    assert not empty.path.exists()


def test_the_file_grows_past_its_first_reservation(tmp_path: Path) -> None:
    journal = Journal(tmp_path, COLUMNS, values)
    padding = "x" * 1000
    count = 3 * journal_file.GROW_BYTES // 1000
    for n in range(count):
        journal.append((padding, n))
    assert [record["n"] for record in journal.records()] == list(range(count))
    journal.truncate()
    assert list(journal.records()) == []
    journal.append(("after", 1))
    assert list(journal.records()) == [{"request_id": "after", "n": 1}]
    journal.close()


def test_a_full_disk_keeps_rows_in_memory_and_the_process_alive(tmp_path: Path) -> None:
    """With no room for the next reserved step (here a file size limit: the reservation fails
    with EFBIG, as it would with ENOSPC), a row is not journalled and the caller is told; the
    rows before it stay readable; once there is room again, a new file takes the rows the
    caller still holds."""
    done = run(
        """
        import resource
        from app.stores import journal as module
        from app.stores.journal import Journal
        module.RETRY_SECONDS = 0.0
        journal = Journal(JOURNAL_DIR, ("request_id", "n"), lambda row: row)
        from app.stores.journal_file import GROW_BYTES
        resource.setrlimit(resource.RLIMIT_FSIZE, (GROW_BYTES, resource.RLIM_INFINITY))
        lines = [journal.encode((f"r{n}" + "x" * 500, n)) for n in range(3000)]
        taken = [journal.add_line(line) for line in lines]
        first_refused = taken.index(False)
        assert all(taken[:first_refused]) and not any(taken[first_refused:]), taken
        assert journal.unjournalled == 3000 - first_refused
        assert [r["n"] for r in journal.records()] == list(range(first_refused))
        refused = lines[first_refused:]
        assert journal.worth_rotating(1 << 30, in_memory=len(refused))  # rows only in memory: try a new file
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert journal.rotate(refused) == len(refused)  # the waiting rows first, then those from memory
        assert [r["n"] for r in journal.records()] == list(range(3000))
        assert journal.waiting == 3000 and journal.peek(3000) == (b"".join(lines), 3000)
        assert journal.unjournalled == 0 and not journal.worth_rotating(1 << 30)
        journal.close()
        print("ok", first_refused)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok") and 0 < int(done.stdout.split()[1]) < 3000
    assert "no room on disk" in done.stderr
    assert len(list(tmp_path.glob("usage-journal.*"))) == 1


def test_an_emptied_file_is_reused_and_its_old_lines_never_come_back(tmp_path: Path) -> None:
    """Emptying a file only marks where its lines end: the old lines are still there, after
    the zero byte, until new ones overwrite them. A process killed after that leaves exactly
    the rows added since."""
    done = run(
        """
        import os, signal
        from app.stores.journal import Journal
        journal = Journal(JOURNAL_DIR, ("request_id", "n"), lambda row: row)
        for n in range(500):
            journal.add_line(journal.encode((f"old-{n}" + "x" * 200, n)))
        journal.truncate()  # all of them committed
        for n in range(3):
            journal.add_line(journal.encode((f"new-{n}", n)))
        print(journal.path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    assert done.returncode == -9, done.stderr
    path = Path(done.stdout.strip())
    assert b"old-499" in path.read_bytes()  # still on disk, past the end of the lines
    successor = Journal(tmp_path, COLUMNS, values)
    assert successor.adopt_orphans() == 3
    assert [record["request_id"] for record in successor.records()] == ["new-0", "new-1", "new-2"]
    successor.close()
