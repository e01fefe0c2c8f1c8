"""The ASGI layer remembers the running loop per thread (CPython 3.11 makes a system call for
every lookup); a new loop in the same thread, or another thread's loop, is found afresh."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from app.http.asgi import DisconnectAware


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


def test_a_new_loop_or_another_thread_is_not_given_a_stale_loop() -> None:
    layer = DisconnectAware(_noop, max_body_bytes=1024)

    async def found() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return layer._running_loop(), asyncio.get_running_loop()

    first, running = asyncio.run(found())
    assert first is running
    second, running = asyncio.run(found())  # same thread, a new loop
    assert second is running and second is not first
    seen: list[tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]] = []
    thread = threading.Thread(target=lambda: seen.append(asyncio.run(found())))
    thread.start()
    thread.join()
    assert seen[0][0] is seen[0][1] and seen[0][0] is not second

    async def while_running_here() -> None:
        mine = layer._running_loop()  # cached while this loop runs...
        other: list[tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]] = []
        thread = threading.Thread(target=lambda: other.append(asyncio.run(found())))
        thread.start()
        thread.join()  # ...and another thread's loop runs meanwhile
        assert other[0][0] is other[0][1] and other[0][0] is not mine
        assert layer._running_loop() is layer._running_loop() is asyncio.get_running_loop()

    asyncio.run(while_running_here())
