"""Health endpoints for orchestrators: ``/health`` says the process serves; ``/ready`` says it
can do its job (the database answers and the pricing catalog is loaded)."""

from __future__ import annotations

import asyncio

import falcon.asgi

from app.http.common import json_response
from app.services import Services


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, {"status": "ok"})

    on_head = on_get


class Ready:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        checks = {"catalog": bool(self.services.catalog.pricing), "database": await self._database()}
        ready = all(checks.values())
        json_response(resp, {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)

    async def _database(self) -> bool:
        try:
            with self.services.database.context:
                await asyncio.wait_for(self.services.database.connection.execute_query("SELECT 1"), timeout=2)
        except Exception:  # any failure means not ready; the reason belongs in the log, not here
            return False
        return True

    on_head = on_get
