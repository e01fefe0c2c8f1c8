"""The requests this process is serving: their tasks, so that a shutdown waits until each has
written its usage row; whether the process is shutting down, so that a request the shutdown
cuts off is recorded as such (outcome ``shutdown``), not as a client's hang-up; and the bytes of
their bodies, which together may not pass ``MAX_INFLIGHT_BODY_BYTES`` (a body is held, in one
form or another, until its request ends)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("llm_relay.shutdown")


class InFlight:
    def __init__(self, body_budget: int = 0) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False  # the server was told to stop: it takes no new connections
        self.body_budget = body_budget  # 0: no bound
        self.body_bytes = 0  # of the bodies of the requests in flight

    def reserve(self, size: int) -> bool:
        """Count ``size`` more body bytes in flight, unless that passes the budget."""
        if size and self.body_budget and self.body_bytes + size > self.body_budget:
            return False
        self.body_bytes += size
        return True

    def release(self, size: int) -> None:
        self.body_bytes -= size

    def begin_shutdown(self) -> None:
        if not self.stopping:
            self.stopping = True
            if self.tasks:
                log.warning("shutting down: waiting for %d requests in flight", len(self.tasks))

    async def ended(self, timeout: float) -> None:
        """Wait, up to ``timeout``, for the requests still running (the server cancels those its
        grace period did not see finish) to end and write their rows."""
        running = {task for task in self.tasks if not task.done()}
        if not running:
            return
        _, left = await asyncio.wait(running, timeout=timeout)
        if left:
            log.error("%d requests did not end %.0f s after they were cancelled", len(left), timeout)
