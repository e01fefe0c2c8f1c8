"""One file of the usage journal (:mod:`app.stores.journal`), locked, mapped and reused.

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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("llm_relay.journal")
PATTERN = "usage-journal.*.jsonl"
GROW_BYTES = 1 << 20  # reserved at a time (~1,800 rows)
SHRINK_BYTES = 32 << 20  # an emptied file larger than this (after a backlog) gives its pages back


class JournalFile:
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


def read_records(path: Path) -> Iterator[dict[str, Any]]:
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
