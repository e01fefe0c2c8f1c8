"""Test harness: a real relay (uvicorn on a random loopback port) in front of an emulated
upstream that replays recorded traffic, on SQLite or PostgreSQL.

``RELAY_TEST_DB=postgres`` runs the suite on PostgreSQL (``RELAY_TEST_PG`` gives the server,
default ``postgres://postgres@127.0.0.1:5432``); it fails, never skips, when PostgreSQL is
unreachable. ``RELAY_TEST_REPORT=path`` writes the backend and the test counts there, which
``.ci/run`` checks.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import ollama
import openai
import pytest

from app.main import Factories, RelayApp, create_app
from app.settings import Settings
from app.stores.db import apply_migrations
from app.stores.queries import UsageFilter, usage_rows
from tests.emulator import Emulator
from tests.fault_upstream import FaultyUpstream
from tests.live import LiveServer

BACKEND = os.environ.get("RELAY_TEST_DB", "sqlite")
# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PG_SERVER = os.environ.get("RELAY_TEST_PG", "postgres://postgres@127.0.0.1:5432")
OPENAI_COMPATIBLE = ("openai", "groq", "deepseek", "mistral", "xai", "openrouter")
NATIVE = ("anthropic", "gemini", "perplexity")


class Relay:
    """A running relay and the means to read back what it recorded."""

    def __init__(self, app: RelayApp, server: LiveServer) -> None:
        self.app = app
        self.server = server
        self.url = server.url

    def rows(self, *, request_id: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        async def fetch() -> list[dict[str, Any]]:
            await self.app.services.usage.flush()
            with self.app.services.database.context:
                ids = [request_id] if request_id else None
                return [row async for row in usage_rows(UsageFilter(tag=tag), request_ids=ids)]

        return self.server.call(fetch)

    def row(self, request_id: str) -> dict[str, Any]:
        rows = self.rows(request_id=request_id)
        assert len(rows) == 1, f"expected one usage row for {request_id}, got {len(rows)}"
        return rows[0]

    def refresh_models(self) -> None:
        self.server.call(self.app.discovery.refresh)


def _create_pg_database() -> str:
    name = f"llm_relay_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL tests requested but the server at {PG_SERVER} is unusable: {exc}", pytrace=False)
    return name


def _drop_pg_database(name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per session. Relays under test then start with migrate=False:
    Tortoise's migration recorder builds a model class, which runs ast.parse, and CPython 3.11
    can fail ("AST constructor recursion depth mismatch") when two threads parse at once."""
    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    elif BACKEND == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'relay.db'}"
    else:
        pytest.fail(f"RELAY_TEST_DB must be sqlite or postgres, not {BACKEND!r}", pytrace=False)
    asyncio.run(apply_migrations(url))
    yield url
    if BACKEND == "postgres":
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def emulator() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator()
    server = LiveServer(emu).start()
    yield emu, server.url
    server.stop()


def relay_settings(db_url: str, upstream: str, **changes: Any) -> Settings:
    base = Settings(
        port=0,
        data_dir=tempfile.mkdtemp(prefix="relay-data-"),  # its own usage journal
        database_url=db_url,
        provider_keys={name: f"test-key-{name}" for name in OPENAI_COMPATIBLE + NATIVE},
        provider_base_urls={
            **{name: f"{upstream}/{name}/v1" for name in OPENAI_COMPATIBLE},
            **{name: f"{upstream}/{name}" for name in NATIVE},
        },
        ollama_instances=f"lab={upstream}/lab",
        ollama_refresh_seconds=3600,
        usage_flush_seconds=0.05,
        image_fetch_private=True,  # the tests' image server is on loopback
    )
    return base.with_changes(**changes)


@pytest.fixture
def make_relay(db_url: str, emulator: tuple[Emulator, str]) -> Iterator[Any]:
    started: list[LiveServer] = []

    def make(factories: Factories | None = None, **changes: Any) -> Relay:
        app = create_app(relay_settings(db_url, emulator[1], **changes), factories, migrate=False)
        server = LiveServer(app).start()
        started.append(server)
        relay = Relay(app, server)
        relay.refresh_models()
        return relay

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def relay(db_url: str, emulator: tuple[Emulator, str]) -> Iterator[Relay]:
    app = create_app(relay_settings(db_url, emulator[1]), migrate=False)
    server = LiveServer(app).start()
    relay = Relay(app, server)
    relay.refresh_models()
    yield relay
    server.stop()


