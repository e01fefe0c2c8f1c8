"""A streamed JSON array split into its elements as each one completes: what Gemini's
``streamGenerateContent`` sends without ``alt=sse``."""

from __future__ import annotations

import re

from app.errors import UpstreamLimitExceeded

_SPECIAL = re.compile(rb'["\\{}\[\]]')


class JSONArraySplitter:
    """Splits a streamed JSON array (``[{...}\\n,\\r\\n{...}]``, what streamGenerateContent
    sends without alt=sse) into its elements as each one completes. A lone object is one
    element. Only brackets outside strings count, so text holding braces splits nowhere."""

    def __init__(self, limit: int = 8 << 20) -> None:
        self.limit = limit  # bytes of one element
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already looked at
        self._depth = 0
        self._base: int | None = None  # depth at which elements start: 1 in an array, 0 alone
        self._start = -1  # where the current element began, or -1 between elements
        self._in_string = False
        self._skip = -1  # position of a byte escaped by a backslash

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        out: list[bytes] = []
        for match in _SPECIAL.finditer(self._buffer, self._scanned):
            position = match.start()
            if position == self._skip:
                continue
            byte = self._buffer[position : position + 1]
            if self._in_string:
                if byte == b"\\":
                    self._skip = position + 1
                elif byte == b'"':
                    self._in_string = False
            elif byte == b'"':
                self._in_string = True
            elif byte in (b"{", b"["):
                if self._base is None:
                    self._base = 1 if byte == b"[" else 0
                if self._depth == self._base:
                    self._start = position
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == self._base and self._start >= 0:
                    out.append(self._buffer[self._start : position + 1])
                    self._start = -1
        self._trim()
        return out

    def _trim(self) -> None:
        keep = self._start if self._start >= 0 else len(self._buffer)
        self._buffer = self._buffer[keep:]
        self._skip = self._skip - keep if self._skip >= keep else -1
        self._start = 0 if self._start >= 0 else -1
        self._scanned = len(self._buffer)
        if len(self._buffer) > self.limit:
            raise UpstreamLimitExceeded(
                f"an element of the streamed array is longer than {self.limit} bytes (UPSTREAM_MAX_EVENT_BYTES)"
            )

    def close(self) -> list[bytes]:
        """What is left: an unfinished element, handed on so that parsing it fails loudly."""
        rest, self._buffer = self._buffer.strip(), b""
        return [rest] if rest and self._start >= 0 else []
