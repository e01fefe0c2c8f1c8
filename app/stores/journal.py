"""The usage journal: each row's line is appended to a file before its request is answered and
stays there until the database holds the row; the writer reads its batches back from the file,
so rows waiting out an outage take disk, not memory.

An append is one ``write()`` to a file opened with ``O_APPEND``: once it returns, the line is in
the kernel's page cache and outlives the process (not a power cut: there is no fsync). A line is
one JSON object, so an unreadable line (a disk error, a kill mid-append) costs that line only: it
is logged with its file and byte offset, and the file is kept aside (``*.damaged``), not removed.

Each process appends to files of its own (``usage-journal.<pid>.<id>.jsonl``), locked with
``flock`` while it lives. The file is emptied whenever every row is committed; under steady load
a large file, once half committed, is followed by a new one and removed when its rows are in. At
start a process adopts the journals nobody holds (a crash's, a gone worker's) as they are, never
copying their rows: a kill during start-up leaves the same files behind. Inserts are idempotent
on ``request_id``, so a row read again after a kill is stored once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("llm_relay.journal")
PATTERN = "usage-journal.*.jsonl"
ROTATE_BYTES = 4 << 20  # a file this large and at least half committed is followed by a new one
READ_BYTES = 1 << 10  # per row of a batch read back (a line is ~1 KB; a longer one is read whole)
SCAN_BYTES = 1 << 20  # read at a time when an adopted file's lines are counted


@dataclass(eq=False)
class JournalFile:
    path: Path
    fd: int
    end: int = 0  # bytes of lines in the file
    done: int = 0  # where the first line not committed yet begins
    read: int = 0  # lines before this offset were read once (their damage, if any, logged)
    damaged: bool = False  # something in it could not be read: kept aside once done
    adopted: bool = False  # left by another process: its lines are read as they are, never trusted
    legacy: bool = False  # written by an earlier version (see _extent)
    columns: list[str] | None = None  # an earlier version's header line, naming the values of its array lines


@dataclass
class Batch:
    """Lines read back, and where the writer is in their file once their rows are committed."""

    file: JournalFile | None  # None: lines held in memory (app/stores/usage.py)
    lines: list[bytes]
    start: int = 0
    stop: int = 0

    @property
    def own(self) -> bool:
        """Lines this process wrote: each is whole and one usage row's JSON object."""
        return self.file is None or not self.file.adopted

    def rows(self, convert: Callable[[Any], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The rows, decoded one at a time as they are written (a batch of decoded rows takes
        several times the memory of its lines), each record made a row by ``convert`` (which
        raises for one it cannot take). An unreadable line is skipped, and logged once."""
        file, at = self.file, self.start
        for line in self.lines:
            start, at = at, at + len(line) + 1
            try:
                if file is not None and at > file.end:
                    raise ValueError("torn last line: the process was killed while appending it")
                record = orjson.loads(line)
                if file is not None and file.legacy:  # arrays of values under a header line naming them
                    if isinstance(record, dict) and record.keys() == {"columns"}:
                        file.columns = record["columns"]
                        continue
                    record = dict(zip(file.columns or (), record, strict=True))
                yield convert(record)
            except (LookupError, TypeError, ValueError) as exc:  # orjson's JSONDecodeError is a ValueError
                if file is None:
                    log.error("usage row held in memory skipped, it cannot be read (%r): %r", exc, line)
                elif start >= file.read:
                    log.error("%s, byte %d: unreadable usage row skipped (%r)", file.path, start, exc)
                    file.damaged = True
        if file is not None:
            file.read = max(file.read, self.stop)


class Journal:
    def __init__(self, directory: str | Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.files = [self._new_file()]  # oldest first; lines are appended to the last one
        self.waiting = 0  # lines in all files not committed yet
        self._refusing = False  # the last append found no room on disk (said once, until one fits)

    @property
    def path(self) -> Path:
        return self.files[-1].path

    def _new_file(self) -> JournalFile:
        path = self.directory / f"usage-journal.{os.getpid()}.{uuid.uuid4().hex[:8]}.jsonl"
        new = path.with_suffix(".new")  # locked before it is named as a journal, so no other process adopts it
        fd = os.open(new, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        new.rename(path)
        return JournalFile(path, fd)

    def append(self, line: bytes) -> bool:
        """Append one line; False when the disk has no room for it (nothing of it stays on file)."""
        file = self.files[-1]
        if file.end >= self.rotate_bytes and 2 * file.done >= file.end:
            file = self._rotate()
        try:
            written = os.write(file.fd, line)
        except OSError as exc:
            written, reason = 0, repr(exc)
        else:
            reason = "written in part"
        if written != len(line):
            with contextlib.suppress(OSError):  # shrinking needs no room on disk
                os.ftruncate(file.fd, file.end)  # a line cut short would be a torn line mid-file
            if not self._refusing:
                log.error("usage journal %s: no room on disk (%s); rows wait in memory only", file.path, reason)
            self._refusing = True
            return False
        if self._refusing:
            log.warning("usage journal %s takes rows again", file.path)
            self._refusing = False
        file.end += written
        self.waiting += 1
        return True

    def _rotate(self) -> JournalFile:
        try:
            self.files.append(self._new_file())
        except OSError as exc:  # no room for a new file: keep appending to this one
            log.error("usage journal: no new file in %s (%r)", self.directory, exc)
        return self.files[-1]

    def take(self, limit: int) -> Batch | None:
        """Up to ``limit`` lines not committed yet, from the oldest file that has any; None when
        all are committed."""
        file = next((f for f in self.files if f.done < f.end), None)
        if file is None:
            return None
        size = limit * READ_BYTES
        while True:
            data = os.pread(file.fd, min(size, file.end - file.done), file.done)
            whole = data.rfind(b"\n") + 1
            if whole or file.done + len(data) >= file.end:
                break
            size *= 2  # a line longer than what was read
        lines = data.split(b"\n")[:-1][:limit] if whole else [data]  # no end at all: a torn last line
        stop = min(file.done + sum(map(len, lines)) + len(lines), file.end)
        return Batch(file, lines, file.done, stop)

    def commit(self, batch: Batch) -> None:
        """The batch's rows are in the database; a file read to its end is done with."""
        file = batch.file
        assert file is not None
        file.done = batch.stop
        self.waiting -= len(batch.lines)
        if file.done >= file.end and file is not self.files[-1]:
            self.files.remove(file)
            self._remove(file)

    def empty(self) -> None:
        """Everything is committed: the file appended to starts over, empty."""
        file = self.files[-1]
        if file.end and not self.waiting:
            try:
                os.ftruncate(file.fd, 0)
            except OSError as exc:  # then it grows until it is rotated
                log.error("usage journal %s could not be emptied: %r", file.path, exc)
                return
            file.end = file.done = 0

    def adopt_orphans(self) -> int:
        """Take on, as they are, the journals no live process holds; returns their lines."""
        own = {f.path for f in self.files}
        adopted: list[JournalFile] = []
        for path in sorted(self.directory.glob(PATTERN)):
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:  # removed meanwhile by the process that adopted it
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_nlink == 0:  # adopted, written and removed by another process meanwhile
                    raise BlockingIOError
            except BlockingIOError:  # a live process holds it
                os.close(fd)
                continue
            file = JournalFile(path, fd, adopted=True)
            file.end, lines, file.legacy = _extent(fd)
            if not file.end:
                self._remove(file)
                continue
            adopted.append(file)
            self.waiting += lines
        self.files[:0] = adopted
        if adopted:
            log.warning("adopted %d usage journals left by earlier runs: %d rows", len(adopted), self.waiting)
        self._remove_unnamed()
        return self.waiting

    def _remove_unnamed(self) -> None:
        """A process killed between making a file and naming it a journal leaves it empty (lines
        go in once it is named): such a file nobody holds is removed, once it is a minute old (a
        process may be between making its file and locking it)."""
        for path in self.directory.glob(PATTERN.removesuffix(".jsonl") + ".new"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # named meanwhile by the process making it
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                made = os.fstat(fd)
                if not made.st_size and made.st_mtime < time.time() - 60:
                    path.unlink(missing_ok=True)
            except OSError:  # a live process is making it (BlockingIOError), or it cannot go: it stays
                pass
            finally:
                os.close(fd)

    def close(self) -> None:
        """Close every file: one whose rows are all committed is removed (or kept aside as
        damaged); one with rows waiting stays for the next start."""
        for file in self.files:
            if file.done >= file.end:
                self._remove(file)
            else:
                os.close(file.fd)
        self.files = []

    def _remove(self, file: JournalFile) -> None:
        """Removed while still locked, so no other process adopts it meanwhile."""
        try:
            if file.damaged:
                aside = file.path.with_name(file.path.name + ".damaged")
                file.path.rename(aside)
                log.error("usage journal %s had unreadable lines (logged above): kept aside as %s", file.path, aside)
            else:
                file.path.unlink(missing_ok=True)
        except OSError as exc:  # it stays, and is read again at the next start: its rows are stored once
            log.error("usage journal %s could not be removed: %r", file.path, exc)
        os.close(file.fd)


def _extent(fd: int) -> tuple[int, int, bool]:
    """Where an adopted file's lines end, how many there are (a torn last one included), and
    whether an earlier version wrote it (its first line a header): such a file ends at its first
    zero byte, as that version reused its files and what follows was committed before."""
    size = os.fstat(fd).st_size
    legacy = os.pread(fd, 10, 0)[1:] == b'"columns"'
    end, lines = 0, 0
    while end < size:
        chunk = os.pread(fd, min(SCAN_BYTES, size - end), end)
        stop = chunk.find(b"\0") if legacy else -1
        if stop >= 0:
            chunk, size = chunk[:stop], end + stop
        lines += chunk.count(b"\n")
        end += len(chunk)
    if end and os.pread(fd, 1, end - 1) != b"\n":
        lines += 1
    return end, lines, legacy
