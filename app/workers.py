"""``llm-relay serve --workers N``: N worker processes behind one port.

The parent migrates the database once, then starts the workers and watches them (a database that
does not answer yet is migrated by the first worker once it does; the workers serve meanwhile). Each worker is
a whole relay (its own event loop, connection pool, usage writer and journal) listening on the
inference port with ``SO_REUSEPORT``, so the kernel spreads connections across them. Only the
first worker serves the admin UI, whose in-memory jobs (a pricing sync, a model pull) must stay
in one place; the others learn of admin changes through the database (``CONFIG_REFRESH_SECONDS``).
A worker that dies is started again, unless its configuration is what stops it (an unknown stage,
a bad setting), which then stops them all; SIGTERM or SIGINT stops every worker, each draining its
usage buffer first. A worker whose parent dies, even by SIGKILL, stops too (it gets a SIGTERM and
drains): left serving, it would share the port with the next instance.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from app.pipeline.core import PipelineError
from app.settings import Settings, SettingsError

log = logging.getLogger("llm_relay.workers")
STOP_TIMEOUT = 60.0  # seconds a worker may take to drain, after SHUTDOWN_GRACE_SECONDS, before it is killed
RESTART_PAUSE = 1.0  # between restarts of a worker that keeps dying
CONFIGURATION_ERROR = 2  # a worker's exit status when it cannot start with this configuration
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_SECONDS = 1.0  # how often a worker without PR_SET_PDEATHSIG looks for its parent


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def metrics_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "metrics"


def stop_with_parent(parent: int) -> None:
    """Have this process sent SIGTERM when ``parent`` dies: by the kernel on Linux
    (PR_SET_PDEATHSIG), elsewhere by a thread that watches ``os.getppid()``."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: no prctl
        armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    elif os.getppid() != parent:  # it died before the kernel was told to tell us
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(settings: Settings, index: int, parent: int, migrate: bool) -> None:
    """A worker's process: a whole relay on the shared port (the admin UI in worker 0)."""
    stop_with_parent(parent)
    from app.main import create_app
    from app.server import run_all, servers

    logging.basicConfig(
        level=settings.log_level.upper(), format=f"%(asctime)s %(levelname)s %(name)s[w{index}]: %(message)s"
    )
    sock = reuseport_socket(settings.host, settings.port)
    sock.listen(2048)
    try:
        app = create_app(settings, migrate=migrate)
    except (SettingsError, PipelineError) as exc:  # started again, it would fail again: say so once
        print(f"llm-relay: worker {index} cannot start: {exc}", file=sys.stderr)
        raise SystemExit(CONFIGURATION_ERROR) from None
    app.metrics.share(metrics_dir(settings))
    admin = None
    if settings.admin_enabled and index == 0:  # imported only where it runs: slow to import
        from app.admin import create_admin_app

        admin = create_admin_app(app)
    run_all(servers(settings, app, admin), sockets=[[sock]], requests=app.services.requests)


async def _migrate(url: str) -> bool:
    """Migrate the database once for every worker; False when it does not answer."""
    from app.stores.db import Database

    database = Database(url)
    try:
        await database.open(migrate_first=True)
    except Exception as exc:  # the workers serve without it; the first migrates it when it answers
        log.error("database %s does not answer (%r): the workers start without it", url.rpartition("@")[2], exc)
        return False
    finally:
        await database.close()
    return True


def serve_workers(settings: Settings, count: int) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; returns the exit status."""
    migrated = asyncio.run(_migrate(settings.resolved_database_url))
    # Hold the port (bound, not listening: it takes no connections) so a port 0 becomes a real
    # one every worker then binds, and nobody else takes it while a worker restarts.
    try:
        holder = reuseport_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return 1
    settings = settings.with_changes(port=holder.getsockname()[1])
    shared = metrics_dir(settings)
    shutil.rmtree(shared, ignore_errors=True)  # counters start again with the server
    shared.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=_worker,
            args=(settings, index, os.getpid(), index == 0 and not migrated),
            name=f"llm-relay worker {index}",
        )
        process.start()
        return process

    workers = {index: start(index) for index in range(count)}
    log.info("serving on %s:%d with %d workers", settings.host, settings.port, count)
    status = 0
    try:
        while not stopping:
            wait([p.sentinel for p in workers.values()], timeout=0.5)
            for index, process in list(workers.items()):
                exitcode = process.exitcode  # read once: each read polls, and a worker may end between two
                if stopping or exitcode is None:
                    continue
                if exitcode == CONFIGURATION_ERROR:
                    log.error("worker %d cannot start with this configuration (above): stopping", index)
                    stopping, status = True, CONFIGURATION_ERROR
                else:
                    log.error("worker %d exited with %s; starting it again", index, exitcode)
                    time.sleep(RESTART_PAUSE)
                    workers[index] = start(index)
    finally:
        for process in workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        allowed = settings.shutdown_grace_seconds + STOP_TIMEOUT
        deadline = time.monotonic() + allowed
        for process in workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in %.0f s; killing it", process.name, allowed)
                process.kill()
        holder.close()
    return status
