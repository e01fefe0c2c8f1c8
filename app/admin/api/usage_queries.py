"""What the usage API and the Usage and Dashboard pages compute, under one set of filters
(docs/admin-api/usage.md), so a page and its endpoint can never disagree.

Aggregates are SQL over ``usage_record`` itself, plus the daily totals of the days the
retention job deleted (app.stores.rollup); the request log and the export are in
app.admin.api.usage, and hold only the rows still kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.pricing import dollars, summed_cost
from app.stores.db import Database
from app.stores.queries import UsageFilter
from app.stores.rollup import SUMS, daily_grouped

DEFAULT_DAYS = 7
HOURLY_UP_TO = timedelta(days=2)  # longer ranges are drawn per day
PER_PAGE, MAX_PER_PAGE = 50, 500
BREAKDOWNS = {
    "tag": "t.tag",
    "provider": "COALESCE(r.provider, '')",
    "model": "COALESCE(r.resolved_model, '')",
    "client": "r.client",
    "outcome": "r.outcome",
}
OUTCOMES = ("ok", "client_error", "rate_limited", "upstream_error", "client_closed", "shutdown", "overloaded", "error")
MAX_RANGE = timedelta(days=3660)  # ten years
FILTER_KEYS = ("from", "to", "tag", "provider", "model", "client", "outcome", "status")
BUCKET_SQL = {  # created_at is UTC text on SQLite (YYYY-MM-DD HH:MM:SS...), timestamptz on PostgreSQL
    ("sqlite", "day"): "substr(r.created_at, 1, 10)",
    ("sqlite", "hour"): "substr(r.created_at, 1, 13)",
    ("postgres", "day"): "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    ("postgres", "hour"): "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')",
}
MEASURES = (
    "COUNT(*) AS requests, SUM(CASE WHEN r.outcome = 'ok' THEN 1 ELSE 0 END) AS ok, "
    "SUM(CASE WHEN r.outcome = 'ok' AND r.cost_nanousd IS NULL THEN 1 ELSE 0 END) AS unpriced, "
    "COUNT(r.cost_nanousd) AS priced, " + ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in SUMS)
)


@dataclass(frozen=True, slots=True)
class Reader:
    """Where the rows are: a connection, and the SQL dialect it speaks (sqlite or postgres)."""

    conn: BaseDBAsyncClient
    backend: str

    @classmethod
    def of(cls, db: Database) -> Reader:
        return cls(db.connection, db.backend)

    async def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return await self.conn.execute_query_dict(sql, params)


@dataclass(frozen=True, slots=True)
class Query:
    """A request's filters, and the query-string values that produced them (for links)."""

    filters: UsageFilter
    since: datetime
    until: datetime
    params: dict[str, str] = field(default_factory=dict)
    sizes: tuple[int, int] | None = None  # rows in the date range, rows with the tag: see tag_in_range

    @property
    def last_day(self) -> date:
        """The last UTC day the range touches, as a date field shows ``to``."""
        return (self.until - timedelta(microseconds=1)).date()

    @property
    def bucket(self) -> str:
        return "hour" if self.until - self.since <= HOURLY_UP_TO else "day"

    def tag_in_range(self, wanted: int | None = None) -> bool:
        """How a tag filter runs: True tests each row of the date range for the tag (EXISTS),
        False starts from the tag's rows (IN). SQLite has no statistics to choose by (nothing
        runs ANALYZE) and picks IN, which walks every row the tag ever had; so we compare the
        two counts. Fetching a tagged row by request id costs about three times testing a row
        of the range (bench/usage_page.py). ``wanted``: the log stops after that many rows,
        which a walk from the newest row finds early when the tag is common."""
        if self.sizes is None:
            return False
        in_range, tagged = self.sizes
        walked = in_range if wanted is None else min(in_range, wanted * in_range / max(tagged, 1))
        return walked <= 3 * tagged


