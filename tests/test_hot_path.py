"""The request path never touches the database: every query a burst of requests causes is the
usage writer's batched insert, run outside the requests after their responses went out.

Queries are seen through Tortoise's own query log (``tortoise.db_client`` at DEBUG, the same on
SQLite and PostgreSQL), which the usage writer's inserts go through too. An ASGI wrapper marks
everything a request runs, including any task it starts, with a context variable, so a query is
known to come from a request or from elsewhere.
Not a timing test.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.main import create_app
from tests.conftest import Relay, relay_settings
from tests.live import LiveServer

IN_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("in_request", default="")
BACKGROUND_READERS = {"live-config"}  # the periodic configuration reload, beside the request path


class Marked:
    """The relay, with every HTTP request's context marked."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            IN_REQUEST.set(f"{scope['method']} {scope['path']}")  # this task's own context
        await self.app(scope, receive, send)


class QueryLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[tuple[str, str, str]] = []  # (request or "", task name, SQL)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # not on an event loop
            task = None
        sql = str(record.args[0]) if isinstance(record.args, tuple) and record.args else record.getMessage()
        self.queries.append((IN_REQUEST.get(), task.get_name() if task else "", sql))


@pytest.fixture
def query_log():
    loggers = [logging.getLogger("tortoise.db_client")]
    handler = QueryLog()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _requests(url: str, tag: str) -> None:
    headers = {"X-Proxy-Tag": tag}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(3):
            assert client.post("/v1/chat/completions", json={**chat, "model": "openai/chat_nonstream_basic"}).is_success
            for options in ({}, {"stream_options": {"include_usage": True}}):
                body = {**chat, "model": "openai/chat_stream_text_short", "stream": True, **options}
                reply = client.post("/v1/chat/completions", json=body)
                assert reply.is_success and reply.text.endswith("data: [DONE]\n\n")
            body = {**chat, "model": "groq/chat_stream_reasoning_x_groq_usage", "stream": True}
            assert client.post("/v1/chat/completions", json=body).is_success
            assert client.post("/api/chat", json={**chat, "model": "openai/chat_stream_text_short"}).is_success
            assert client.post("/v1/chat/completions", json={**chat, "model": "nobody/nothing"}).status_code == 404
            assert client.get("/v1/models").is_success
            routed = client.post("/v1/chat/completions", json={**chat, "model": "hot-route"})  # a route, a limit
            assert routed.is_success and routed.headers["x-ratelimit-limit-requests"] == "100000"


def _inserts(sql: str) -> bool:
    """An INSERT, or (PostgreSQL's usage batch) a WITH whose statements insert."""
    text = sql.lstrip().upper()
    return text.startswith("INSERT") or (text.startswith("WITH") and "INSERT INTO" in text)


@pytest.fixture
def marked_relay(db_url: str, emulator: Any, tmp_path: Path) -> Iterator[Relay]:
    routes = [{"name": "hot-route", "deployments": ["openai/chat_nonstream_basic", "groq/chat_nonstream_basic"]}]
    limits = [{"deployment": "openai/chat_nonstream_basic", "requests_per_minute": 100000}]
    providers = tmp_path / "providers.yaml"
    providers.write_text(yaml.safe_dump({"routes": routes, "limits": limits}))
    settings = relay_settings(db_url, emulator[1], config_refresh_seconds=3600, providers_file=str(providers))
    app = create_app(settings, migrate=False)
    server = LiveServer(Marked(app)).start()
    relay = Relay(app, server)
    relay.refresh_models()
    yield relay
    server.stop()


def test_requests_run_no_query_and_rows_are_batched_inserts(marked_relay: Relay, query_log: QueryLog) -> None:
    relay = marked_relay
    relay.server.call(relay.app.services.usage.flush)  # start-up rows are written
    query_log.queries.clear()

    tag = f"hot-{uuid.uuid4().hex[:8]}"
    _requests(relay.url, tag)
    relay.server.call(relay.app.services.usage.flush)  # the writer inserts what is left
    queries = list(query_log.queries)

    from_requests = [(request, sql) for request, _, sql in queries if request]
    assert not from_requests, f"the request path ran queries: {from_requests}"
    elsewhere = [(task, sql) for _, task, sql in queries if task not in BACKGROUND_READERS]
    inserts = [sql for _, sql in elsewhere if _inserts(sql)]
    assert inserts, "the query log saw no usage insert: the instrument is broken, not the relay clean"
    assert len(inserts) == len(elsewhere), f"not only the writer's inserts: {elsewhere}"
    # Batched: a handful of multi-row inserts for 21 requests, not one per request.
    assert len(inserts) < 21
    assert len(relay.rows(tag=tag)) == 21  # and every request still left its row


def test_a_finished_request_leaves_no_reference_cycle(marked_relay: Relay) -> None:
    """A request's objects are freed as soon as it ends, by reference counting: an exchange in
    a reference cycle (it once held a pricer that held it) lived on until the next garbage
    collection, with its body, usage and charge, and under load made collections more frequent
    and costlier. Everything the collector finds while the requests run is kept and inspected."""
    from app.pipeline.core import Exchange

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable goes to gc.garbage
    try:
        _requests(marked_relay.url, f"gc-{uuid.uuid4().hex[:8]}")
        marked_relay.server.call(marked_relay.app.services.usage.flush)
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, Exchange)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not cyclic, f"{len(cyclic)} exchanges were freed only by the garbage collector"
