"""Monthly budgets per tag: once a tag's spend for the current calendar month (UTC) reaches its
budget, its requests are refused with a 429 in the caller's dialect until the month ends or
the budget is raised.

Spend is the sum of the usage rows in the database, re-read every ``refresh_seconds`` off the
request path, plus this process's rows that are not committed yet (the usage writer tells the
stage of every row it takes and every batch it commits). A row committed while a refresh is
running may be counted twice until the next refresh: the stage errs towards refusing, never
towards overspending. Another worker's spend arrives with the next refresh after its rows
are committed, so several workers agree within ``refresh_seconds`` plus one write batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from app.errors import QuotaExceeded
from app.internal import Reply
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next, PipelineError
from app.stores.spend import month_start, spend_by_tag
from app.stores.usage_row import UsageRow

log = logging.getLogger("llm_relay.spend_limit")
NANOS_PER_USD = Decimal(1_000_000_000)
ANY_TAG = "*"


def usd_to_nanos(value: object) -> int:
    """A budget in dollars (a TOML string, integer or float) as exact nano-dollars."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"a budget is a number of dollars, got {type(value).__name__}")
    try:
        usd = Decimal(str(value).strip())  # str() first: 2.3 stays 2.3, not its binary value
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of dollars") from None
    if not usd.is_finite() or usd < 0:
        raise ValueError(f"a budget must be zero or more dollars, got {value!r}")
    return int(usd * NANOS_PER_USD)


def nanos_to_usd(nanos: int) -> str:
    return f"{Decimal(nanos) / NANOS_PER_USD:.6f}"


@dataclass(slots=True)
class _Unrefreshed:
    """Rows this process counted but the last database read did not include."""

    tags: list[str]
    cost: int
    created_at: datetime
    committed_in: int | None = None  # the refresh generation during which it was committed


class SpendLimitStage:
    name: ClassVar[str] = "spend_limit"
    passthrough_safe: ClassVar[bool] = True  # never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        raw = ctx.option("budgets", kind=dict)
        if not raw:
            raise PipelineError(f"stage {ctx.name!r}: give at least one budget, e.g. budgets = {{ team-a = '25.00' }}")
        self.budgets = {str(tag): ctx.convert("budgets", value, usd_to_nanos) for tag, value in raw.items()}
        self.default = self.budgets.pop(ANY_TAG, None)
        self.refresh_seconds = float(ctx.option("refresh_seconds", 2.0))
        if self.refresh_seconds <= 0:
            raise PipelineError(f"stage {ctx.name!r}: refresh_seconds must be more than 0")
        self.services = ctx.services
        self.month = month_start(datetime.now(UTC))
        self.stored: dict[str, int] = {}  # month-to-date spend in the database, as last read
        self.local: dict[str, _Unrefreshed] = {}  # request_id -> row not yet in self.stored
        self.local_by_tag: dict[str, int] = {}  # their costs summed per tag
        self.generation = 0
        self.refused = 0
        self.refreshed_at: datetime | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        ctx.services.usage.listeners.append(self)

    def budget_of(self, tag: str) -> int | None:
        return self.budgets.get(tag, self.default)

    def spent(self, tag: str) -> int:
        # Two lookups: the request path never walks the uncommitted rows.
        return self.stored.get(tag, 0) + self.local_by_tag.get(tag, 0)

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        for tag in ex.tags:
            budget = self.budget_of(tag)
            if budget is None:
                continue
            spent = self.spent(tag)
            if spent >= budget:
                self.refused += 1
                raise QuotaExceeded(
                    f"the monthly budget of tag {tag!r} is spent (${nanos_to_usd(spent)} of "
                    f"${nanos_to_usd(budget)} in {self.month:%Y-%m}); it resets on the 1st (UTC)"
                )
        return await call_next(ex)

    # The usage writer's listener interface.
    def submitted(self, row: UsageRow) -> None:
        if row.cost_nanousd and row.tags:
            self.local[row.request_id] = _Unrefreshed(list(row.tags), row.cost_nanousd, row.created_at)
            for tag in row.tags:
                self.local_by_tag[tag] = self.local_by_tag.get(tag, 0) + row.cost_nanousd

    def committed(self, rows: list[UsageRow]) -> None:
        for row in rows:
            entry = self.local.get(row.request_id)
            if entry is not None and entry.committed_in is None:
                entry.committed_in = self.generation

    async def refresh(self) -> None:
        """Re-read the month's spend; forget local rows the read certainly includes."""
        generation = self.generation
        self.generation += 1  # rows committed from now on may or may not be in this read
        month = month_start(datetime.now(UTC))
        tags = None if self.default is not None else set(self.budgets)
        database = self.services.database
        self.stored = await spend_by_tag(database.connection, database.backend, month, tags)
        self.month = month
        self.local = {
            rid: row
            for rid, row in self.local.items()
            if (row.committed_in is None or row.committed_in > generation) and row.created_at >= month
        }
        by_tag: dict[str, int] = {}
        for row in self.local.values():
            for tag in row.tags:
                by_tag[tag] = by_tag.get(tag, 0) + row.cost
        self.local_by_tag = by_tag
        self.refreshed_at = datetime.now(UTC)
        self.last_error = None

    async def start(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # serve anyway; the loop keeps trying
            self._failed(exc)
        self._task = asyncio.create_task(self._loop(), name="spend_limit refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:
            log.warning("spend_limit: reading the month's spend failed (%s); using the last figures", message)
        self.last_error = message

    def status(self) -> dict[str, Any]:
        """Budgets and month-to-date spend, for the admin UI."""
        tags = sorted(set(self.budgets) | (set(self.stored) if self.default is not None else set()))
        rows = []
        for tag in tags:
            budget = self.budget_of(tag)
            if budget is None:
                continue
            spent = self.spent(tag)
            rows.append(
                {
                    "tag": tag,
                    "budget_usd": nanos_to_usd(budget),
                    "spent_usd": nanos_to_usd(spent),
                    "remaining_usd": nanos_to_usd(max(budget - spent, 0)),
                    "exhausted": spent >= budget,
                }
            )
        warnings = []
        if not self.services.runtime.usage_tracking:
            warnings.append("usage tracking is off: new spend is not counted")
        if self.last_error:
            warnings.append(f"reading spend failed: {self.last_error}")
        return {
            "month": f"{self.month:%Y-%m}",
            "default_budget_usd": None if self.default is None else nanos_to_usd(self.default),
            "refresh_seconds": self.refresh_seconds,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "refused": self.refused,
            "budgets": rows,
            "warnings": warnings,
        }
