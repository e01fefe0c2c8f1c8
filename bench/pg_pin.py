"""Keep a local PostgreSQL server off the gateway's core while the bench runs.

The bench gives the gateway one core and everything else (upstream, load generator) the other.
An unpinned PostgreSQL ran its backends on either, so part of what the bench charged to the
relay for writing usage rows to PostgreSQL was the database server's own CPU: `bench.ab` with
the server pinned to the load core measured the rows' cost at ~3% instead of ~14%. In
production the database is another machine; here it shares the load core, as the upstream does.
New backends are forked by the postmaster and inherit its affinity; the old mask comes back
afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def _data_directory(server: str) -> str:
    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=5)
        try:
            return str(await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()

    return asyncio.run(ask())


def _family(root: int) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, WAL writer...)."""
    found = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == root:
            found.append(int(stat.parent.name))
    return found


def _set(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that has just exited
            os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def pinned(server: str, cpu: str) -> Iterator[str]:
    """Pin the server at ``server`` (a postgres:// URL without a database) to ``cpu`` for the
    duration; yields a note for the report: what was pinned, or why nothing was."""
    try:
        data = _data_directory(server)
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        before = os.sched_getaffinity(postmaster)
        _set(_family(postmaster), {int(cpu)})
    except Exception as exc:  # a remote server, no rights to its files: measure anyway, and say so
        yield f"PostgreSQL not pinned ({exc.__class__.__name__}: {exc}): its CPU counts against the relay's core"
        return
    try:
        yield f"PostgreSQL (postmaster {postmaster} and its processes) pinned to core {cpu}, the load core"
    finally:
        _set(_family(postmaster), before)
