"""A provider's own SSE events relayed to a client of the same API, as :class:`Frames` batched
per network chunk. The adapter's reader looks at each event only for what the relay needs:
the usage it reports, whether it carried a token, an error (raised), the end of the reply."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from app.adapters.wire import SSEvent, parse_block
from app.errors import UpstreamError, UpstreamProtocolError
from app.internal import Frames, StreamItem, Usage


class EventReader(Protocol):
    finished: bool  # the event that ends a whole reply has come

    def __call__(self, event: SSEvent) -> tuple[Usage | None, bool]:
        """The usage an event reports, if any, and whether it carried a token; an error raises."""


async def relay(
    source: str, batches: AsyncGenerator[list[bytes | SSEvent], None], read: EventReader
) -> AsyncGenerator[StreamItem, None]:
    try:
        async for batch in batches:
            relayed: list[bytes] = []
            tokens = 0
            for block in batch:
                for event in parse_block(block) if isinstance(block, bytes) else [block]:
                    try:
                        usage, token = read(event)
                    except UpstreamError:
                        if relayed:  # what came before the error goes first
                            yield Frames(b"".join(relayed), tokens)
                        raise
                    if usage is not None:
                        yield usage
                    tokens += token
                relayed.append(block + b"\n\n" if isinstance(block, bytes) else _framed(block))
            yield Frames(b"".join(relayed), tokens)
        if not read.finished:
            raise UpstreamProtocolError(f"{source}: the stream ended before the reply did")
    finally:
        await batches.aclose()


def _framed(event: SSEvent) -> bytes:
    """An event parsed from \\r\\n framing, framed again as the client's SSE."""
    head = f"event: {event.event}\n" if event.event else ""
    return (head + "".join(f"data: {line}\n" for line in event.data.split("\n")) + "\n").encode()
