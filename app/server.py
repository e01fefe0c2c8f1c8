"""Serving the relay (``PORT``) and its admin UI (``ADMIN_PORT``) from one process and one
event loop, so they share every service and the database connection pool."""

from __future__ import annotations

import asyncio
import gc
import math
import socket
from collections.abc import Sequence
from typing import Any

import uvicorn

from app.http.protocol import CoalescingHttpToolsProtocol
from app.inflight import InFlight
from app.settings import Settings, SettingsError


def servers(settings: Settings, relay: Any, admin: Any | None) -> list[uvicorn.Server]:
    level = settings.log_level.lower()
    # X-Forwarded-For only from TRUSTED_PROXIES (uvicorn otherwise believes 127.0.0.1 by default).
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    grace = math.ceil(settings.shutdown_grace_seconds)  # uvicorn takes whole seconds
    relay_config = uvicorn.Config(
        relay,
        host=settings.host,
        port=settings.port,
        log_level=level,
        # uvicorn's access log costs a logging call per request even when the level drops it.
        access_log=level in ("debug", "trace", "info"),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or [],
        http=CoalescingHttpToolsProtocol,  # one write per reply, not headers then body
        # Then requests still running are cancelled; each still writes its row (app/inflight.py).
        timeout_graceful_shutdown=grace,
    )
    found = [uvicorn.Server(relay_config)]
    if admin is not None:
        host = settings.admin_host or settings.host
        config = uvicorn.Config(
            admin, host=host, port=settings.admin_port, log_level=level, lifespan="off", timeout_graceful_shutdown=grace
        )
        found.append(uvicorn.Server(config))
    return found


def listening_socket(host: str, port: int, setting: str) -> socket.socket:
    """A socket bound to ``host:port`` before anything starts, so a port already taken stops
    the relay with one line, before its first start has made (and printed) an admin password."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise SettingsError(f"cannot listen on {host}:{port} ({setting}): {exc.strerror or exc}") from None
    return sock


def run_all(
    running: list[uvicorn.Server],
    sockets: Sequence[list[socket.socket] | None] = (),
    *,
    requests: InFlight | None = None,
) -> None:
    """Serve on the event loop uvicorn would pick itself (uvloop when installed): a bare
    ``asyncio.run`` gets the stdlib loop, which is much slower.
    ``sockets``: for each server in turn, already bound sockets (a worker's shared port).
    ``requests``: the relay's requests in flight, told when the shutdown begins."""
    with asyncio.Runner(loop_factory=running[0].config.get_loop_factory()) as runner:
        runner.run(_serve_frozen(running, sockets, requests))


async def _serve_frozen(
    running: list[uvicorn.Server], sockets: Sequence[list[socket.socket] | None], requests: InFlight | None
) -> None:
    freezer = asyncio.create_task(_freeze_when_started(running[0]))
    try:
        await serve_all(running, sockets, requests)
    finally:
        freezer.cancel()


async def _freeze_when_started(server: uvicorn.Server) -> None:
    """Once started, move everything built so far (the price catalog, models, caches: some
    100k objects) out of the garbage collector's sight: otherwise every full collection walks
    them all, in pauses long enough to set the relay's p99.
    Then collect young objects less often: a request makes a few hundred container objects that
    live until it ends, and the default threshold walked the requests in flight every request or
    two (bench/RESULTS.md)."""
    while not server.started:
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def serve_all(
    running: list[uvicorn.Server],
    sockets: Sequence[list[socket.socket] | None] = (),
    requests: InFlight | None = None,
) -> None:
    """Run the servers together. The first owns the lifespan (database, usage writer); the others
    stop when it does, and one SIGTERM stops them all (below), so it drains everything.
    ``sockets``: for each server in turn, sockets already bound for it (a worker's shared port;
    a test's port, held from the moment it is chosen), or None to bind its configured port."""
    first, *others = running
    bound = [*sockets, *[None] * (len(running) - len(sockets))]

    async def follow() -> None:
        while not first.should_exit:
            await asyncio.sleep(0.05)
        if requests is not None:
            requests.begin_shutdown()
        for server in others:
            server.should_exit = True

    # Each serve() installs signal handlers; the last one installed (the admin server's) gets a
    # SIGTERM first, and as it stops it hands the signal on to the one it replaced, which drains.
    await asyncio.gather(*(server.serve(own) for server, own in zip(running, bound, strict=True)), follow())
