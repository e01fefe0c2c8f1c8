"""The Usage page: summary cards, a cost and requests chart drawn as SVG on the server,
breakdowns, and the request log, all under the filters in the query string.

htmx swaps regions of the same URL: ``HX-Target: usage-results`` (the filter form) gets the
results without the page around them, ``usage-log`` (the pager) only the log, which skips the
aggregates. Anything else, history restores included, gets the whole page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import falcon.asgi
import orjson

from app.admin.api.usage import page_numbers, request_log
from app.admin.api.usage_queries import FILTER_KEYS, OUTCOMES, PER_PAGE, Query, Reader, measured, overview, parse_query
from app.admin.context import AdminContext, Resource
from app.admin.render import render
from app.pricing.pricer import NANOS_PER_USD

CHART_W, CHART_H = 800, 240
LEFT, RIGHT, TOP, BOTTOM = 70, 56, 12, 28
BREAKDOWN_ROWS = 15


def usd(nanos: int | None) -> str:
    """Dollars for people: cents above a dollar, more digits below it; None is "unpriced"."""
    if nanos is None:
        return "unpriced"
    if nanos == 0:
        return "$0.00"
    amount = Decimal(nanos) / NANOS_PER_USD
    places = "0.01" if abs(amount) >= 1 else "0.0001" if abs(amount) >= Decimal("0.01") else "0.000001"
    return f"${amount.quantize(Decimal(places)):,}"


def exact_usd(nanos: int | None) -> str:
    return "unpriced" if nanos is None else f"${Decimal(nanos) / NANOS_PER_USD:f}"


def cost(fig: dict[str, Any]) -> str:
    """An aggregate's cost and the requests its sum leaves out, "$1.23 (5 unpriced)"; "unpriced",
    never $0, when not one of its requests had a price."""
    text, left_out = usd(fig["cost_nanousd"]), fig["unpriced_requests"]
    return f"{text} ({left_out:,} unpriced)" if left_out and fig["cost_nanousd"] is not None else text


def nanos(value: int | None) -> str:
    """A ``<data>`` element's machine-readable amount: empty when unpriced."""
    return "" if value is None else str(value)


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def row_fields(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Every field of a log row, as the expanded row lists them: money exact, in dollars."""
    out = []
    for name, value in row.items():
        if name == "cost_usd":
            continue
        if name.endswith("_nanousd"):
            text = "—" if value is None else f"{exact_usd(value)} ({value:,} nano-dollars)"
            text = "unpriced" if name == "cost_nanousd" and value is None else text
        elif name == "rates":
            text = "—" if value is None else orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        elif name == "tags":
            text = ", ".join(value) or "—"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, datetime):
            text = value.astimezone(UTC).isoformat(sep=" ")
        else:
            text = "—" if value is None or value == "" else str(value)
        out.append((name, text))
    return out


HELPERS = {
    "usd": usd,
    "exact_usd": exact_usd,
    "cost": cost,
    "nanos": nanos,
    "number": number,
    "percent": percent,
    "row_fields": row_fields,
}


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value``: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power * (1 + 1e-9))


def chart(points: list[dict[str, Any]], bucket: str) -> dict[str, Any]:
    """Bars for cost (left scale) and a line for requests (right scale), in SVG user units."""
    plot_w, plot_h = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    n = max(1, len(points))
    slot = plot_w / n
    max_cost = _nice(max((p["cost_nanousd"] or 0 for p in points), default=0) / 1e9)
    max_requests = _nice(max((p["requests"] for p in points), default=0))
    bars, line, labels = [], [], []
    every = max(1, round(n / 8))  # about eight labels on the time axis
    for i, p in enumerate(points):
        label = p["start"][11:16] if bucket == "hour" else p["start"][5:10]
        height = (p["cost_nanousd"] or 0) / 1e9 / max_cost * plot_h  # an unpriced bucket has no bar
        title = f"{p['start'][:16].replace('T', ' ')}: {cost(p)}, {p['requests']:,} requests"
        x, y = round(LEFT + i * slot + slot * 0.15, 1), round(TOP + plot_h - height, 1)
        bars.append(Bar(x, y, round(slot * 0.7, 1), round(height, 1), title))
        line.append(f"{LEFT + (i + 0.5) * slot:.1f},{TOP + plot_h - p['requests'] / max_requests * plot_h:.1f}")
        if i % every == 0:
            labels.append((round(LEFT + (i + 0.5) * slot, 1), label))
    grid = [
        (round(TOP + plot_h * (1 - share), 1), usd(round(max_cost * share * 1e9)), f"{max_requests * share:,.4g}")
        for share in (0, 0.5, 1)
    ]
    return {
        "width": CHART_W,
        "height": CHART_H,
        "left": LEFT,
        "right": CHART_W - RIGHT,
        "bottom": TOP + plot_h,
        "bars": bars,
        "line": " ".join(line),
        "labels": labels,
        "grid": grid,
    }


def link(params: dict[str, str], **changes: Any) -> str:
    """This page's URL with the same filters and some changed (None removes one)."""
    merged = {**params, **changes}
    return "/usage?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})


class Page(Resource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.vary = ("HX-Request", "HX-Target")  # one URL, three shapes: never cache one for another
        restoring = req.get_header("HX-History-Restore-Request") == "true"
        target = req.get_header("HX-Target") if req.get_header("HX-Request") == "true" and not restoring else None
        template = {"usage-results": "usage_results.html", "usage-log": "usage_log.html"}.get(target or "")
        try:
            q = parse_query(req.get_param)
            page, per_page = page_numbers(req.get_param)
        except ValueError as exc:
            # htmx swaps only 2xx answers, so a bad filter in the form still shows its message.
            resp.status = 200 if template else 400
            typed = {k: v for k in FILTER_KEYS if (v := req.get_param(k))}
            failed: dict[str, Any] = {"error": str(exc), "params": typed, "q": None, "outcomes": OUTCOMES}
            await render(self.ctx, req, resp, "usage_results.html" if template else "usage.html", **failed, **HELPERS)
            return
        values = await self.values(q, page, per_page, log_only=template == "usage_log.html")
        await render(self.ctx, req, resp, template or "usage.html", **values, **HELPERS)

    async def values(self, q: Query, page: int, per_page: int, *, log_only: bool) -> dict[str, Any]:
        db = self.ctx.services.database

        async def read() -> dict[str, Any]:
            reader = Reader.of(db)
            measured_q = await measured(reader, q)
            found = {} if log_only else await overview(reader, measured_q, BREAKDOWN_ROWS)
            total = found["summary"]["requests"] if found else None  # the log's count, already known
            return {**found, "log": await request_log(reader, measured_q, page, per_page, total)}

        values = await self.ctx.in_db(read)
        if not log_only:
            values["chart"] = chart(values["series"]["points"], q.bucket)
        per_page_param = per_page if per_page != PER_PAGE else None
        # The exact range shown, so a download made later (or past midnight) matches the page.
        export = urlencode({**q.params, "from": q.since.isoformat(), "to": q.until.isoformat()})
        return {**values, "q": q, "params": q.params, "error": None, "link": link, "outcomes": OUTCOMES,
                "export": export, "per_page_param": per_page_param}  # fmt: skip


def routes(ctx: AdminContext) -> list[tuple[str, object, str | None]]:
    return [("/usage", Page(ctx), None)]
