"""The requests this process is serving: their tasks, so that a shutdown waits until each has
written its usage row, and whether the process is shutting down, so that a request the shutdown
cuts off is recorded as such (outcome ``shutdown``), not as a client's hang-up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("llm_relay.shutdown")


class InFlight:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False  # the server was told to stop: it takes no new connections

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
