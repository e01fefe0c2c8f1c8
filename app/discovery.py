"""Background discovery of the models on each Ollama server and each custom provider that
doesn't list its models, refreshed periodically.

Never on the request path: requests read the catalog as it stands. An instance that is down
keeps its last known list, and its error is kept for display.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from app.catalog import Catalog, ModelEntry
from app.errors import RelayError
from app.upstreams import Upstreams

log = logging.getLogger("llm_relay.discovery")
FIRST_WAIT = 5.0  # seconds a start waits for the first model lists (a server that is down fails fast)


@dataclass(slots=True)
class InstanceStatus:
    ok: bool = False
    models: int = 0
    checked_at: float | None = None
    error: str | None = None


def entry_of(provider: str, model: dict[str, Any]) -> ModelEntry:
    """An Ollama /api/tags entry, or an OpenAI/Anthropic /models entry (``id``)."""
    capabilities = model.get("capabilities") or []
    mode = "embedding" if "embedding" in capabilities and "completion" not in capabilities else "chat"
    name = str(model.get("model") or model.get("name") or model.get("id"))
    return ModelEntry(provider, name, mode, model, discovered=True)


class Discovery:
    def __init__(self, upstreams: Upstreams, catalog: Catalog, interval: float) -> None:
        self.upstreams = upstreams
        self.catalog = catalog
        self.interval = interval
        self.status: dict[str, InstanceStatus] = {p.name: InstanceStatus() for p in upstreams.discoverable}
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        await asyncio.gather(*(self._refresh_one(p.name) for p in self.upstreams.discoverable))

    async def refresh_one(self, name: str) -> InstanceStatus:
        await self._refresh_one(name)
        return self.status[name]

    async def _refresh_one(self, name: str) -> None:
        status = self.status.setdefault(name, InstanceStatus())
        try:
            models = await self.upstreams.adapter(name).list_models()
        except RelayError as exc:
            status.ok, status.error = False, exc.message
            log.warning("provider %s: model list failed: %s", name, exc.message)
        else:
            entries = [entry_of(name, m) for m in models if m.get("model") or m.get("name") or m.get("id")]
            self.catalog.set_discovered(name, entries)
            status.ok, status.error, status.models = True, None, len(entries)
        status.checked_at = time.time()

    async def start(self, wait: float = FIRST_WAIT) -> None:
        """Refresh from now on; the first refresh is waited for, up to ``wait`` seconds, so a relay
        that has just started (or restarted a worker) does not answer 404 for its Ollama models."""
        if not self.upstreams.discoverable:
            return
        first = asyncio.create_task(self.refresh(), name="model-discovery")
        done, _ = await asyncio.wait({first}, timeout=wait)
        if not done:
            log.warning("the first model discovery takes longer than %.0f s: serving meanwhile", wait)
        self._task = asyncio.create_task(self._loop(first), name="model-discovery")

    async def _loop(self, first: asyncio.Task[None]) -> None:
        await first
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
