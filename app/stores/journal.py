"""The usage journal: every usage row is copied into a file before anything else happens to
it, so a row survives the database being away, the memory buffer being full, and the process
being killed. The writer empties the journal once its rows are committed.

Each process writes its own files (``usage-journal.<pid>.<id>.jsonl``) and holds an exclusive
``flock`` on them; at start a process adopts every journal in the directory that nobody holds
(left by a crash, or by a worker that has gone), so their rows are written exactly once
(inserts are idempotent on ``request_id``). A line is one record: a JSON object, or an array
under the file's header line ``{"columns": [...]}``. A file's lines end at its first zero byte.

How a file keeps its lines (mapped into memory, its pages reused): :mod:`app.stores.journal_file`.

The journal is also the writer's queue: it keeps where each line of its current file ends, and
the writer reads its batches (:meth:`Journal.peek`) straight out of the mapping. Keeping a
second copy of every line in a buffer of the writer's own cost the relay ~1% of its throughput
(bench.ab side by side, 1.012x without it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from app.stores.journal_file import PATTERN, JournalFile, read_records

log = logging.getLogger("llm_relay.journal")
RETRY_SECONDS = 1.0  # after a failed reservation (disk full), rows stay in memory this long before trying again


class Journal:
    """``columns`` and ``values`` (the record's values in that order) make records that are not
    dicts go in as JSON arrays, under a header line naming the columns: orjson encodes a
    40-field dataclass in about twice the time it takes for its values as a tuple."""

    def __init__(
        self,
        directory: str | Path,
        columns: Sequence[str] = (),
        values: Callable[[Any], Sequence[Any]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.size = 0  # where the next line goes in the current file
        self.unjournalled = 0  # rows refused for lack of room on disk since the last emptying or rotation
        self._values = values
        self._header = orjson.dumps({"columns": list(columns)}) + b"\n" if values is not None else b""
        self._file = JournalFile(self.directory, self._header)
        self._spare: JournalFile | None = None  # emptied, for the next rotation
        self._retry_at = 0.0
        # Where the current file's lines begin and end: where the first begins, then where each
        # ends (empty before the first line). The first ``_done`` lines are committed.
        self._bounds = array("q")
        self._done = 0

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def lines(self) -> int:
        """Rows in the current file, committed or not."""
        return max(len(self._bounds) - 1, 0)

    @property
    def waiting(self) -> int:
        """Rows in the current file not committed yet."""
        return max(len(self._bounds) - 1 - self._done, 0)

    def encode(self, record: Any) -> bytes:
        """The record's line: a dict as an object, anything else as the array of its values."""
        if self._values is None or isinstance(record, dict):
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        return orjson.dumps(self._values(record), option=orjson.OPT_APPEND_NEWLINE)

    def append(self, record: Any) -> None:
        """A dict or a dataclass instance (orjson encodes those natively, far faster than asdict)."""
        self.add_line(self.encode(record))

    def add_line(self, line: bytes) -> bool:
        """Copy a line made by :meth:`encode` into the file, to wait there until :meth:`drop`;
        False when the disk had no room for it (the caller still holds it in memory)."""
        start = self.size
        end = start + len(line)
        mapped = self._file.map
        if mapped is None or end >= len(mapped) or not self._file.headed:
            start = self._copy(line)
            if start < 0:
                return False
            end = start + len(line)
        else:
            mapped[end] = 0  # the line's end first: a copy cut short is a torn last line
            mapped[start:end] = line
            self.size = end
        bounds = self._bounds
        if not bounds:
            bounds.append(start)
        bounds.append(end)
        return True

    def peek(self, count: int) -> tuple[bytes, int]:
        """A copy of the first ``count`` rows' lines not committed yet (or all, when fewer
        wait), and how many those are."""
        count = min(count, self.waiting)
        if count == 0:
            return b"", 0
        assert self._file.map is not None
        return self._file.map[self._bounds[self._done] : self._bounds[self._done + count]], count

    def cuts(self, count: int, every: int) -> list[int]:
        """Where, in what :meth:`peek` gives for ``count``, each ``every`` lines end (the
        writer's chunks, without a search for every line's end in Python)."""
        first = self._done
        start = self._bounds[first] if count else 0
        return [end - start for end in self._bounds[first + every : first + min(count, self.waiting) + 1 : every]]

    def drop(self, count: int) -> None:
        """The first ``count`` rows not committed yet are now committed."""
        self._done += max(min(count, self.waiting), 0)

    def _copy(self, data: bytes) -> int:
        """Copy whole lines after the last one (the file's header first, when it has none yet),
        reserving room when needed; where they begin, or -1 when the disk has no room."""
        file = self._file
        header = b"" if file.headed else file.header
        needed = self.size + len(header) + len(data) + 1
        if needed > file.capacity:
            if time.monotonic() < self._retry_at:
                self.unjournalled += 1
                return -1
            try:
                file.reserve(needed)
            except OSError as exc:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                self.unjournalled += 1
                log.error("usage journal %s: no room on disk (%s); rows wait in memory only", file.path, exc)
                return -1
        assert file.map is not None
        if header:
            file.map[self.size + len(header)] = 0
            file.map[self.size : self.size + len(header)] = header
            self.size += len(header)
        file.headed = True
        start, end = self.size, self.size + len(data)
        file.map[end] = 0
        file.map[start:end] = data
        self.size = end
        return start

    def rotate(self, memory: Iterable[bytes] = ()) -> int:
        """Move the rows not committed yet to the other file, then empty this one: under steady
        load the journal is never empty, and would grow forever. ``memory`` (lines the disk had
        no room for) follow them, as far as there is room now; returns how many of those it
        took. A crash in between leaves both files; their rows are replayed once each, as
        inserts skip request ids already written. When the other file has no room for the
        waiting rows, the journal stays on this one."""
        old, old_size, bounds, done = self._file, self.size, self._bounds, self._done
        waiting = self.waiting
        self._file = self._spare or JournalFile(self.directory, self._header)
        self._spare = None
        self.size = self.unjournalled = self._done = 0
        self._bounds = array("q")
        if waiting:
            assert old.map is not None
            start = self._copy(old.map[bounds[done] : old_size])
            if start < 0:  # back to the old file, which still holds them
                self._spare = self._file
                self._file, self.size, self._bounds, self._done = old, old_size, bounds, done
                return 0
            shift = start - bounds[done]
            self._bounds = array("q", [at + shift for at in bounds[done:]])
        old.empty()
        self._spare = old
        taken = 0
        for line in memory:
            if not self.add_line(line):
                break
            taken += 1
        return taken

    def worth_rotating(self, limit: int, in_memory: int = 0) -> bool:
        """Past ``limit`` bytes, with at most half of its rows still to be committed: a writer
        that lags would otherwise copy its whole backlog into every new file. Or rows are held
        in memory (``in_memory``) for lack of room on disk and it is time to try again."""
        if in_memory and time.monotonic() >= self._retry_at:
            return True
        return self.size > limit and 2 * self.waiting <= self.lines

    def records(self) -> Iterator[dict[str, Any]]:
        yield from read_records(self.path)

    def truncate(self) -> None:
        """Empty the file: everything in it is committed."""
        self._file.empty()
        self.size = self.unjournalled = self._done = 0
        self._bounds = array("q")

    def adopt_orphans(self, line_of: Callable[[dict[str, Any]], bytes] | None = None) -> int:
        """Move the records of journals no live process holds into this one, as lines made by
        ``line_of`` (by default :meth:`encode`), to wait for the writer; returns how many. A
        record ``line_of`` cannot take is logged and skipped; a journal whose rows find no
        room on disk stays, for the next start."""
        adopted = 0
        own = {self._file.path} | ({self._spare.path} if self._spare else set())
        for other in sorted(self.directory.glob(PATTERN)):
            if other in own:
                continue
            try:
                fd = os.open(other, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live process owns it
            try:
                taken = self._adopt(other, line_of or self.encode)
                if taken < 0:
                    break
                adopted += taken
                other.unlink()
            finally:
                os.close(fd)
        if adopted:
            log.warning("adopted %d usage rows from journals left by earlier runs", adopted)
        return adopted

    def _adopt(self, other: Path, line_of: Callable[[dict[str, Any]], bytes]) -> int:
        """The records of one orphaned journal, added; -1 when the disk had no room for them all
        (those added are written, and written again, harmlessly, when it is adopted next time)."""
        taken = 0
        for record in read_records(other):
            try:
                line = line_of(record)
            except (LookupError, TypeError, ValueError) as exc:  # a record of another version, or torn
                log.error("%s: usage row that cannot be read skipped (%r): %r", other, exc, record)
                continue
            if not self.add_line(line):
                log.error("usage journal %s left for the next start: no room on disk for its rows", other)
                return -1
            taken += 1
        return taken

    def close(self) -> None:
        """Close; a journal with no line is removed, one with lines stays for the next start,
        cut to what it holds."""
        self._file.close(self.size if self.lines else 0)
        if self._spare is not None:
            self._spare.close(0)
