"""Serving the relay (``PORT``) and its admin UI (``ADMIN_PORT``) from one process and one
event loop, so they share every service and the database connection pool."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from app.settings import Settings


def servers(settings: Settings, relay: Any, admin: Any | None) -> list[uvicorn.Server]:
    level = settings.log_level.lower()
    found = [uvicorn.Server(uvicorn.Config(relay, host=settings.host, port=settings.port, log_level=level))]
    if admin is not None:
        host = settings.admin_host or settings.host
        config = uvicorn.Config(admin, host=host, port=settings.admin_port, log_level=level, lifespan="off")
        found.append(uvicorn.Server(config))
    return found


async def serve_all(running: list[uvicorn.Server]) -> None:
    """Run the servers together. The first owns the lifespan (database, usage writer) and the
    signal handlers; the others stop when it does, so one SIGTERM drains everything."""
    first, *others = running

    async def follow() -> None:
        while not first.should_exit:
            await asyncio.sleep(0.05)
        for server in others:
            server.should_exit = True

    # NOTE: uvicorn's public serve() installs its own signal handlers, and a second server's
    # would replace the first's; so only the first server captures signals.
    with first.capture_signals():
        await asyncio.gather(first._serve(), *(s._serve() for s in others), follow())
