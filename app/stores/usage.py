"""Usage rows leave the request path here: a bounded queue drained by one batch writer.

``submit`` never blocks and never awaits, so it is safe in a ``finally`` of a cancelled
request. Rows are written in batches, one transaction each, idempotent on ``request_id``.
When the database fails, the batch is kept and retried; rows beyond the queue's bound wait
in an overflow list rather than being dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.stores.db import Database
from app.stores.models import UsageRecord, UsageTag

log = logging.getLogger("llm_relay.usage")


@dataclass(slots=True)
class UsageRow:
    request_id: str
    created_at: datetime
    endpoint: str
    dialect: str
    client: str
    requested_model: str
    resolved_model: str | None
    provider: str | None
    route: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    usage_reported: bool
    cache_write_1h_tokens: int
    web_search_requests: int
    service_tier: str | None
    cost_nanousd: int | None
    cost_source: str
    computed_cost_nanousd: int | None
    provider_cost_nanousd: int | None
    cost_input_nanousd: int | None
    cost_cached_input_nanousd: int | None
    cost_cache_read_nanousd: int | None
    cost_cache_write_nanousd: int | None
    cost_output_nanousd: int | None
    cost_request_nanousd: int | None
    cost_search_nanousd: int | None
    pricing_tier: str | None
    rates: dict[str, Any] | None
    latency_ms: int | None
    ttft_ms: int | None
    streamed: bool
    status: int
    outcome: str
    error: str | None
    tags: list[str] = field(default_factory=list)
    client_host: str | None = None


class UsageWriter:
    def __init__(
        self,
        db: Database,
        *,
        queue_size: int,
        batch_size: int,
        flush_seconds: float,
        resolve_hostnames: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.resolve_hostnames = resolve_hostnames
        self._hosts: dict[str, str | None] = {}
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._pending: deque[UsageRow] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.failures = 0

    def submit(self, row: UsageRow) -> None:
        if len(self._pending) >= self.queue_size and len(self._pending) % self.queue_size == 0:
            log.warning("usage queue above %d rows: the database is not keeping up", self.queue_size)
        self._pending.append(row)
        self._idle.clear()
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        with self.db.context:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def flush(self) -> None:
        """Wait until every row submitted so far is written."""
        self._wake.set()
        await self._idle.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
                except TimeoutError:
                    pass
                continue
            if len(self._pending) < self.batch_size and not self._stopping and not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
                except TimeoutError:
                    pass
            batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
            try:
                await self._write(batch)
            except Exception:
                self.failures += 1
                log.exception("writing %d usage rows failed; retrying in %.1fs", len(batch), backoff)
                self._pending.extendleft(reversed(batch))
                if self._stopping and backoff > 5:
                    log.error("giving up on %d usage rows at shutdown", len(self._pending))
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.1
            self.written += len(batch)
            self._wake.clear()

    async def _hostnames(self, batch: list[UsageRow]) -> None:
        """Reverse DNS for client addresses, here in the writer and never on the request path;
        cached, and bounded in time so a slow resolver only delays the batch."""
        loop = asyncio.get_running_loop()
        for address in {row.client for row in batch if row.client and row.client not in self._hosts}:
            try:
                host, _ = await asyncio.wait_for(loop.getnameinfo((address, 0)), timeout=1.0)
            except (OSError, TimeoutError):
                host = None
            if len(self._hosts) > 10_000:
                self._hosts.clear()
            self._hosts[address] = host if host and host != address else None
        for row in batch:
            row.client_host = self._hosts.get(row.client)

    async def _write(self, batch: list[UsageRow]) -> None:
        if self.resolve_hostnames():
            await self._hostnames(batch)
        records = []
        tags = []
        for row in batch:
            values = asdict(row)
            row_tags = values.pop("tags")
            records.append(UsageRecord(**values))
            tags += [UsageTag(request_id=row.request_id, tag=t) for t in row_tags]
        async with in_transaction():
            await UsageRecord.bulk_create(records, ignore_conflicts=True)
            if tags:
                await UsageTag.bulk_create(tags, ignore_conflicts=True)