def _moment(text: str, *, end: bool) -> datetime:
    """A date means that whole UTC day (``to`` includes it); a datetime without a zone is UTC."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_query(get: Any) -> Query:
    """Filters from query parameters (``get(name)`` gives a value or None); ValueError says
    what is wrong. Without dates: the last seven UTC days, today included."""
    params = {k: v.strip() for k in FILTER_KEYS if (v := get(k)) is not None and v.strip()}
    tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(), UTC)
    try:
        until = _moment(params["to"], end=True) if "to" in params else tomorrow
        since = _moment(params["from"], end=False) if "from" in params else until - timedelta(days=DEFAULT_DAYS)
    except (ValueError, OverflowError):
        raise ValueError("from and to take a date (YYYY-MM-DD) or an ISO 8601 date and time") from None
    if since >= until:
        raise ValueError("from must be before to")
    if until - since > MAX_RANGE:  # a point per day of it: 9999 years would be millions
        raise ValueError(f"from and to may be at most {MAX_RANGE.days} days apart")
    status = params.get("status")
    if status is not None and not (status.isascii() and status.isdigit() and len(status) == 3):
        raise ValueError("status is an HTTP status code, such as 200 or 429")
    outcome = params.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome is one of {', '.join(OUTCOMES)}")
    given = {k: params.get(k) for k in ("tag", "provider", "model", "client")}
    filters = UsageFilter(since, until, **given, outcome=outcome, status=int(status) if status else None)
    return Query(filters, since, until, params)


async def measured(reader: Reader, q: Query) -> Query:
    """The query with the two counts that choose how its tag filter runs (SQLite only: both
    are index-only counts, a few milliseconds even for a million rows in range)."""
    if reader.backend != "sqlite" or q.filters.tag is None:
        return q
    sql = Sql(reader.backend)
    since, until, tag = sql.param(q.since), sql.param(q.until), sql.param(q.filters.tag)
    found = await reader.rows(
        f"SELECT (SELECT COUNT(*) FROM usage_record r WHERE r.created_at >= {since} AND r.created_at < {until}) "
        f"AS in_range, (SELECT COUNT(*) FROM usage_tag WHERE tag = {tag}) AS tagged",
        sql.params,
    )
    return replace(q, sizes=(int(found[0]["in_range"]), int(found[0]["tagged"])))


class Sql:
    """Placeholders and datetime parameters the way the backend at hand takes them."""

    def __init__(self, backend: str, *, tag_in_range: bool = False) -> None:
        self.backend = backend
        self.tag_in_range = tag_in_range
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        if isinstance(value, datetime) and self.backend == "sqlite":
            value = value.astimezone(UTC).isoformat(sep=" ")  # compared as text, as stored
        self.params.append(value)
        return "?" if self.backend == "sqlite" else f"${len(self.params)}"

    def where(self, f: UsageFilter) -> str:
        clauses = []
        if f.since is not None:
            clauses.append(f"r.created_at >= {self.param(f.since)}")
        if f.until is not None:
            clauses.append(f"r.created_at < {self.param(f.until)}")
        if f.tag is not None and self.tag_in_range:
            tag = self.param(f.tag)
            clauses.append(f"EXISTS (SELECT 1 FROM usage_tag ft WHERE ft.request_id = r.request_id AND ft.tag = {tag})")
        elif f.tag is not None:
            clauses.append(f"r.request_id IN (SELECT request_id FROM usage_tag WHERE tag = {self.param(f.tag)})")
        clauses += [f"r.{column} = {self.param(value)}" for column, value in f.equalities()]
        return "WHERE " + " AND ".join(clauses) if clauses else ""


RAW = ("requests", "ok", "unpriced", "priced", *SUMS)


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """Summed measures as the API shows them: money in exact nano-dollars and in dollars."""
    out: dict[str, Any] = {name: int(raw[name] or 0) for name in RAW}
    requests = out["requests"]
    out["errors"] = requests - out["ok"]
    out["success_rate"] = out["ok"] / requests if requests else None
    out["error_rate"] = out["errors"] / requests if requests else None
    out["unpriced_requests"] = requests - out["priced"]  # what the cost leaves out
    out["cost_nanousd"] = summed_cost(requests, out["priced"], out["cost_nanousd"])
    out["cost_usd"] = None if out["cost_nanousd"] is None else dollars(out["cost_nanousd"])
    return out


async def grouped(reader: Reader, q: Query, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The measures per combination of ``keys`` (``bucket`` or a breakdown), unsorted.

    SQLite sorts every GROUP BY and each query walks the rows in range again, so the page asks
    for one fine-grained grouping and adds it up in Python (exactly: the sums are integers)."""
    sql = Sql(reader.backend, tag_in_range=q.tag_in_range())
    columns = [BUCKET_SQL[(reader.backend, q.bucket)] if key == "bucket" else BREAKDOWNS[key] for key in keys]
    join = "JOIN usage_tag t ON t.request_id = r.request_id" if "tag" in keys else ""
    select = "".join(f"{column} AS k{i}, " for i, column in enumerate(columns))
    group = f" GROUP BY {', '.join(columns)}" if columns else ""
    rows = await reader.rows(
        f"SELECT {select}{MEASURES} FROM usage_record r {join} {sql.where(q.filters)}{group}", sql.params
    )
    # Days the retention job folded into daily totals count too (a small table: one more query).
    daily = [q.bucket if key == "bucket" else key for key in keys]
    rows += await daily_grouped(reader.conn, reader.backend, q.filters, daily)
    return [{**row, "keys": tuple(str(row[f"k{i}"]) for i in range(len(keys)))} for row in rows]


