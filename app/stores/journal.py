"""The usage journal: every usage row is copied into a file before anything else happens to
it, so a row survives the database being away, the memory buffer being full, and the process
being killed. The writer empties the journal once its rows are committed.

Each process writes its own file (``usage-journal.<pid>.<id>.jsonl``) and holds an exclusive
``flock`` on it; at start a process adopts every journal in the directory that nobody holds
(left by a crash, or by a worker that has gone), so their rows are written exactly once
(inserts are idempotent on ``request_id``). A line is one record: a JSON object, or an array
under the file's header line ``{"columns": [...]}``.

The file is mapped into memory (``MAP_SHARED``) and a line is copied into the mapping when it
is added: it is in the kernel's page cache at once, where it outlives the process, so no
request is answered before its row is on file, without a system call per row (appends with
``write()`` once per loop turn cost the relay ~3% of its throughput; bench.ab side by side).
Like those appends, the kernel writes the pages out in its own time: rows survive a killed
process, not a power cut. The file's blocks are reserved ahead (``posix_fallocate``) in steps
of ``GROW_BYTES``, so a full disk shows as an error when a step is reserved instead of as a
crash when a page is first written; the unused rest of a reserved step reads as zero bytes,
where a reader stops. The writer empties the file when it has written everything, and under
steady load, when it never has, starts a new one past ``ROTATE_BYTES``.
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
GROW_BYTES = 1 << 20  # reserved at a time (~1,800 rows); the rest of a step reads as zeros
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
        self.size = 0  # bytes in the file: where the next line goes
        self.lines = 0  # rows added since the last truncation or rotation
        self.unjournalled = 0  # rows that found no room on disk (kept only in memory)
        self._values = values
        self._header = orjson.dumps({"columns": list(columns)}) + b"\n" if values is not None else b""
        self._header_due = values is not None  # before the first array in a new or emptied file
        self._map: mmap.mmap | None = None
        self._retry_at = 0.0
        self.path, self._fd = self._open()

    def _open(self) -> tuple[Path, int]:
        path = self.directory / f"usage-journal.{os.getpid()}.{uuid.uuid4().hex[:8]}.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return path, fd

    def _reserve(self, needed: int) -> bool:
        """Make the mapping hold at least ``needed`` bytes; False when the disk has no room."""
        capacity = len(self._map) if self._map is not None else 0
        if needed <= capacity:
            return True
        if time.monotonic() < self._retry_at:
            return False
        grown = max(needed, capacity) + GROW_BYTES - max(needed, capacity) % GROW_BYTES
        try:
            os.posix_fallocate(self._fd, 0, grown)
        except OSError as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            log.error("usage journal %s: no room on disk (%s); rows wait in memory only", self.path, exc)
            return False
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, grown)
        return True

    def rotate(self, keep: Iterable[bytes]) -> None:
        """Start a new file holding only ``keep`` (the lines, from :meth:`encode`, of the rows
        not committed yet) and delete the old one: under steady load the journal is never
        empty, so it is never truncated, and would grow forever. A crash between the two steps
        leaves both files; their rows are replayed once each, as inserts skip request ids
        already written. When the disk has no room for all of ``keep``, the old file stays too
        (unlocked: the next process to start adopts it)."""
        old_path, old_fd, old_map, old_size = self.path, self._fd, self._map, self.size
        self.path, self._fd = self._open()
        self._map = None
        self.size = self.lines = self.unjournalled = 0
        self._header_due = self._values is not None
        kept = all([self.add_line(line) for line in keep])
        if old_map is not None:
            old_map.close()
        if kept:
            old_path.unlink(missing_ok=True)
        else:
            os.ftruncate(old_fd, old_size)  # its lines without the zeros of its reserved rest
        os.close(old_fd)

    def append(self, record: Any) -> None:
        """A dict or a dataclass instance (orjson encodes those natively, far faster than asdict)."""
        self.add_line(self.encode(record))

    def encode(self, record: Any) -> bytes:
        """The record's line: a dict as an object, anything else as the array of its values."""
        if self._values is None or isinstance(record, dict):
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        return orjson.dumps(self._values(record), option=orjson.OPT_APPEND_NEWLINE)

    def add_line(self, line: bytes) -> bool:
        """Copy a line made by :meth:`encode` into the file; False when the disk had no room
        for it (the caller still holds it in memory)."""
        if self._header_due and line[:1] == b"[":
            if not self._copy(self._header):
                self.unjournalled += 1
                return False
            self._header_due = False
        start = self.size
        end = start + len(line)
        mapped = self._map
        if mapped is not None and end <= len(mapped):
            mapped[start:end] = line
            self.size = end
        elif not self._copy(line):
            self.unjournalled += 1
            return False
        self.lines += 1
        return True

    def _copy(self, data: bytes) -> bool:
        end = self.size + len(data)
        if not self._reserve(end):
            return False
        assert self._map is not None
        self._map[self.size : end] = data
        self.size = end
        return True

    def worth_rotating(self, limit: int, pending: int) -> bool:
        """Past ``limit`` bytes, with at most half of them still to be committed (``pending``
        rows): a writer that lags would otherwise copy its whole backlog into every new file.
        Or rows found no room on disk and it is time to try again: a new file takes them all."""
        if self.unjournalled and time.monotonic() >= self._retry_at:
            return True
        return self.size > limit and 2 * pending <= self.lines

    def records(self) -> Iterator[dict[str, Any]]:
        yield from _read(self.path)

    def truncate(self) -> None:
        """Empty the file (everything in it is committed): its pages are dropped, and the file
        is reserved again up to where it was."""
        if self._map is not None:
            reserved = len(self._map)
            os.ftruncate(self._fd, 0)
            try:
                os.posix_fallocate(self._fd, 0, reserved)
            except OSError:  # no room: map again, smaller, when the next line comes
                self._map.close()
                self._map = None
        self.size = self.lines = self.unjournalled = 0
        self._header_due = self._values is not None

    def adopt_orphans(self) -> int:
        """Move the records of journals no live process holds into this one; returns how many."""
        adopted = 0
        for other in sorted(self.directory.glob(PATTERN)):
            if other == self.path:
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
        """Close; an empty journal is removed, a non-empty one stays for the next start, cut
        to what it holds."""
        if self._map is not None:
            self._map.close()
            self._map = None
        os.ftruncate(self._fd, self.size)
        os.close(self._fd)
        if self.size == 0:
            self.path.unlink(missing_ok=True)


def _read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record as a dict, whether it was written as one or as an array under a header.
    The file ends at its first zero byte (the reserved rest of a journal whose process died)."""
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
