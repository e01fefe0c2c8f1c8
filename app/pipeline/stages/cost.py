"""Cost write: the outermost stage. However a request ends (finished, refused, failed before
or during the stream, or abandoned by the client) it prices the usage and hands exactly one
row to the usage writer."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import fields
from operator import attrgetter
from typing import Any, ClassVar

import orjson

from app import estimate
from app.errors import RelayError, ShuttingDown
from app.internal import MAX_NANOUSD, Reply, Usage, bounded_nanousd
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.pipeline.helpers import after_reply
from app.pricing import Charge
from app.services import Services
from app.stores.rate_cards import RateCards
from app.stores.usage_row import UsageRow

log = logging.getLogger("llm_relay.cost")


SHUT_DOWN = ShuttingDown("the relay shut down before the request finished (SHUTDOWN_GRACE_SECONDS)")


def settle(ex: Exchange, exc: BaseException | None, *, stopping: bool = False) -> None:
    """Record how the exchange ended; ``stopping``: the process is shutting down, so a
    cancellation is its grace period running out, not (as otherwise) a client that left."""
    ex.ended_at = time.perf_counter()
    if exc is None:
        ex.outcome = ex.outcome or "ok"
    elif isinstance(exc, (GeneratorExit, asyncio.CancelledError)) and stopping:
        ex.outcome, ex.status, ex.error = SHUT_DOWN.outcome, SHUT_DOWN.status, SHUT_DOWN.message
    elif isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
        ex.outcome = "client_closed"
        ex.status = 499
        ex.error = "the client closed the connection"
    elif isinstance(exc, RelayError):
        ex.outcome = exc.outcome
        if ex.first_token_at is None:
            ex.status = exc.status  # once streaming began the client saw 200 and an error frame
        ex.error = exc.message
    else:
        ex.outcome = "error"
        ex.status = 500
        ex.error = f"{type(exc).__name__}: {exc}"


def row_of(ex: Exchange, charge: Charge | None, cards: RateCards) -> UsageRow:
    target = ex.target
    usage = ex.usage
    computed = charge.computed if charge else None
    parts = computed.parts if computed else {}
    if computed is not None and abs(computed.total) > MAX_NANOUSD:  # absurd counts or rates: stored clamped
        parts = {name: bounded_nanousd(value) for name, value in parts.items()}
    rates_id, rates = cards.card(computed.rates, computed.tier, computed.service_tier) if computed else (None, None)
    return UsageRow(
        request_id=ex.request_id,
        created_at=ex.created_at,
        endpoint=ex.endpoint,
        dialect=ex.dialect,
        client=ex.client[:64],
        requested_model=ex.requested_model[:255],
        resolved_model=target.label[:255] if target else None,
        provider=target.provider.name if target else None,
        route=target.via if target else "none",
        input_tokens=usage.input,
        output_tokens=usage.output,
        reasoning_tokens=usage.reasoning,
        cached_input_tokens=usage.cached_input,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,
        usage_reported=usage.reported,
        cache_write_1h_tokens=usage.cache_write_1h,
        web_search_requests=usage.web_search_requests,
        service_tier=(usage.service_tier or "")[:16] or None,
        cost_nanousd=None if ex.cost_nanousd is None else bounded_nanousd(ex.cost_nanousd),
        cost_source=charge.source if charge else "unpriced",
        computed_cost_nanousd=bounded_nanousd(computed.total) if computed else None,
        provider_cost_nanousd=usage.provider_cost_nanousd,
        cost_input_nanousd=parts.get("input"),
        cost_cached_input_nanousd=parts.get("cached_input"),
        cost_cache_read_nanousd=parts.get("cache_read"),
        cost_cache_write_nanousd=parts.get("cache_write"),
        cost_output_nanousd=parts.get("output"),
        cost_request_nanousd=parts.get("request"),
        cost_search_nanousd=parts.get("search"),
        pricing_tier=computed.tier if computed else None,
        rates_id=rates_id,
        rates=rates,
        latency_ms=ex.latency_ms,
        ttft_ms=ex.ttft_ms,
        streamed=ex.stream,
        status=ex.status,
        outcome=ex.outcome or "error",
        error=ex.error,
        tags=list(ex.tags),
        attempts=orjson.dumps(ex.state["attempts"]).decode() if ex.state.get("attempts") else None,
    )


def file_row(services: Services, row: UsageRow) -> None:
    """Count the row in the metrics (even with usage tracking off) and hand it to the writer."""
    services.metrics.observe(row)
    if services.runtime.usage_tracking:
        services.usage.submit(row)


_USAGE_FIELDS = attrgetter(*(f.name for f in fields(Usage)))  # the usage's values, as a tuple


class _Priced:
    """An exchange's charge, computed once per distinct usage (and pricer): a stream's usage
    chunk shows the caller its cost and the usage row records it, one pricing for both. It is
    handed the exchange on each call rather than holding it: the exchange holds this, and a
    cycle between the two kept every finished request's objects alive until a collection."""

    __slots__ = ("charge", "key", "services")

    def __init__(self, services: Services) -> None:
        self.services = services
        self.key: tuple[Any, ...] | None = None
        self.charge: Charge | None = None

    def current(self, ex: Exchange) -> Charge | None:
        if ex.target is None:
            return None
        pricer = self.services.pricer  # swapped whole when overrides change
        key = (pricer, ex.target, _USAGE_FIELDS(ex.usage))
        if key != self.key:
            self.key, self.charge = key, pricer.charge(ex.target, ex.usage)
        return self.charge

    def __call__(self, ex: Exchange) -> int | None:
        charge = self.current(ex)
        return charge.charged if charge else None


class CostStage:
    name: ClassVar[str] = "cost"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        services = ctx.services
        self.services = services
        self.cards = RateCards()

    def _finish(self, ex: Exchange, exc: BaseException | None) -> None:
        settle(ex, exc, stopping=self.services.requests.stopping)
        if not ex.usage.reported and ex.target is not None and (ex.pieces or ex.outcome == "ok"):
            ex.usage.input = estimate.prompt_tokens(ex.body)
            ex.usage.output = ex.pieces
        elif ex.outcome in ("client_closed", "shutdown"):
            # Reported usage may predate the hang-up (Anthropic's message_start says 1 output token).
            ex.usage.output = max(ex.usage.output, ex.pieces)
        charge = priced.current(ex) if isinstance(priced := ex.pricer, _Priced) else None
        ex.cost_nanousd = charge.charged if charge else None
        file_row(self.services, row_of(ex, charge, self.cards))

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        ex.pricer = _Priced(self.services)
        try:
            reply = await call_next(ex)
        except BaseException as exc:
            self._finish(ex, exc)
            raise
        # At once for a whole body; for a stream, however it ends (a hang-up included).
        return await after_reply(ex, reply, self._finish)