def add_up(rows: list[dict[str, Any]], key: int | None = None) -> dict[str, dict[str, int]]:
    """Sum grouped rows by their ``key``-th key (None: all of them under "")."""
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        into = totals.setdefault("" if key is None else row["keys"][key], dict.fromkeys(RAW, 0))
        for name in RAW:
            into[name] += int(row[name] or 0)
    return totals


def ranked(totals: dict[str, dict[str, int]], by: str, limit: int) -> dict[str, Any]:
    """Costliest first, then busiest, then by name; ``more`` says groups were left out."""
    order = sorted(totals.items(), key=lambda kv: (-kv[1]["cost_nanousd"], -kv[1]["requests"], kv[0]))
    return {"by": by, "rows": [{"key": k, **figures(v)} for k, v in order[:limit]], "more": len(order) > limit}


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return figures(add_up(rows).get("", dict.fromkeys(RAW, 0)))


async def summary(reader: Reader, q: Query) -> dict[str, Any]:
    return summary_of(await grouped(reader, q, ()))


def _buckets(q: Query) -> list[datetime]:
    step = timedelta(hours=1) if q.bucket == "hour" else timedelta(days=1)
    moment = q.since.replace(minute=0, second=0, microsecond=0)
    moment = moment if q.bucket == "hour" else moment.replace(hour=0)
    out = []
    while moment < q.until:
        out.append(moment)
        moment += step
    return out


def series_of(q: Query, by_bucket: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Every bucket of the range, oldest first, empty ones with zeros."""
    empty = dict.fromkeys(RAW, 0)
    form = "%Y-%m-%d %H" if q.bucket == "hour" else "%Y-%m-%d"
    points = [{"start": b.isoformat(), **figures(by_bucket.get(b.strftime(form), empty))} for b in _buckets(q)]
    return {"bucket": q.bucket, "points": points}


async def series(reader: Reader, q: Query) -> dict[str, Any]:
    """Per hour (ranges up to two days) or per day."""
    return series_of(q, add_up(await grouped(reader, q, ("bucket",)), 0))


async def breakdown(reader: Reader, q: Query, by: str, limit: int = 100) -> dict[str, Any]:
    """Totals per tag, provider, model, client or outcome. A request counts under each of its
    tags, so the tag rows can add up to more than the summary."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by is one of {', '.join(BREAKDOWNS)}")
    return ranked(add_up(await grouped(reader, q, (by,)), 0), by, limit)


async def overview(reader: Reader, q: Query, limit: int) -> dict[str, Any]:
    """What the Usage page shows above its log, from three scans of the rows in range: one
    grouped by bucket, provider and model (summary, series and two breakdowns), then clients
    and tags."""
    fine = await grouped(reader, q, ("bucket", "provider", "model"))
    breakdowns = {"tag": await breakdown(reader, q, "tag", limit)}
    breakdowns["provider"] = ranked(add_up(fine, 1), "provider", limit)
    breakdowns["model"] = ranked(add_up(fine, 2), "model", limit)
    breakdowns["client"] = await breakdown(reader, q, "client", limit)
    return {"summary": summary_of(fine), "series": series_of(q, add_up(fine, 0)), "breakdowns": breakdowns}


async def count(reader: Reader, q: Query) -> int:
    sql = Sql(reader.backend, tag_in_range=q.tag_in_range())
    rows = await reader.rows(f"SELECT COUNT(*) AS n FROM usage_record r {sql.where(q.filters)}", sql.params)
    return int(rows[0]["n"])
