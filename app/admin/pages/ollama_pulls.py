"""Pulling models onto an Ollama instance: each pull is a background task streaming Ollama's
``/api/pull`` progress into a :class:`PullJob` kept in ``ctx.state`` (in this process only), which
the page's progress bar and ``GET /api/ollama/pulls/{id}`` read."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import falcon

from app.adapters.ollama import OllamaAdapter
from app.admin.context import AdminContext
from app.admin.pages.ollama_ops import adapter_of, model_name
from app.admin.pages.settings_common import iso
from app.errors import RelayError

log = logging.getLogger("llm_relay.admin")
PULLS = "ollama_pulls"  # key in ctx.state: pull id -> PullJob
KEEP_FINISHED = 20  # finished pulls remembered for display


@dataclass
class PullJob:
    """One ``/api/pull`` under way (or finished), its progress summed over the layers."""

    id: str
    instance: str
    model: str
    status: str = "starting"
    digest: str = ""
    totals: dict[str, int] = field(default_factory=dict)  # layer digest -> bytes
    completed: dict[str, int] = field(default_factory=dict)
    done: bool = False
    ok: bool = False
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def percent(self) -> float:
        if self.ok:
            return 100.0
        total = sum(self.totals.values())
        return round(100 * min(sum(self.completed.values()), total) / total, 1) if total else 0.0

    def update(self, line: dict[str, Any]) -> None:
        self.status = str(line.get("status") or self.status)
        digest = line.get("digest")
        if isinstance(digest, str) and digest:
            self.digest = digest
            if isinstance(line.get("total"), int):
                self.totals[digest] = line["total"]
            if isinstance(line.get("completed"), int):
                self.completed[digest] = line["completed"]
        if self.status == "success":
            self.ok = True

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self.instance,
            "model": self.model,
            "status": self.status,
            "digest": self.digest or None,
            "completed": sum(self.completed.values()),
            "total": sum(self.totals.values()),
            "percent": self.percent,
            "done": self.done,
            "ok": self.ok,
            "error": self.error,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


def pulls(ctx: AdminContext) -> dict[str, PullJob]:
    jobs: dict[str, PullJob] = ctx.state.setdefault(PULLS, {})
    return jobs


def get_pull(ctx: AdminContext, pull_id: str) -> PullJob:
    job = pulls(ctx).get(pull_id)
    if job is None:
        raise falcon.HTTPNotFound(title=f"no pull {pull_id!r} (finished pulls are forgotten after a while)")
    return job


def start_pull(ctx: AdminContext, name: str, value: Any) -> PullJob:
    """Start pulling a model (or return the pull of it already under way)."""
    adapter, model = adapter_of(ctx, name), model_name(value)
    jobs = pulls(ctx)
    for job in jobs.values():
        if job.instance == name and job.model == model and not job.done:
            return job
    finished = sorted((j for j in jobs.values() if j.done), key=lambda j: j.started_at)
    for old in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
        jobs.pop(old.id, None)
    job = PullJob(secrets.token_urlsafe(8), name, model)
    jobs[job.id] = job
    job.task = asyncio.create_task(_run_pull(ctx, adapter, job), name=f"ollama-pull-{job.id}")
    log.info("admin: pulling %s on Ollama instance %s (pull %s)", model, name, job.id)
    return job


async def _run_pull(ctx: AdminContext, adapter: OllamaAdapter, job: PullJob) -> None:
    try:
        async for line in adapter.pull(job.model):
            job.update(line)
        if job.ok:
            await ctx.discovery.refresh_one(job.instance)  # listed by the time the job is done
        else:
            job.error = f"the server ended the pull at {job.status!r}, without success"
    except RelayError as exc:
        job.error = exc.message
    except Exception as exc:  # a bug must still end the job, not leave it "running" forever
        log.exception("pull %s failed", job.id)
        job.error = f"internal error: {type(exc).__name__}"
    finally:
        job.done, job.finished_at = True, time.time()


def pulls_by_instance(ctx: AdminContext) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for job in sorted(pulls(ctx).values(), key=lambda j: j.started_at, reverse=True):
        grouped.setdefault(job.instance, []).append(job.view())
    return grouped
