"""How fast the Usage page and the Dashboard answer with a million usage rows on SQLite.

    PYTHONPATH=. /work/venv/bin/python bench/usage_page.py [--rows 1000000] [--db PATH] [--keep] [--without-indexes]

Builds a fresh SQLite database with the relay's own migrations (so it has exactly the indexes a
real install has), fills it with realistic rows spread over 90 days by bulk SQL inserts, then
times each query the Usage page runs, and GET /usage, /api/usage/... and / through a real
server (uvicorn, the admin app, a logged-in client), printing the timings. ANALYZE is not run:
a real install never runs it either, so the query planner works from the same knowledge.
``--without-indexes`` drops the indexes migration 0005 added, to see what they are worth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.admin import create_admin_app
from app.admin.api.usage import in_database, request_log
from app.admin.api.usage_queries import Reader, breakdown, grouped, measured, overview, parse_query
from app.admin.pages.dashboard import dashboard
from app.main import create_app
from app.settings import Settings
from app.stores.db import apply_migrations

DAYS = 90
PASSWORD = "bench password"
# provider, model, weight, $ per million tokens in, out (None: unpriced; 0: a free Ollama model)
MODELS = [
    ("openai", "gpt-4o", 14, 2.5, 10.0),
    ("openai", "gpt-4o-mini", 22, 0.15, 0.6),
    ("openai", "gpt-4.1", 6, 2.0, 8.0),
    ("openai", "o3-mini", 4, 1.1, 4.4),
    ("anthropic", "claude-sonnet-4-5", 12, 3.0, 15.0),
    ("anthropic", "claude-haiku-4-5", 8, 1.0, 5.0),
    ("anthropic", "claude-opus-4-1", 2, 15.0, 75.0),
    ("gemini", "gemini-2.5-pro", 4, 1.25, 10.0),
    ("gemini", "gemini-2.5-flash", 7, 0.3, 2.5),
    ("groq", "openai/gpt-oss-20b", 4, 0.1, 0.5),
    ("groq", "llama-3.3-70b-versatile", 2, 0.59, 0.79),
    ("deepseek", "deepseek-chat", 3, 0.27, 1.1),
    ("deepseek", "deepseek-reasoner", 2, 0.55, 2.19),
    ("mistral", "mistral-large-latest", 2, 2.0, 6.0),
    ("xai", "grok-4", 1, 3.0, 15.0),
    ("openrouter", "meta-llama/llama-3.1-8b-instruct", 2, 0.02, 0.03),
    ("home", "llama3.2:latest", 3, 0.0, 0.0),
    ("home", "qwen2.5:7b", 1, 0.0, 0.0),
    ("lmstudio", "qwen2.5-7b-instruct", 1, None, None),
]
OUTCOMES = [("ok", 200, 950), ("upstream_error", 502, 18), ("upstream_error", 429, 7), ("client_error", 400, 10),
            ("client_error", 404, 5), ("client_closed", 499, 7), ("error", 500, 3)]  # fmt: skip
TAGS = [f"user-{n}" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")]
TAGS += [f"project-{n}" for n in range(20)] + [f"team-{n}" for n in ("web", "data", "ml", "ops", "sales")]
TAGS += ["ci", "eval", "batch", "open-webui", "continue"]
ADDED_BY_0005 = {
    ("usage_record", ("provider", "created_at")),
    ("usage_record", ("resolved_model", "created_at")),
    ("usage_record", ("outcome", "created_at")),
    ("usage_tag", ("tag", "request_id")),
}
CLIENTS = [f"10.0.{n // 8}.{10 + n}" for n in range(25)]
ENDPOINTS = [("/v1/chat/completions", "openai", 75), ("/api/chat", "ollama", 15), ("/api/generate", "ollama", 4),
             ("/v1/embeddings", "openai", 6)]  # fmt: skip
COLUMNS = (
    "request_id created_at endpoint dialect client requested_model resolved_model provider route input_tokens "
    "output_tokens reasoning_tokens cached_input_tokens cache_read_tokens cache_write_tokens usage_reported "
    "cache_write_1h_tokens web_search_requests cost_nanousd cost_source computed_cost_nanousd cost_input_nanousd "
    "cost_cached_input_nanousd cost_output_nanousd rates latency_ms ttft_ms streamed status outcome error"
).split()


def make_row(rng: random.Random, n: int, moment: datetime) -> tuple[tuple[Any, ...], list[str]]:
    provider, model, _, rate_in, rate_out = rng.choices(MODELS, weights=[m[2] for m in MODELS])[0]
    endpoint, dialect, _ = rng.choices(ENDPOINTS, weights=[e[2] for e in ENDPOINTS])[0]
    outcome, status, _ = rng.choices(OUTCOMES, weights=[o[2] for o in OUTCOMES])[0]
    ok = outcome == "ok"
    tokens_in = int(rng.lognormvariate(6.5, 1.1)) if outcome != "client_error" else 0
    tokens_out = int(rng.lognormvariate(5.5, 1.0)) if ok or outcome == "client_closed" else 0
    reasoning = tokens_out // 2 if model in ("o3-mini", "deepseek-reasoner") else 0
    cached = tokens_in // 3 if rng.random() < 0.3 else 0
    priced = rate_in is not None and rate_out is not None and (tokens_in or tokens_out)
    cost_in = round((tokens_in - cached) * (rate_in or 0) * 1000) if priced else None
    cost_cached = round(cached * (rate_in or 0) * 250) if priced else None
    cost_out = round(tokens_out * (rate_out or 0) * 1000) if priced else None
    cost = (cost_in or 0) + (cost_cached or 0) + (cost_out or 0) if priced else None
    source = "unpriced" if cost is None else "free" if rate_in == 0 else "catalog"
    rates = (
        json.dumps({"input_cost_per_token": f"{rate_in / 1e6:.10f}", "output_cost_per_token": f"{rate_out / 1e6:.10f}"})
        if priced
        else None
    )
    tags = rng.sample(TAGS[:12] if rng.random() < 0.6 else TAGS, k=rng.choices((1, 2, 3), weights=(60, 30, 10))[0])
    latency = int(rng.lognormvariate(7, 0.8))
    row = (
        f"req-{n:08d}-{rng.getrandbits(32):08x}", moment.isoformat(sep=" "), endpoint, dialect,
        rng.choice(CLIENTS), model, f"{provider}/{model}", provider, "direct", tokens_in, tokens_out, reasoning,
        cached, 0, 0, int(ok), 0, 0, cost, source, cost, cost_in, cost_cached, cost_out,
        rates, latency, latency // 4 if ok else None, int(rng.random() < 0.6), status, outcome,
        None if ok else f"{provider} answered {status}",
    )  # fmt: skip
    return row, tags


def fill(path: Path, rows: int, seed: int = 7) -> None:
    """Bulk inserts, oldest first like a live relay writes them, one transaction per 50,000 rows."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = DAYS * 86400.0
    offsets = sorted(rng.random() * span for _ in range(rows))
    insert_record = f"INSERT INTO usage_record ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    insert_tag = "INSERT INTO usage_tag (request_id, tag) VALUES (?, ?)"
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous = OFF")
    try:
        for start in range(0, rows, 50_000):
            records, tags = [], []
            for n in range(start, min(rows, start + 50_000)):
                row, row_tags = make_row(rng, n, now - timedelta(seconds=span - offsets[n]))
                records.append(row)
                tags += [(row[0], tag) for tag in row_tags]
            with con:
                con.executemany(insert_record, records)
                con.executemany(insert_tag, tags)
    finally:
        con.close()


