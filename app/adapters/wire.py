"""Byte-stream framings the providers use: Server-Sent Events and newline-delimited JSON.

Both parsers take raw chunks as they arrive (split anywhere, even inside a line ending) and
never assume compact JSON: real providers pad ``data:`` lines, send ``:`` comments, use
``\\r\\n`` and may close a stream without a final blank line. Neither holds more than
``limit`` bytes of one line or event: a stream that never ends its line ends with an error.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from app.errors import UpstreamLimitExceeded

MAX_EVENT_BYTES = 8 << 20
T = TypeVar("T")


def too_long(limit: int, source: str) -> UpstreamLimitExceeded:
    return UpstreamLimitExceeded(
        f"{source}: a line or event of the stream is longer than {limit} bytes (UPSTREAM_MAX_EVENT_BYTES)"
    )


@dataclass(frozen=True, slots=True)
class SSEvent:
    event: str | None
    data: str


class SSEParser:
    """Incremental SSE parser: ``feed(bytes)`` returns the events completed by those bytes."""

    def __init__(self, limit: int = MAX_EVENT_BYTES, source: str = "upstream") -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._size = 0  # of the event's data so far
        self.limit = limit
        self.source = source

    def feed(self, chunk: bytes) -> list[SSEvent]:
        buffer = self._buffer + chunk
        lines = buffer.splitlines(keepends=True)
        # A line is complete once its ending arrived; a lone \r may be half of a \r\n.
        if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
            self._buffer = lines.pop()
            if len(self._buffer) > self.limit:
                raise too_long(self.limit, self.source)
        else:
            self._buffer = b""
        events: list[SSEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"), events)
        return events

    def close(self) -> list[SSEvent]:
        events: list[SSEvent] = []
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r\n").decode("utf-8", "replace"), events)
            self._buffer = b""
        self._dispatch(events)
        return events

    def _line(self, line: str, events: list[SSEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return  # a comment, e.g. OpenRouter's ": OPENROUTER PROCESSING"
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(value)
            if self._size > self.limit:
                raise too_long(self.limit, self.source)
            self._data.append(value)
        elif name == "event":
            self._event = value

    def _dispatch(self, events: list[SSEvent]) -> None:
        if self._data:
            events.append(SSEvent(self._event, "\n".join(self._data)))
        self._event = None
        self._data = []
        self._size = 0


class Splitter(Protocol[T]):
    """An incremental parser: ``feed`` returns what the bytes completed, ``close`` the rest."""

    def feed(self, chunk: bytes) -> list[T]: ...

    def close(self) -> list[T]: ...


async def split(chunks: AsyncGenerator[bytes, None], splitter: Splitter[T]) -> AsyncGenerator[T, None]:
    """Every item the splitter finds in the chunks; the chunks are closed however it ends."""
    try:
        async for chunk in chunks:
            for item in splitter.feed(chunk):
                yield item
        for item in splitter.close():
            yield item
    finally:
        await chunks.aclose()


def iter_sse(
    chunks: AsyncGenerator[bytes, None], limit: int = MAX_EVENT_BYTES, source: str = "upstream"
) -> AsyncGenerator[SSEvent, None]:
    return split(chunks, SSEParser(limit, source))


async def iter_event_batches(
    chunks: AsyncGenerator[bytes, None], limit: int = MAX_EVENT_BYTES, source: str = "upstream"
) -> AsyncGenerator[list[bytes | SSEvent], None]:
    """The complete SSE events of each network chunk, for relaying them without a parse.

    While the stream ends its lines with ``\n`` an event is its raw block (the bytes between
    blank lines, e.g. ``data: {...}``); from the first ``\r`` on (``\r\n`` framing) the rest is
    parsed into SSEvents, which callers handle the careful way."""
    buffer = b""
    parser: SSEParser | None = None
    try:
        async for chunk in chunks:
            if parser is None and b"\r" in chunk:
                parser = SSEParser(limit, source)
                chunk, buffer = buffer + chunk, b""
            if parser is not None:
                batch: list[bytes | SSEvent] = list(parser.feed(chunk))
            else:
                *blocks, buffer = (buffer + chunk).split(b"\n\n") if buffer else chunk.split(b"\n\n")
                if len(buffer) > limit:
                    raise too_long(limit, source)
                batch = list(blocks)
            if batch:
                yield batch
        rest: list[bytes | SSEvent] = list(parser.close()) if parser is not None else []
        if parser is None and buffer.strip():
            rest.append(buffer.strip(b"\n"))
        if rest:
            yield rest
    finally:
        await chunks.aclose()


def parse_block(block: bytes) -> list[SSEvent]:
    """One raw event block, parsed the careful way."""
    parser = SSEParser()
    return parser.feed(block + b"\n\n") + parser.close()


class NDJSONSplitter:
    """Incremental splitter for newline-delimited JSON; blank lines are skipped."""

    def __init__(self, limit: int = MAX_EVENT_BYTES, source: str = "upstream") -> None:
        self._buffer = b""
        self.limit = limit
        self.source = source

    def feed(self, chunk: bytes) -> list[bytes]:
        parts = (self._buffer + chunk).split(b"\n")
        self._buffer = parts.pop()
        if len(self._buffer) > self.limit:
            raise too_long(self.limit, self.source)
        return _nonblank(parts)

    def close(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        return _nonblank([rest])


def _nonblank(parts: Iterable[bytes]) -> list[bytes]:
    return [p for p in (part.strip() for part in parts) if p]


def iter_ndjson(
    chunks: AsyncGenerator[bytes, None], limit: int = MAX_EVENT_BYTES, source: str = "upstream"
) -> AsyncGenerator[bytes, None]:
    return split(chunks, NDJSONSplitter(limit, source))
