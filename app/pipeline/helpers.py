"""Small tools for stage authors: wrap a reply's stream, run code once a reply is complete,
read the text a chunk carries."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from app.internal import Frames, Reply, StreamItem
from app.pipeline.core import Exchange

Done = Callable[[Exchange, BaseException | None], Awaitable[None] | None]


def wrap_stream(reply: Reply, wrapper: Callable[[AsyncIterator[StreamItem]], AsyncIterator[StreamItem]]) -> Reply:
    """Replace the reply's stream with ``wrapper(stream)``; the inner stream is closed when the
    wrapped one ends, however it ends. A whole-body reply is returned unchanged."""
    if reply.stream is not None:
        reply.stream = _closing(reply.stream, wrapper)
    return reply


async def _closing(
    source: AsyncGenerator[StreamItem, None],
    wrapper: Callable[[AsyncIterator[StreamItem]], AsyncIterator[StreamItem]],
) -> AsyncGenerator[StreamItem, None]:
    wrapped = wrapper(source)
    try:
        async for item in wrapped:
            yield item
    finally:
        closer = getattr(wrapped, "aclose", None)
        if closer is not None:
            await closer()
        await source.aclose()


async def after_reply(ex: Exchange, reply: Reply, done: Done) -> Reply:
    """Call ``done(ex, error)`` once the reply is complete: at once for a whole body, after the
    last chunk (or the client's hang-up, or a failure mid-stream) for a stream. ``error`` is
    what ended the stream early, else None. ``done`` may be a plain or an async function."""
    if reply.stream is None:
        await _call(done, ex, None)
        return reply
    reply.stream = _then(ex, reply.stream, done)
    return reply


async def _then(ex: Exchange, source: AsyncGenerator[StreamItem, None], done: Done) -> AsyncGenerator[StreamItem, None]:
    failure: BaseException | None = None
    try:
        async for item in source:
            yield item
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            await source.aclose()
        finally:
            await _call(done, ex, failure)


async def _call(done: Done, ex: Exchange, error: BaseException | None) -> None:
    result = done(ex, error)
    if inspect.isawaitable(result):
        await result


def chunk_text(item: StreamItem) -> str:
    """The generated text a stream item carries (empty for usage reports and for ``Frames``,
    which a stage that reads text should not declare itself ``passthrough_safe`` for)."""
    if isinstance(item, Frames) or not isinstance(item, dict):
        return ""
    parts: list[str] = []
    for choice in item.get("choices") or ():
        delta: dict[str, Any] = choice.get("delta") or choice.get("message") or choice
        text = delta.get("content") if "content" in delta else delta.get("text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def body_text(body: dict[str, Any]) -> str:
    """The text of a whole reply body: its first choice's message or completion text."""
    choices = body.get("choices") or ()
    if not choices:
        return ""
    first = choices[0]
    message = first.get("message")
    if isinstance(message, dict):
        content = message.get("content")
        return content if isinstance(content, str) else ""
    text = first.get("text")
    return text if isinstance(text, str) else ""
