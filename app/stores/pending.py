"""Usage rows the journal had no room for (a full disk), waiting for the database in memory,
held as their journal lines in one reused buffer.

Held as Python objects (a row's dataclass and its strings, numbers, rates and tags: some
twenty objects a row), the ~500 rows of a batch cost a saturated relay ~10% of its throughput
by themselves, far more than the instructions they took: every request after them allocated
from memory that was no longer in the CPU's caches (bench.ab side by side, rows kept and
dropped without being written: 0.907x; the same rows' lines copied into one buffer: 0.994x).
So a row waits as the bytes of its journal line, copied into a buffer that is reused from
batch to batch, and the writer decodes a batch when it writes it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

INITIAL_BYTES = 1 << 18  # ~450 journal lines; grows when more wait, and shrinks back when none do


class PendingLines:
    """First in, first out: :meth:`add` at the end; :meth:`peek` at the first lines, then
    :meth:`drop` them once they are written (a failed write leaves them where they were)."""

    __slots__ = ("_buffer", "_end", "_ends", "_first", "_start")

    def __init__(self) -> None:
        self._buffer = bytearray(INITIAL_BYTES)
        self._start = 0  # where the first waiting line begins
        self._end = 0  # where the last one ends
        self._ends = array("q")  # where each line ends, from index _first on
        self._first = 0

    def __len__(self) -> int:
        return len(self._ends) - self._first

    def add(self, line: bytes) -> None:
        end = self._end + len(line)
        if end > len(self._buffer):
            self._make_room(len(line))
            end = self._end + len(line)
        self._buffer[self._end : end] = line  # the same length: copied in place
        self._end = end
        self._ends.append(end)

    def peek(self, count: int) -> tuple[bytes, int]:
        """A copy of the first ``count`` lines (or all, when fewer wait), and how many those are."""
        count = min(count, len(self))
        if count == 0:
            return b"", 0
        stop = self._ends[self._first + count - 1]
        with memoryview(self._buffer) as view:
            return bytes(view[self._start : stop]), count

    def cuts(self, count: int, every: int) -> list[int]:
        """Where, in what :meth:`peek` gives for ``count``, each ``every`` lines end."""
        ends = self._ends[self._first + every - 1 : self._first + min(count, len(self)) : every]
        return [end - self._start for end in ends]

    def drop(self, count: int) -> None:
        """Forget the first ``count`` lines (written)."""
        if count <= 0:
            return
        self._first += min(count, len(self))
        if self._first == len(self._ends):
            self._reset()
        else:
            self._start = self._ends[self._first - 1]

    def lines(self) -> Iterator[bytes]:
        """Every waiting line, in order."""
        start = self._start
        for end in self._ends[self._first :]:
            yield bytes(self._buffer[start:end])
            start = end

    def _reset(self) -> None:
        self._start = self._end = self._first = 0
        self._ends = array("q")
        if len(self._buffer) > 4 * INITIAL_BYTES:  # a backlog made it grow: give the memory back
            self._buffer = bytearray(INITIAL_BYTES)

    def _make_room(self, size: int) -> None:
        """Move the waiting lines to the front, into a larger buffer when they fill half of it
        (so that moving them stays rare next to adding)."""
        waiting = self._end - self._start
        capacity = len(self._buffer)
        while waiting + size > capacity // 2:
            capacity *= 2
        buffer = self._buffer if capacity == len(self._buffer) else bytearray(capacity)
        buffer[:waiting] = self._buffer[self._start : self._end]
        self._buffer = buffer
        start = self._start
        self._ends = array("q", [end - start for end in self._ends[self._first :]])
        self._start, self._end, self._first = 0, waiting, 0
