"""Upstream fault policy: retries for failures before any byte reached the client, and
per-provider read and total timeouts.

Retried: a connection that could not be made, 429, and 500/502/503/504/529, waiting what the
provider's ``Retry-After`` asked (else an exponential backoff), at most ``UPSTREAM_RETRIES``
times and within ``UPSTREAM_RETRY_BUDGET`` seconds. Never retried: a timeout or a reply that was
already under way (the provider may have done, and billed, the work), nor any other status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from app.errors import UpstreamError, UpstreamStatusError, UpstreamTimeout, UpstreamUnavailable
from app.internal import Reply, StreamItem
from app.settings import Settings, SettingsError, parse_pairs

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class Timeouts:
    read: float  # longest silence inside a stream; 0: none
    total: float  # a whole non-streamed call, or a stream's first item; 0: none


def timeouts_by_provider(settings: Settings) -> dict[str, Timeouts]:
    """``UPSTREAM_TIMEOUTS="openai=120/600,lab=900/0"``: read/total seconds per provider."""
    found = {}
    for name, value in parse_pairs("UPSTREAM_TIMEOUTS", settings.upstream_timeouts):
        read, sep, total = value.partition("/")
        try:
            found[name] = Timeouts(float(read), float(total) if sep else settings.upstream_total_timeout)
        except ValueError:
            raise SettingsError(f"UPSTREAM_TIMEOUTS: {name}={value!r} must be read/total seconds") from None
    return found


def retryable(error: UpstreamError) -> bool:
    if isinstance(error, UpstreamUnavailable):
        return True
    return isinstance(error, UpstreamStatusError) and error.status in RETRIED_STATUSES


async def with_retries(send: Callable[[], Awaitable[Reply]], *, retries: int, budget: float, name: str) -> Reply:
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await send()
        except UpstreamError as error:
            retry_after = getattr(error, "retry_after", None)
            wait = retry_after if retry_after is not None else min(0.25 * 2**attempt, 4.0)
            if not retryable(error) or attempt >= retries or time.monotonic() - started + wait > budget:
                raise
            attempt += 1
        await asyncio.sleep(wait)


async def within(awaitable: Awaitable[Reply], seconds: float, name: str) -> Reply:
    if seconds <= 0:
        return await awaitable
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the call in a task of its own.
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise UpstreamTimeout(f"{name}: no reply within {seconds:g} s") from None


async def paced(source: AsyncGenerator[StreamItem, None], read: float, name: str) -> AsyncGenerator[StreamItem, None]:
    """The stream, ended with a timeout error when the provider is silent for ``read`` seconds."""
    try:
        while True:
            try:
                async with asyncio.timeout(read):  # no task per item, as wait_for makes on 3.11
                    item = await anext(source)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamTimeout(f"{name}: the stream stalled for {read:g} s") from None
            yield item
    finally:
        await source.aclose()
