"""Start and stop of a relay process (Falcon's lifespan hooks).

The relay serves whether or not its database answers: usage rows wait in the journal
(app/stores/journal.py) from the first request on, and ``/ready`` says not ready. While the
database does not answer, it is tried again in the background, with a backoff growing to
``LAST_RETRY`` seconds; once it answers, it is migrated (when this process migrates), the
configuration it holds is loaded, the admin UI's credentials are read, and the usage writer
writes the rows waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.discovery import Discovery
from app.pipeline import Pipeline
from app.services import Services
from app.stores.live import LiveConfig

log = logging.getLogger("llm_relay.lifecycle")
ATTEMPT_TIMEOUT = 15.0  # seconds reading the configuration may take once the database answers
FIRST_RETRY, LAST_RETRY = 1.0, 30.0  # seconds between attempts while the database does not answer
ANSWERS_RETRY = 4.0  # seconds between attempts once it answers but its configuration cannot be read
ROWS_AFTER_CANCEL = 10.0  # seconds cancelled requests get to end (and write their rows) at shutdown


class Lifecycle:
    """The database, the usage writer, discovery and the live configuration start and stop here."""

    def __init__(
        self, services: Services, pipeline: Pipeline, discovery: Discovery, live: LiveConfig, *, migrate: bool
    ) -> None:
        self.services = services
        self.pipeline = pipeline
        self.discovery = discovery
        self.live = live
        self.migrate = migrate
        self.on_startup: list[Callable[[], Awaitable[None]]] = []  # e.g. the admin UI's credentials
        self._connecting: asyncio.Task[None] | None = None

    async def process_startup(self, scope: Any, event: Any) -> None:
        self.services.usage.start()  # rows are journalled from the first request, database or not
        try:
            await self._attach()
        except Exception as exc:  # the database does not answer (yet): serve without it
            log.error(
                "database %s does not answer (%s): serving without it; usage rows wait in the journal "
                "and /ready says not ready until it does; trying again in %.0f s",
                self._where,
                _reason(exc),
                FIRST_RETRY,
            )
            self._connecting = asyncio.create_task(self._keep_trying(), name="database-connect")
        with self.services.database.context:  # tasks a stage starts inherit the database
            await self.pipeline.start()
        await self.services.metrics.start()
        await self.discovery.start()  # the first model lists before the first request

    @property
    def _where(self) -> str:
        return self.services.database.url.rpartition("@")[2]  # no credentials in the log

    async def _attach(self) -> None:
        """Open (and migrate) the database, load what it holds, and let the usage writer start
        writing; raises while the database does not answer."""
        await self.services.database.open(migrate_first=self.migrate)
        await asyncio.wait_for(self.live.reload(), ATTEMPT_TIMEOUT)
        for hook in self.on_startup:
            await asyncio.wait_for(hook(), ATTEMPT_TIMEOUT)
        self.live.start()

    async def _keep_trying(self) -> None:
        started, wait = time.monotonic(), FIRST_RETRY
        while True:
            await asyncio.sleep(wait)
            try:
                await self._attach()
            except Exception as exc:
                # A database that answers but cannot be read yet (its tables another worker's
                # migration away) is no reason to wait as long as for one that is down.
                wait = min(wait * 2, ANSWERS_RETRY if self.services.database.attached.is_set() else LAST_RETRY)
                log.warning(
                    "database %s still does not answer (%s); trying again in %.0f s", self._where, _reason(exc), wait
                )
                await self.services.database.reset()
                continue
            log.warning(
                "database %s answers after %.0f s: connected%s; %d usage rows waiting are written now",
                self._where,
                time.monotonic() - started,
                " and migrated" if self.migrate else "",
                self.services.usage.pending,
            )
            return

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        # The server cancelled what its grace period did not see finish: their rows come first.
        await self.services.requests.ended(ROWS_AFTER_CANCEL)
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        await self.live.stop()
        await self.discovery.stop()
        await self.pipeline.stop()
        await self.services.metrics.stop()
        await self.services.usage.stop()
        await self.services.upstreams.aclose()
        await self.services.upstreams.http.aclose()
        await self.services.database.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"
