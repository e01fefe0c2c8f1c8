"""app/stores/db.py's EnteredContext sets Tortoise's private context variable itself (each
``with`` keeps its own reset token); tortoise-orm is pinned to a minor version for it, and
these tests fail when that variable stops being what Tortoise reads."""

from __future__ import annotations

import asyncio
import contextvars

from tortoise.context import TortoiseContext, _current_context, get_current_context

from app.stores.db import EnteredContext


def test_the_private_variable_is_the_one_tortoise_reads_and_sets() -> None:
    assert isinstance(_current_context, contextvars.ContextVar)
    ctx = TortoiseContext()
    with ctx:  # Tortoise's own way in sets the very variable EnteredContext sets
        assert _current_context.get() is ctx and get_current_context() is ctx
    assert get_current_context() is None


async def test_tasks_entering_one_context_at_once_keep_their_own_tokens() -> None:
    """What Tortoise's own ``with`` cannot do: it keeps one token on the shared object."""
    ctx = TortoiseContext()

    async def use() -> None:
        with EnteredContext(ctx):  # as Database.context makes one for each use
            assert get_current_context() is ctx
            await asyncio.sleep(0.01)  # another task enters and leaves meanwhile
            assert get_current_context() is ctx

    await asyncio.gather(*(use() for _ in range(5)))
    assert get_current_context() is None