@pytest.fixture
def upstream(emulator: tuple[Emulator, str]) -> Emulator:
    return emulator[0]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    passed = len(terminalreporter.stats.get("passed", []))
    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    skipped = len(terminalreporter.stats.get("skipped", []))
    line = f"database backend: {BACKEND}; passed={passed} failed={failed} skipped={skipped}"
    terminalreporter.write_line(line)
    report = os.environ.get("RELAY_TEST_REPORT")
    if report:
        Path(report).write_text(line + "\n")


# SDK clients tests make themselves, closed when each test ends: left to the garbage collector,
# their sockets close during some later test and fail it with an unraisable ResourceWarning.
_OPEN_CLIENTS: list[Any] = []
ClientT = TypeVar("ClientT")


def closing(client: ClientT) -> ClientT:
    _OPEN_CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


class SDKClients:
    """Real SDK clients pointed at a relay, closed when the test ends."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def openai(self, url: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        self._open.append(client)
        return client

    def ollama(self, url: str, headers: dict[str, str] | None = None) -> ollama.Client:
        client = ollama.Client(host=url, headers=headers)
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def sdk() -> Iterator[SDKClients]:
    clients = SDKClients()
    yield clients
    clients.close()


@pytest.fixture
def image_server() -> Iterator[str]:
    """A loopback server that answers every GET with a tiny PNG (tests never use the internet)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"image/png")]})
        await send({"type": "http.response.body", "body": PNG})

    server = LiveServer(app, lifespan="off").start()
    yield server.url
    server.stop()


ADMIN_PASSWORD = "correct horse battery staple"


class Admin:
    """A relay with its admin UI, and a logged-in httpx client for the admin API."""

    def __init__(self, relay: Relay, url: str, *, login: bool = True) -> None:
        self.relay = relay
        self.url = url
        self.client = httpx.Client(base_url=url, headers={"Origin": url})
        self.csrf = ""
        if login:
            reply = self.client.post("/api/login", json={"password": ADMIN_PASSWORD})
            assert reply.status_code == 200, reply.text
            self.csrf = reply.json()["csrf_token"]
            self.client.headers["X-CSRF-Token"] = self.csrf

    def close(self) -> None:
        self.client.close()


def _admin_factory(db_url: str, upstream_url: str, started: list[tuple[LiveServer, Admin]]) -> Any:
    from app.admin import create_admin_app

    def make(*, login: bool = True, **changes: Any) -> Admin:
        changes.setdefault("admin_password", ADMIN_PASSWORD)
        app = create_app(relay_settings(db_url, upstream_url, **changes), migrate=False)
        server = LiveServer(app, also=create_admin_app(app)).start()
        relay = Relay(app, server)
        relay.refresh_models()
        admin = Admin(relay, server.also_url, login=login and changes["admin_password"] == ADMIN_PASSWORD)
        started.append((server, admin))
        return admin

    return make


@pytest.fixture
def make_admin(db_url: str, emulator: tuple[Emulator, str]) -> Iterator[Any]:
    """A fresh relay with its admin UI per call (for tests that change configuration)."""
    started: list[tuple[LiveServer, Admin]] = []
    yield _admin_factory(db_url, emulator[1], started)
    for server, admin in started:
        admin.close()
        server.stop()


@pytest.fixture(scope="module")
def admin(db_url: str, emulator: tuple[Emulator, str]) -> Iterator[Admin]:
    """One relay with its admin UI for a whole test module (for read-only checks)."""
    started: list[tuple[LiveServer, Admin]] = []
    yield _admin_factory(db_url, emulator[1], started)()
    for server, shared in started:
        shared.close()
        server.stop()


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyUpstream]:
    """A raw-socket upstream that fails on request (tests/fault_upstream.py), one per module."""
    server = FaultyUpstream()
    yield server
    server.stop()
