"""Endpoints for orchestrators and monitoring: ``/health`` says the process serves (and which
process: ``pid``); ``/ready`` says it can do its job (the database answers, and was migrated,
and the pricing catalog is loaded); ``/metrics`` is for Prometheus."""

from __future__ import annotations

import asyncio
import os

import falcon.asgi

from app.http.common import json_response
from app.metrics import render, render_deployments
from app.services import Services


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        json_response(resp, {"status": "ok", "pid": os.getpid()})

    on_head = on_get


class Ready:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        checks = {"catalog": bool(self.services.catalog.pricing), "database": await self._database()}
        ready = all(checks.values())
        json_response(resp, {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)

    async def _database(self) -> bool:
        if not self.services.database.attached.is_set():  # not connected (and migrated) yet
            return False
        try:
            with self.services.database.context:
                await asyncio.wait_for(self.services.database.connection.execute_query("SELECT 1"), timeout=2)
        except Exception:  # any failure means not ready; the reason belongs in the log, not here
            return False
        return True

    on_head = on_get


# The figures each worker keeps of its own, summed over the workers of the instance.
WORKER_FIGURES = {
    "llm_relay_usage_pending_rows": "Usage rows not in the database yet.",
    "llm_relay_usage_rows_written_total": "Usage rows written to the database.",
    "llm_relay_usage_rows_lost_total": "Usage rows that could be kept neither in memory nor on disk.",
    "llm_relay_usage_rows_rejected_total": "Usage rows the database refused, set aside in usage-rejected.jsonl.",
    "llm_relay_request_body_bytes_in_flight": "Bytes of request bodies held (MAX_INFLIGHT_BODY_BYTES a worker).",
}


def worker_figures(services: Services) -> dict[str, float]:
    """This worker's own figures, named as /metrics shows them."""
    usage = services.usage
    values = (usage.pending, usage.written, usage.lost, usage.rejected, services.requests.body_bytes)
    return dict(zip(WORKER_FIGURES, values, strict=True))


class MetricsResource:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        merged = await asyncio.to_thread(self.services.metrics.merged)  # may read other workers' files
        gauges = {name: (help_text, merged["figures"].get(name, 0)) for name, help_text in WORKER_FIGURES.items()}
        in_effect = self.services.routes_in_effect()
        routes = {route.name: [d.model for d in route.deployments] for route in in_effect}
        health = self.services.health.state_of(in_effect)  # two small reads of a local file
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.text = render(merged, gauges) + render_deployments(routes, health)
