"""The usage journal: every usage row is copied into a file before anything else happens to
it, so a row survives the database being away, the memory buffer being full, and the process
being killed. The writer empties the journal once its rows are committed.

Each process writes its own files (``usage-journal.<pid>.<id>.jsonl``) and holds an exclusive
``flock`` on them; at start a process adopts every journal in the directory that nobody holds
(left by a crash, or by a worker that has gone), so their rows are written exactly once
(inserts are idempotent on ``request_id``). A line is one record: a JSON object, or an array
under the file's header line ``{"columns": [...]}``. A file's lines end at its first zero byte.

A file is mapped into memory (``MAP_SHARED``) and a line is copied into the mapping when it is
added: it is in the kernel's page cache at once, where it outlives the process, so no request
is answered before its row is on file, without a system call per row. Like appends with
``write()``, the kernel writes the pages out in its own time: rows survive a killed process,
not a power cut. The file's blocks are reserved ahead (``posix_fallocate``) in steps of
``GROW_BYTES``, so a full disk shows as an error when a step is reserved instead of as a crash
when a page is first written.

The same pages serve again and again: emptying a file (everything in it committed) writes a
zero byte where its lines begin, and under steady load, when it is never empty, the rows not
committed move to the process's second file and the first one is emptied, to be used next.
Fresh pages cost a page fault each (~4 us; the relay spent ~1.7% of its throughput on them
when every rotation started a new file), and pages out of the CPU's caches cost almost as
much: the writer rotates after ~512 KB (a few batches), so the lines are copied into the same
~1 MB again and again, not through 8 MB (relay with rows 1.013x, side by side). Each line is
preceded on disk by the zero byte that ends it: a process killed mid-copy leaves a torn last
line, never one followed by older ones.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("llm_relay.journal")
PATTERN = "usage-journal.*.jsonl"
GROW_BYTES = 1 << 20  # reserved at a time (~1,800 rows)
SHRINK_BYTES = 32 << 20  # an emptied file larger than this (after a backlog) gives its pages back
RETRY_SECONDS = 1.0  # after a failed reservation (disk full), rows stay in memory this long before trying again


class _File:
    """One journal file of this process, locked and mapped."""

    def __init__(self, directory: Path, header: bytes) -> None:
        self.path = directory / f"usage-journal.{os.getpid()}.{uuid.uuid4().hex[:8]}.jsonl"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.map: mmap.mmap | None = None
        self.header = header  # goes before the first array line
        self.headed = not header

    @property
    def capacity(self) -> int:
        return 0 if self.map is None else len(self.map)

    def reserve(self, needed: int) -> None:
        """Hold at least ``needed`` bytes (raises OSError when the disk has no room)."""
        grown = needed + GROW_BYTES - needed % GROW_BYTES
        os.posix_fallocate(self.fd, 0, grown)
        if self.map is not None:
            self.map.close()
        self.map = mmap.mmap(self.fd, grown)

    def empty(self) -> None:
        """Forget its lines; a file a backlog made large gives back its disk and memory."""
        self.headed = not self.header
        if self.capacity > SHRINK_BYTES:
            assert self.map is not None
            self.map.close()
            self.map = None
            os.ftruncate(self.fd, 0)
        elif self.map is not None:
            self.map[0] = 0

    def close(self, used: int) -> None:
        """Close, keeping only its first ``used`` bytes; removed when that is none."""
        if self.map is not None:
            self.map.close()
            self.map = None
        os.ftruncate(self.fd, used)
        os.close(self.fd)
        if not used:
            self.path.unlink(missing_ok=True)


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
        self.lines = 0  # rows added since the last emptying or rotation
        self.unjournalled = 0  # rows that found no room on disk (kept only in memory)
        self._values = values
        self._header = orjson.dumps({"columns": list(columns)}) + b"\n" if values is not None else b""
        self._file = _File(self.directory, self._header)
        self._spare: _File | None = None  # emptied, for the next rotation
        self._retry_at = 0.0

    @property
    def path(self) -> Path:
        return self._file.path

    def encode(self, record: Any) -> bytes:
        """The record's line: a dict as an object, anything else as the array of its values."""
        if self._values is None or isinstance(record, dict):
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        return orjson.dumps(self._values(record), option=orjson.OPT_APPEND_NEWLINE)

    def append(self, record: Any) -> None:
        """A dict or a dataclass instance (orjson encodes those natively, far faster than asdict)."""
        self.add_line(self.encode(record))

    def add_line(self, line: bytes) -> bool:
        """Copy a line made by :meth:`encode` into the file; False when the disk had no room
        for it (the caller still holds it in memory)."""
        start = self.size
        end = start + len(line)
        file = self._file
        mapped = file.map
        if mapped is None or end >= len(mapped) or (not file.headed and line[:1] == b"["):
            return self._add_slowly(line)
        mapped[end] = 0  # the line's end first: a copy cut short is a torn last line
        mapped[start:end] = line
        self.size = end
        self.lines += 1
        return True

    def _add_slowly(self, line: bytes) -> bool:
        """The first line of a file (after its header, when it needs one), or one that needs
        more room reserved first."""
        file = self._file
        header = file.header if not file.headed and line[:1] == b"[" else b""
        needed = self.size + len(header) + len(line) + 1
        if needed > file.capacity:
            if time.monotonic() < self._retry_at:
                self.unjournalled += 1
                return False
            try:
                file.reserve(needed)
            except OSError as exc:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                self.unjournalled += 1
                log.error("usage journal %s: no room on disk (%s); rows wait in memory only", file.path, exc)
                return False
        assert file.map is not None
        if header:
            file.map[self.size + len(header)] = 0
            file.map[self.size : self.size + len(header)] = header
            file.headed = True
            self.size += len(header)
        end = self.size + len(line)
        file.map[end] = 0
        file.map[self.size : end] = line
        self.size = end
        self.lines += 1
        return True

    def rotate(self, keep: Iterable[bytes]) -> None:
        """Move ``keep`` (the lines, from :meth:`encode`, of the rows not committed yet) to the
        other file and empty this one: under steady load the journal is never empty, and would
        grow forever. A crash in between leaves both; their rows are replayed once each, as
        inserts skip request ids already written. When the disk has no room for all of
        ``keep``, the old file keeps its lines and is closed (unlocked: the next process to
        start adopts it)."""
        old, old_size = self._file, self.size
        self._file = self._spare or _File(self.directory, self._header)
        self._spare = None
        self.size = self.lines = self.unjournalled = 0
        kept = all([self.add_line(line) for line in keep])
        if kept:
            old.empty()
            self._spare = old
        else:
            old.close(old_size)

    def worth_rotating(self, limit: int, pending: int) -> bool:
        """Past ``limit`` bytes, with at most half of them still to be committed (``pending``
        rows): a writer that lags would otherwise copy its whole backlog into every new file.
        Or rows found no room on disk and it is time to try again: the other file takes them."""
        if self.unjournalled and time.monotonic() >= self._retry_at:
            return True
        return self.size > limit and 2 * pending <= self.lines

    def records(self) -> Iterator[dict[str, Any]]:
        yield from _read(self.path)

    def truncate(self) -> None:
        """Empty the file: everything in it is committed."""
        self._file.empty()
        self.size = self.lines = self.unjournalled = 0

    def adopt_orphans(self) -> int:
        """Move the records of journals no live process holds into this one; returns how many."""
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
                for record in _read(other):
                    self.append(record)
                    adopted += 1
                other.unlink()
            finally:
                os.close(fd)
        if adopted:
            log.warning("adopted %d usage rows from journals left by earlier runs", adopted)
        return adopted

    def close(self) -> None:
        """Close; a journal with no line is removed, one with lines stays for the next start,
        cut to what it holds."""
        self._file.close(self.size if self.lines else 0)
        if self._spare is not None:
            self._spare.close(0)


def _read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record as a dict, whether it was written as one or as an array under a header.
    The file's lines end at its first zero byte."""
    columns: list[str] | None = None
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            end = line.find(b"\0")
            if end >= 0:
                line = line[:end]
            if line.strip():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    # A process killed mid-copy leaves at most one torn line, at the end.
                    log.error("%s:%d: unreadable usage row skipped", path, number)
                    record = None
                if isinstance(record, list):
                    if columns is None or len(record) != len(columns):
                        log.error("%s:%d: usage row that does not match its header line skipped", path, number)
                    else:
                        yield dict(zip(columns, record, strict=True))
                elif isinstance(record, dict) and record.keys() == {"columns"}:
                    columns = record["columns"]
                elif record is not None:
                    yield record
            if end >= 0:
                return
