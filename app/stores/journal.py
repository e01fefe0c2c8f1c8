"""The usage journal: every usage row is appended to a file before anything else happens to
it, so a row survives the database being away, the memory buffer being full, and the process
being killed. The writer empties the journal once its rows are committed.

Each process writes its own file (``usage-journal.<pid>.<id>.jsonl``) and holds an exclusive
``flock`` on it; at start a process adopts every journal in the directory that nobody holds
(left by a crash, or by a worker that has gone), so their rows are written exactly once
(inserts are idempotent on ``request_id``). A line is one record: a JSON object, or an array
under the file's header line ``{"columns": [...]}``. Writes are plain appends without fsync: they
survive a killed process, not a power cut. Rows of one event-loop turn leave in one write
(:meth:`add`, then :meth:`flush` at the end of the turn, and before any byte of a reply leaves
the process: see ``app/http/protocol.py``), so no request is answered before its row is in
the file. The writer empties the file when it has written
everything, and under steady load, when it never has, starts a new one past ``ROTATE_BYTES``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("llm_relay.journal")
PATTERN = "usage-journal.*.jsonl"


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
        self.path, self._fd = self._open()
        self.size = 0  # bytes appended since the last truncation or rotation
        self.lines = 0  # rows appended since then
        self._held: list[bytes] = []  # added this loop turn, not written yet
        self._values = values
        self._header = orjson.dumps({"columns": list(columns)}) + b"\n" if values is not None else b""
        self._header_due = values is not None  # before the first array in a new or emptied file

    def _open(self) -> tuple[Path, int]:
        path = self.directory / f"usage-journal.{os.getpid()}.{uuid.uuid4().hex[:8]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return path, fd

    def rotate(self, keep: Iterable[bytes]) -> None:
        """Start a new file holding only ``keep`` (the lines, from :meth:`encode`, of the rows
        not committed yet) and delete the old one: under steady load the journal is never
        empty, so it is never truncated, and would grow forever. A crash between the two steps
        leaves both files; their rows are replayed once each, as inserts skip request ids
        already written."""
        self.flush()
        old_path, old_fd = self.path, self._fd
        self.path, self._fd = self._open()
        self.size = self.lines = 0
        self._header_due = self._values is not None
        for line in keep:
            self.add_line(line)
        self.flush()
        os.close(old_fd)
        old_path.unlink(missing_ok=True)

    def append(self, record: Any) -> None:
        """A dict or a dataclass instance (orjson encodes those natively, far faster than asdict),
        written at once."""
        self.add(record)
        self.flush()

    def encode(self, record: Any) -> bytes:
        """The record's line: a dict as an object, anything else as the array of its values."""
        if self._values is None or isinstance(record, dict):
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        return orjson.dumps(self._values(record), option=orjson.OPT_APPEND_NEWLINE)

    def add(self, record: Any) -> bool:
        """Like :meth:`append`, but held until :meth:`flush`; True when it is the first one held."""
        return self.add_line(self.encode(record))

    def add_line(self, line: bytes) -> bool:
        """Hold a line made by :meth:`encode` until :meth:`flush`; True when it is the first one held."""
        held = self._held
        first = not held
        if self._header_due and line[:1] == b"[":
            self._header_due = False
            held.append(self._header)
            self.size += len(self._header)
        held.append(line)
        self.size += len(line)
        self.lines += 1
        return first

    def flush(self) -> None:
        held = self._held
        if held:
            os.write(self._fd, held[0] if len(held) == 1 else b"".join(held))
            held.clear()

    def worth_rotating(self, limit: int, pending: int) -> bool:
        """Past ``limit`` bytes, with at most half of them still to be committed (``pending``
        rows): a writer that lags would otherwise copy its whole backlog into every new file."""
        return self.size > limit and 2 * pending <= self.lines

    def records(self) -> Iterator[dict[str, Any]]:
        self.flush()
        yield from _read(self.path)

    def truncate(self) -> None:
        self.flush()
        os.ftruncate(self._fd, 0)
        self.size = self.lines = 0
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
        """Close; an empty journal is removed, a non-empty one stays for the next start."""
        self.flush()
        empty = self.size == 0 and os.fstat(self._fd).st_size == 0
        os.close(self._fd)
        if empty:
            self.path.unlink(missing_ok=True)


def _read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record as a dict, whether it was written as one or as an array under a header."""
    columns: list[str] | None = None
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                # A process killed mid-write leaves at most one torn line, at the end.
                log.error("%s:%d: unreadable usage row skipped", path, number)
                continue
            if isinstance(record, list):
                if columns is None or len(record) != len(columns):
                    log.error("%s:%d: usage row that does not match its header line skipped", path, number)
                    continue
                yield dict(zip(columns, record, strict=True))
            elif isinstance(record, dict) and record.keys() == {"columns"}:
                columns = record["columns"]
            else:
                yield record