def drop_added_indexes(path: Path) -> None:
    with sqlite3.connect(path) as con:
        found = con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        for name, table in found.fetchall():
            columns = tuple(row[2] for row in con.execute(f"PRAGMA index_info('{name}')"))
            if (table, columns) in ADDED_BY_0005:
                con.execute(f'DROP INDEX "{name}"')


async def timed(label: str, run: Callable[[], Awaitable[Any]], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    best = min(times) * 1000
    print(f"  {label:<46} {best:8.1f} ms   (median {statistics.median(times) * 1000:.1f} ms)")
    return best


async def time_scenario(reader: Reader, name: str, params: dict[str, str]) -> None:
    """The Usage page's queries for one set of filters, one by one and then all together."""
    q = parse_query(params.get)
    page = int(params.get("page", "1"))
    print(f"{name}: {q.since:%Y-%m-%d %H:%M} to {q.until:%Y-%m-%d %H:%M}, {params}")
    if q.filters.tag:
        await timed("counts that choose the tag filter's plan", lambda: measured(reader, q))
        q = await measured(reader, q)
        print(f"  (rows in range, rows with the tag: {q.sizes}; tag tested per row in range: {q.tag_in_range()})")
    await timed(f"grouped by {q.bucket}, provider, model", lambda: grouped(reader, q, ("bucket", "provider", "model")))
    await timed("breakdown by client", lambda: breakdown(reader, q, "client", 15))
    await timed("breakdown by tag", lambda: breakdown(reader, q, "tag", 15))
    await timed(f"request log page {page} (with its count)", lambda: request_log(reader, q, page, 50))

    async def everything() -> None:
        measured_q = await measured(reader, q)
        found = await overview(reader, measured_q, 15)
        await request_log(reader, measured_q, page, 50, found["summary"]["requests"])

    await timed("= everything the page reads", everything)


async def time_queries(relay: Any, scenarios: dict[str, dict[str, str]]) -> None:
    reader = Reader.of(relay.services.database)
    for name, params in scenarios.items():
        await time_scenario(reader, name, params)
    await timed("dashboard (today; totals by 4 groups)", lambda: dashboard(relay.admin))


class Server:
    """The relay and its admin app on loopback ports, in a thread with its own event loop."""

    def __init__(self, db_url: str) -> None:
        settings = Settings(port=0, database_url=db_url, admin_password=PASSWORD, log_level="WARNING")
        self.relay = create_app(settings, migrate=False)
        admin = create_admin_app(self.relay)
        self.servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                      lifespan=lifespan))
                        for app, lifespan in ((self.relay, "on"), (admin, "off"))]  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        from app.server import serve_all

        await serve_all(self.servers)

    def __enter__(self) -> Server:
        self.thread.start()
        while not all(s.started for s in self.servers):
            time.sleep(0.05)
        port = self.servers[1].servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def call(self, coro: Callable[[], Awaitable[Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro(), self.loop).result(600)

    def __exit__(self, *exc: object) -> None:
        self.servers[0].should_exit = True
        self.thread.join(30)


def time_http(url: str, paths: list[str], repeat: int = 5) -> None:
    with httpx.Client(base_url=url, headers={"Origin": url}, timeout=120) as client:
        assert client.post("/api/login", json={"password": PASSWORD}).status_code == 200
        for path in paths:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                reply = client.get(path)
                times.append(time.perf_counter() - started)
                assert reply.status_code == 200, (path, reply.status_code, reply.text[:300])
            print(
                f"  GET {path:<60} best {min(times) * 1000:7.1f} ms  median {statistics.median(times) * 1000:7.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLite file to create (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse --db if it exists and keep it afterwards")
    parser.add_argument("--without-indexes", action="store_true", help="drop the indexes of migration 0005 first")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    path = Path(args.db or Path(folder.name) / "usage-bench.db")
    db_url = f"sqlite://{path}"
    if not (args.keep and path.exists()):
        path.unlink(missing_ok=True)
        asyncio.run(apply_migrations(db_url))
        started = time.perf_counter()
        fill(path, args.rows)
        print(f"filled {args.rows:,} rows over {DAYS} days in {time.perf_counter() - started:.1f} s ({path})")
    else:
        asyncio.run(apply_migrations(db_url))  # a kept database gets any migration added since
    if args.without_indexes:
        drop_added_indexes(path)
    with sqlite3.connect(path) as con:
        tags = con.execute("SELECT COUNT(*) FROM usage_tag").fetchone()[0]
        indexes = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")]
    print(f"usage_tag rows: {tags:,}; indexes: {', '.join(indexes)}")
    today = datetime.now(UTC).date()
    scenarios = {
        "default (last 7 days)": {},
        "7 days, one tag": {"tag": "user-alice"},
        "7 days, provider and outcome": {"provider": "anthropic", "outcome": "ok"},
        "7 days, log page 100": {"page": "100"},
        "2 days (per hour)": {"from": (today - timedelta(days=1)).isoformat()},
        "90 days (everything)": {"from": (today - timedelta(days=DAYS)).isoformat()},
        "90 days, one tag": {"from": (today - timedelta(days=DAYS)).isoformat(), "tag": "project-3"},
    }
    with Server(db_url) as server:
        db = server.relay.services.database
        server.call(lambda: in_database(db, lambda: time_queries(server.relay, scenarios)))
        print("through the admin server (uvicorn, logged in):")
        ninety = (today - timedelta(days=DAYS)).isoformat()
        paths = ["/usage", "/usage?tag=user-alice", "/usage?provider=openai&model=openai/gpt-4o", "/usage?outcome=ok"]
        paths += [f"/usage?from={ninety}", "/api/usage/summary", "/api/usage/requests?page=20", "/"]
        time_http(server.url, paths)
        time_http(server.url, ["/api/usage/export?format=csv&tag=project-3", "/api/usage/export?format=json"], 1)
    if not args.keep:
        folder.cleanup()


if __name__ == "__main__":
    main()
