"""What the Settings page and its JSON API do: the run-time settings (stored in ``relay_setting``
under the :class:`~app.runtime.Runtime` field names and reloaded at once), retention, pricing
sync in the background, and the admin password.

Failures are ``falcon.HTTPError``: the API reports them as JSON, the page shows their title.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import falcon

from app.admin.context import AdminContext
from app.admin.pages.aliases_ops import check_default_value
from app.admin.pages.settings_common import iso, start_in_db
from app.pricing.catalog_build import Models
from app.pricing.sync import SyncError, sync_pricing
from app.runtime import RUNTIME_KEYS
from app.stores.models import PricingSync, RelaySetting

log = logging.getLogger("llm_relay.admin")
MAX_RETENTION_DAYS = 36500
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SYNC = "pricing_sync"  # key in ctx.state: the pricing sync under way, or the last one


async def current(ctx: AdminContext) -> dict[str, Any]:
    stored = await ctx.in_db(RelaySetting.read_all)
    runtime = ctx.services.runtime
    values: dict[str, Any] = {key: getattr(runtime, key) for key in RUNTIME_KEYS}
    values["sources"] = {key: "admin" if stored.get(key) is not None else "env" for key in RUNTIME_KEYS}
    values["pricing_url"] = ctx.services.settings.pricing_url
    values["password_from_env"] = ctx.password_from_env
    return values


def validate(ctx: AdminContext, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, checked; a value of None means "back to the environment's value"."""
    unknown = sorted(set(changes) - set(RUNTIME_KEYS))
    if unknown:
        raise falcon.HTTPBadRequest(title=f"unknown settings {unknown}; the settings are {sorted(RUNTIME_KEYS)}")
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            checked[key] = None
        elif key == "default_model":
            checked[key] = check_default_value(ctx, value)
        elif RUNTIME_KEYS[key] is bool:
            if not isinstance(value, bool):
                raise falcon.HTTPBadRequest(title=f"{key} must be true or false")
            checked[key] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETENTION_DAYS:
                raise falcon.HTTPBadRequest(title=f"{key} must be a whole number of days from 0 (forever) to 36500")
            checked[key] = value
    return checked


async def update(ctx: AdminContext, changes: dict[str, Any]) -> dict[str, Any]:
    checked = validate(ctx, changes)

    async def store() -> None:
        for key, value in checked.items():
            if value is None:
                await RelaySetting.filter(key=key).delete()
            else:
                await RelaySetting.write(key, value)

    await ctx.in_db(store)
    await ctx.live.reload()
    if checked:
        log.info("admin: settings changed: %s", checked)
    return await current(ctx)


async def run_retention(ctx: AdminContext) -> dict[str, int]:
    days = ctx.services.runtime.retention_days
    deleted = await ctx.live.purge_expired()
    log.info("admin: retention run (%d days) deleted %d usage rows", days, deleted)
    return {"retention_days": days, "deleted": deleted}


@dataclass
class SyncJob:
    source: str
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    running: bool = True
    result: dict[str, int] | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def view(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "running": self.running,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "result": self.result,
            "error": self.error,
        }


def _source(ctx: AdminContext, value: Any) -> str:
    source = str(value).strip() if isinstance(value, str) and value.strip() else ctx.services.settings.pricing_url
    if source.startswith(("http://", "https://")):
        if not urlsplit(source).hostname or any(c.isspace() for c in source):
            raise falcon.HTTPBadRequest(title=f"{source!r} is not a usable URL")
    elif not source.startswith(("file://", "/")):
        raise falcon.HTTPBadRequest(
            title=f"the catalog source must be an http(s) URL or an absolute path, not {source!r}"
        )
    return source


def start_sync(ctx: AdminContext, url: Any = None) -> SyncJob:
    """Start a pricing sync in the background (one at a time)."""
    job: SyncJob | None = ctx.state.get(SYNC)
    if job is not None and job.running:
        raise falcon.HTTPConflict(title=f"a pricing sync from {job.source} is already running")
    job = SyncJob(_source(ctx, url))
    ctx.state[SYNC] = job
    job.task = start_in_db(ctx, partial(_run_sync, ctx, job), "admin-pricing-sync")
    log.info("admin: pricing sync from %s", job.source)
    return job


async def _run_sync(ctx: AdminContext, job: SyncJob) -> None:
    services = ctx.services
    try:
        # This task carries the database context (start_in_db).
        result = await sync_pricing(job.source, cast(Models, services.catalog.pricing), services.upstreams.http.control)
        await ctx.live.reload()  # the new prices apply from the next request
        job.result = {"id": result.id, "added": result.added, "removed": result.removed, "changed": result.changed}
    except SyncError as exc:
        job.error = str(exc)
    except Exception as exc:  # a bug must still end the job, not leave it "running" forever
        log.exception("pricing sync from %s failed", job.source)
        job.error = f"internal error: {type(exc).__name__}"
    finally:
        job.running, job.finished_at = False, time.time()


async def sync_status(ctx: AdminContext, limit: int = 10) -> dict[str, Any]:
    job: SyncJob | None = ctx.state.get(SYNC)
    # The job as it is now, before the history is read: a job seen finished has its row in it.
    status: dict[str, Any] = {
        "running": bool(job and job.running),
        "job": job.view() if job else None,
        "active_pricing": ctx.services.catalog.pricing_source,
        "default_url": ctx.services.settings.pricing_url,
    }
    status["history"] = await ctx.in_db(
        lambda: (
            PricingSync.all()
            .order_by("-id")
            .limit(limit)
            .values("id", "started_at", "finished_at", "source", "status", "error", "added", "removed", "changed")
        ),
    )
    return status


async def change_password(ctx: AdminContext, client: str, current: Any, new: Any, confirm: Any = None) -> None:
    """Check and store a new admin password (every session made with the old one ends)."""
    if ctx.password_from_env:
        raise falcon.HTTPConflict(
            title="the admin password is set by ADMIN_PASSWORD in the environment; change it there"
        )
    wait = ctx.throttle.retry_after(client)
    if wait:
        raise falcon.HTTPTooManyRequests(
            title=f"too many wrong passwords; try again in {wait} seconds", retry_after=wait
        )
    if isinstance(new, str) and len(new) > MAX_PASSWORD:  # each login hashes all of it, slowly on purpose
        raise falcon.HTTPBadRequest(title=f"the new password may have at most {MAX_PASSWORD} characters")
    if not isinstance(new, str) or len(new.strip()) < MIN_PASSWORD:
        raise falcon.HTTPBadRequest(
            title=f"the new password must have at least {MIN_PASSWORD} characters, not counting spaces at its ends"
        )
    if confirm is not None and confirm != new:
        raise falcon.HTTPBadRequest(title="the two new passwords differ")
    if not isinstance(current, str) or not current or not await ctx.check_password(current):
        ctx.throttle.failed(client)
        raise falcon.HTTPBadRequest(title="the current password is wrong")
    ctx.throttle.succeeded(client)
    await ctx.change_password(new)
    log.warning("admin: the admin password was changed; every other session has ended")
