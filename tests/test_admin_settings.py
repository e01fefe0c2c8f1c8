"""The Aliases and Settings pages and their API: aliases, the default model and the run-time
settings apply to the very next request; retention deletes old rows; a pricing sync runs in
the background and applies; the password changes and ends every other session. Also: every
endpoint of the Ollama, Aliases and Settings areas refuses strangers and token-less changes."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.auth import hash_password
from app.admin.context import PASSWORD_KEY
from app.stores.db import Database, apply_migrations
from app.stores.models import RelaySetting
from app.stores.usage_models import UsageRecord, UsageTag
from tests.conftest import ADMIN_PASSWORD, BACKEND, PG_SERVER, _create_pg_database, _drop_pg_database
from tests.live import LiveServer

LITELLM = Path(__file__).resolve().parents[2] / "shared" / "data" / "litellm_model_prices.json"
BUNDLED = Path(__file__).resolve().parent.parent / "app" / "data" / "pricing.json"
CHAT = {"messages": [{"role": "user", "content": "Hi"}], "stream": False}
RUNTIME = ("default_model", "usage_tracking", "resolve_hostnames", "retention_days")


@pytest.fixture
def own_db(tmp_path: Path) -> Iterator[str]:
    """A fresh database, so the shared one keeps its bundled prices and its usage rows."""
    if BACKEND == "postgres":
        name = _create_pg_database()
        url = f"{PG_SERVER}/{name}"
    else:
        url = f"sqlite://{tmp_path / 'own.db'}"
    asyncio.run(apply_migrations(url))
    yield url
    if BACKEND == "postgres":
        _drop_pg_database(name)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """LiteLLM's catalog (or the bundled snapshot in its shape) with gpt-4o's input price
    doubled, gpt-4o-mini removed and gpt-9-test added, as in test_pricing_sync."""
    if LITELLM.exists():
        catalog = json.loads(LITELLM.read_text())
    else:
        models = json.loads(BUNDLED.read_text())["models"]
        catalog = {
            (m if p == "openai" else f"{p}/{m}"): {**e, "litellm_provider": e.get("litellm_provider", p)}
            for p, ms in models.items()
            for m, e in ms.items()
        }
    changed = copy.deepcopy(catalog)
    changed["gpt-4o"]["input_cost_per_token"] = 5e-06
    del changed["gpt-4o-mini"]
    changed["gpt-9-test"] = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(changed))
    return path


@pytest.fixture
def clean_settings(make_admin) -> Iterator[Any]:
    """An admin on the shared database; the settings it stores are removed afterwards."""
    admin = make_admin()
    yield admin
    admin.client.put("/api/settings", json=dict.fromkeys(RUNTIME))


def chat(admin: Any, model: str) -> httpx.Response:
    return httpx.post(admin.relay.url + "/api/chat", json={"model": model, **CHAT})


def test_aliases_apply_to_the_next_request(make_admin) -> None:
    admin = make_admin(model_aliases="envfast=lab/llama3.2")
    created = admin.client.post("/api/aliases", json={"name": "Quick", "target": "lab/llama3.2"})
    try:
        assert created.status_code == 201, created.text
        assert created.json() == {
            "name": "quick",
            "target": "lab/llama3.2",
            "source": "admin",
            "editable": True,
            "shadowed": False,
            "resolves_to": "lab/llama3.2:latest",
            "known": True,
            "error": None,
            "unavailable": None,
        }
        reply = chat(admin, "quick")
        assert (reply.headers["x-relay-model"], reply.headers["x-relay-route"]) == ("lab/llama3.2:latest", "alias")
        again = admin.client.post("/api/aliases", json={"name": "quick", "target": "lab/llama3.2"})
        assert again.status_code == 409
        edited = admin.client.put("/api/aliases/quick", json={"target": "lab/deepseek-r1"})
        assert edited.status_code == 200 and edited.json()["resolves_to"] == "lab/deepseek-r1:latest"
        assert chat(admin, "quick").headers["x-relay-model"] == "lab/deepseek-r1:latest"
        assert admin.client.get("/api/aliases/quick").json()["target"] == "lab/deepseek-r1"
        listed = {a["name"]: a for a in admin.client.get("/api/aliases").json()["aliases"]}
        assert (listed["envfast"]["source"], listed["envfast"]["editable"]) == ("env", False)
        assert listed["claude-sonnet"]["source"] == "builtin" and listed["claude-sonnet"]["resolves_to"]
        page = admin.client.get("/aliases")
        assert page.status_code == 200 and "quick" in page.text and "MODEL_ALIASES" in page.text
    finally:
        deleted = admin.client.delete("/api/aliases/quick")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "quick"}
    gone = chat(admin, "quick")
    assert gone.status_code == 404 and "quick" in gone.json()["error"]
    assert admin.client.delete("/api/aliases/quick").status_code == 404
    assert admin.client.delete("/api/aliases/envfast").status_code == 409
    assert admin.client.put("/api/aliases/envfast", json={"target": "lab/llama3.2"}).status_code == 409
    assert admin.client.delete("/api/aliases/claude-sonnet").status_code == 409
    created = admin.client.put("/api/aliases/made-by-put", json={"target": "lab/llama3.2"})
    assert created.status_code == 201
    assert admin.client.delete("/api/aliases/made-by-put").status_code == 200


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "x", "target": "nowhere/model"}, "does not resolve: model 'nowhere/model' not found"),
        ({"name": "x", "target": "groq/x"}, None),  # a configured provider: resolves (unpriced)
        ({"name": "x", "target": "claude-sonnet"}, "is itself an alias; name the model it means instead"),
        ({"name": "x", "target": ""}, "the target is required"),
        ({"name": "a b", "target": "lab/llama3.2"}, "must be 1-128 letters"),
        ({"name": "x@tag", "target": "lab/llama3.2"}, "must be 1-128 letters"),
        ({"name": "x", "target": 5}, "the target is required"),
    ],
)
def test_alias_targets_must_resolve(make_admin, body: dict[str, Any], says: str | None) -> None:
    admin = make_admin()
    reply = admin.client.post("/api/aliases", json=body)
    if says is None:
        assert reply.status_code == 201 and reply.json()["known"] is False
        admin.client.delete("/api/aliases/x")
    else:
        assert reply.status_code == 400 and says in reply.json()["error"], reply.text


def test_an_alias_to_a_users_alias_says_what_it_is(make_admin) -> None:
    admin = make_admin()
    assert admin.client.post("/api/aliases", json={"name": "quick-one", "target": "lab/llama3.2"}).status_code == 201
    try:
        reply = admin.client.post("/api/aliases", json={"name": "quicker", "target": "quick-one"})
        assert reply.status_code == 400, reply.text  # it said "model 'quick-one' not found"
        assert "is itself an alias; name the model it means instead: lab/llama3.2" in reply.json()["error"]
    finally:
        admin.client.delete("/api/aliases/quick-one")


def test_default_model_takes_the_unknown_requests(clean_settings) -> None:
    admin = clean_settings
    assert chat(admin, "no-such-model").status_code == 404
    assert admin.client.get("/api/default-model").json()["source"] == "none"
    bad = admin.client.put("/api/default-model", json={"model": "nowhere/x"})
    assert bad.status_code == 400 and "does not resolve: model 'nowhere/x' not found" in bad.json()["error"]
    set_ = admin.client.put("/api/default-model", json={"model": "lab/llama3.2"})
    assert set_.status_code == 200, set_.text
    assert set_.json() == {
        "model": "lab/llama3.2",
        "source": "admin",
        "env_value": "",
        "resolves_to": "lab/llama3.2:latest",
        "known": True,
        "error": None,
    }
    reply = chat(admin, "no-such-model")
    assert (reply.status_code, reply.headers["x-relay-route"]) == (200, "default")
    assert reply.headers["x-relay-model"] == "lab/llama3.2:latest"
    assert admin.client.get("/api/settings").json()["default_model"] == "lab/llama3.2"
    cleared = admin.client.put("/api/default-model", json={"model": ""})
    assert cleared.json()["model"] == "" and chat(admin, "no-such-model").status_code == 404
    assert admin.client.put("/api/default-model", json={}).status_code == 400
    reset = admin.client.put("/api/default-model", json={"model": None})
    assert reset.json()["source"] == "none"
    # Through the Aliases page (htmx), and its error.
    htmx = {"HX-Request": "true"}
    page = admin.client.post("/aliases/default", data={"model": "lab/llama3.2", "action": "save"}, headers=htmx)
    assert "Default model: lab/llama3.2 (now lab/llama3.2:latest)." in page.text and "<html" not in page.text
    assert chat(admin, "no-such-model").headers["x-relay-route"] == "default"
    page = admin.client.post("/aliases/default", data={"model": "x", "action": "clear"}, headers=htmx)
    assert "No default model" in page.text and chat(admin, "no-such-model").status_code == 404
    wrong = admin.client.post("/aliases/new", data={"name": "y", "target": "nowhere/x"}, headers=htmx)
    assert wrong.status_code == 200 and 'role="alert"' in wrong.text and "does not resolve" in wrong.text


def test_usage_tracking_and_settings(clean_settings) -> None:
    admin = clean_settings
    settings = admin.client.get("/api/settings").json()
    assert {k: settings[k] for k in RUNTIME} == {
        "default_model": "",
        "usage_tracking": True,
        "resolve_hostnames": False,
        "retention_days": 0,
    }
    assert settings["sources"] == dict.fromkeys(RUNTIME, "env") and settings["password_from_env"] is True
    off = admin.client.put("/api/settings", json={"usage_tracking": False, "resolve_hostnames": True})
    assert off.status_code == 200 and off.json()["usage_tracking"] is False
    assert off.json()["sources"]["usage_tracking"] == "admin"
    untracked = chat(admin, "lab/llama3.2")
    assert untracked.status_code == 200 and admin.relay.rows(request_id=untracked.headers["x-request-id"]) == []
    admin.client.put("/api/settings", json={"usage_tracking": True})
    tracked = chat(admin, "lab/llama3.2")
    assert len(admin.relay.rows(request_id=tracked.headers["x-request-id"])) == 1
    for bad in (
        {"retention_days": -1},
        {"retention_days": "5"},
        {"retention_days": True},
        {"usage_tracking": "no"},
        {"colour": "blue"},
        {"default_model": "nowhere/x"},
    ):
        reply = admin.client.put("/api/settings", json=bad)
        assert reply.status_code == 400, (bad, reply.text)
    # The page's form: unticked boxes are not sent.
    page = admin.client.post("/settings", data={"default_model": "", "retention_days": "7"})
    assert page.status_code == 200 and "Settings saved" in page.text
    now = admin.client.get("/api/settings").json()
    assert (now["usage_tracking"], now["retention_days"]) == (False, 7)
    reset = admin.client.put("/api/settings", json=dict.fromkeys(RUNTIME)).json()
    assert reset["sources"] == dict.fromkeys(RUNTIME, "env") and reset["usage_tracking"] is True


def test_retention_deletes_old_rows(own_db, make_admin) -> None:
    admin = make_admin(database_url=own_db)
    old, recent = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"

    async def insert() -> None:
        with admin.relay.app.services.database.context:
            for request_id, age in ((old, 400), (recent, 1)):
                created = datetime.now(UTC) - timedelta(days=age)
                await UsageRecord.create(
                    request_id=request_id, created_at=created, endpoint="/api/chat", dialect="ollama", outcome="ok"
                )
                await UsageTag.create(request_id=request_id, tag="retention-test")

    admin.relay.server.call(insert)
    off = admin.client.post("/api/settings/retention/run")
    assert off.json() == {"retention_days": 0, "deleted": 0}
    assert admin.client.put("/api/settings", json={"retention_days": 30}).status_code == 200
    ran = admin.client.post("/api/settings/retention/run")
    assert ran.status_code == 200 and ran.json() == {"retention_days": 30, "deleted": 1}
    assert [r["request_id"] for r in admin.relay.rows(tag="retention-test")] == [recent]
    assert admin.relay.rows(request_id=old) == []
    page = admin.client.post("/settings/retention", headers={"HX-Request": "true"})
    assert "Deleted 0 usage rows older than 30 days." in page.text


def test_pricing_sync_runs_in_the_background(own_db, catalog_file, make_admin) -> None:
    admin = make_admin(database_url=own_db)
    catalog = admin.relay.app.services.catalog
    assert catalog.get("openai", "gpt-9-test") is None
    started = admin.client.post("/api/pricing/sync", json={"url": str(catalog_file)})
    assert started.status_code == 202 and started.json()["running"] is True
    assert started.json()["source"] == str(catalog_file)
    status = wait_for_sync(admin)
    assert status["job"]["error"] is None, status
    assert {k: status["job"]["result"][k] for k in ("added", "removed", "changed")} == {
        "added": 1,
        "removed": 1,
        "changed": 1,
    }
    last = status["history"][0]
    assert (last["status"], last["source"], last["added"], last["removed"], last["changed"]) == (
        "ok",
        str(catalog_file),
        1,
        1,
        1,
    )
    assert catalog.get("openai", "gpt-9-test") is not None and catalog.get("openai", "gpt-4o-mini") is None
    assert status["active_pricing"] == f"pricing sync #{last['id']}"
    fragment = admin.client.get("/settings/pricing-sync", headers={"HX-Request": "true"})
    assert "1 models added, 1 removed, 1 with changed prices" in fragment.text and "hx-trigger" not in fragment.text

    failed = admin.client.post("/api/pricing/sync", json={"url": "/nonexistent/catalog.json"})
    assert failed.status_code == 202
    status = wait_for_sync(admin)
    assert "cannot read /nonexistent/catalog.json" in status["job"]["error"]
    assert status["history"][0]["status"] == "failed", status["history"]
    assert catalog.get("openai", "gpt-9-test") is not None
    assert admin.client.post("/api/pricing/sync", json={"url": "ftp://x"}).status_code == 400


def test_pricing_sync_shows_progress_while_it_runs(own_db, catalog_file, make_admin) -> None:
    release = threading.Event()
    data = catalog_file.read_bytes()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while not release.is_set():
            await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    server = LiveServer(slow, lifespan="off").start()
    admin = make_admin(database_url=own_db)
    try:
        page = admin.client.post(
            "/settings/pricing-sync", data={"url": server.url + "/prices.json"}, headers={"HX-Request": "true"}
        )
        assert 'hx-trigger="load delay:500ms"' in page.text and "Syncing from" in page.text
        assert "<progress" in page.text
        assert admin.client.get("/api/pricing/sync").json()["running"] is True
        busy = admin.client.post("/api/pricing/sync", json={})
        assert busy.status_code == 409 and "already running" in busy.json()["error"]
        settings_page = admin.client.get("/settings")
        assert "Syncing from" in settings_page.text
    finally:
        release.set()
    status = wait_for_sync(admin)
    server.stop()
    assert status["job"]["result"]["added"] == 1
    done = admin.client.get("/settings/pricing-sync", headers={"HX-Request": "true"})
    assert "Synced: 1 models added" in done.text and "hx-get" not in done.text


def wait_for_sync(admin: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = admin.client.get("/api/pricing/sync").json()
        if not status["running"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the pricing sync did not finish")


def seed_password(url: str) -> None:
    async def seed() -> None:
        database = Database(url)
        await database.open(migrate_first=False)
        try:
            with database.context:
                await RelaySetting.write(PASSWORD_KEY, hash_password(ADMIN_PASSWORD))
        finally:
            await database.close()

    asyncio.run(seed())


def test_password_change(own_db, make_admin) -> None:
    seed_password(own_db)
    admin = make_admin(database_url=own_db, admin_password="")  # the password lives in the database
    logged_in = admin.client.post("/api/login", json={"password": ADMIN_PASSWORD})
    assert logged_in.status_code == 200, logged_in.text
    admin.client.headers["X-CSRF-Token"] = logged_in.json()["csrf_token"]
    other = httpx.Client(base_url=admin.url, headers={"Origin": admin.url})
    assert other.post("/api/login", json={"password": ADMIN_PASSWORD}).status_code == 200
    new = "a much longer new password"
    for body, says in (
        ({"current": "wrong password!", "new": new, "confirm": new}, "the current password is wrong"),
        ({"current": ADMIN_PASSWORD, "new": "short", "confirm": "short"}, "at least 12 characters"),
        ({"current": ADMIN_PASSWORD, "new": " " * 12, "confirm": " " * 12}, "at least 12 characters"),
        ({"current": ADMIN_PASSWORD, "new": "x" * 5000, "confirm": "x" * 5000}, "at most 1024 characters"),
        ({"current": ADMIN_PASSWORD, "new": new, "confirm": new + "x"}, "the two new passwords differ"),
    ):
        reply = admin.client.post("/api/password", json=body)
        assert reply.status_code == 400 and says in reply.json()["error"], reply.text
    changed = admin.client.post("/api/password", json={"current": ADMIN_PASSWORD, "new": new, "confirm": new})
    assert changed.status_code == 200, changed.text
    admin.client.headers["X-CSRF-Token"] = changed.json()["csrf_token"]  # the new session's token
    assert admin.client.get("/api/settings").status_code == 200  # still logged in
    assert other.get("/api/settings").status_code == 401  # every other session ended
    assert other.post("/api/login", json={"password": ADMIN_PASSWORD}).status_code == 401
    assert other.post("/api/login", json={"password": new}).status_code == 200
    # Through the page: an error is shown; success re-issues the cookie and reloads the page.
    htmx = {"HX-Request": "true"}
    wrong = admin.client.post("/settings/password", data={"current": "nope", "new": new, "confirm": new}, headers=htmx)
    assert wrong.status_code == 200 and "the current password is wrong" in wrong.text
    done = admin.client.post(
        "/settings/password", data={"current": new, "new": ADMIN_PASSWORD, "confirm": ADMIN_PASSWORD}, headers=htmx
    )
    assert done.headers["hx-redirect"] == "/settings?password=changed" and "relay_admin=" in done.headers["set-cookie"]
    assert "Password changed." in admin.client.get("/settings?password=changed").text
    assert other.get("/api/settings").status_code == 401
    other.close()


def test_password_set_by_the_environment_cannot_change(make_admin) -> None:
    admin = make_admin()
    body = {"current": ADMIN_PASSWORD, "new": "another long password", "confirm": "another long password"}
    refused = admin.client.post("/api/password", json=body)
    assert refused.status_code == 409 and "ADMIN_PASSWORD" in refused.json()["error"]
    assert "set by <code>ADMIN_PASSWORD</code>" in admin.client.get("/settings").text
    assert admin.client.get("/api/settings").status_code == 200


ENDPOINTS = [
    ("GET", "/ollama"),
    ("GET", "/ollama/body"),
    ("POST", "/ollama/instances"),
    ("POST", "/ollama/instances/lab/remove"),
    ("POST", "/ollama/instances/lab/refresh"),
    ("POST", "/ollama/instances/lab/pull"),
    ("POST", "/ollama/instances/lab/delete-model"),
    ("GET", "/ollama/pulls/x"),
    ("GET", "/aliases"),
    ("POST", "/aliases/new"),
    ("POST", "/aliases/default"),
    ("POST", "/aliases/x/edit"),
    ("POST", "/aliases/x/delete"),
    ("GET", "/settings"),
    ("POST", "/settings"),
    ("POST", "/settings/retention"),
    ("POST", "/settings/password"),
    ("GET", "/settings/pricing-sync"),
    ("POST", "/settings/pricing-sync"),
    ("GET", "/api/ollama/instances"),
    ("POST", "/api/ollama/instances"),
    ("GET", "/api/ollama/instances/lab"),
    ("DELETE", "/api/ollama/instances/lab"),
    ("GET", "/api/ollama/instances/lab/models"),
    ("POST", "/api/ollama/instances/lab/pull"),
    ("GET", "/api/ollama/pulls/x"),
    ("POST", "/api/ollama/instances/lab/delete-model"),
    ("GET", "/api/aliases"),
    ("POST", "/api/aliases"),
    ("GET", "/api/aliases/x"),
    ("PUT", "/api/aliases/x"),
    ("DELETE", "/api/aliases/x"),
    ("GET", "/api/default-model"),
    ("PUT", "/api/default-model"),
    ("GET", "/api/settings"),
    ("PUT", "/api/settings"),
    ("POST", "/api/settings/retention/run"),
    ("GET", "/api/pricing/sync"),
    ("POST", "/api/pricing/sync"),
    ("POST", "/api/password"),
]


def test_every_endpoint_refuses_strangers_and_token_less_changes(make_admin, upstream) -> None:
    admin = make_admin()
    calls_before = len(upstream.requests)
    with httpx.Client(base_url=admin.url, headers={"Origin": admin.url}) as stranger:
        for method, path in ENDPOINTS:
            reply = stranger.request(method, path, json={"model": "llama3.2", "name": "x", "target": "lab/llama3.2"})
            if path.startswith("/api/"):
                assert reply.status_code == 401, (method, path, reply.status_code)
            else:
                assert reply.status_code == 303, (method, path, reply.status_code)
                assert reply.headers["location"].startswith("/login?next=")
    no_token = {k: v for k, v in admin.client.headers.items() if k.lower() != "x-csrf-token"}
    with httpx.Client(base_url=admin.url, headers=no_token, cookies=admin.client.cookies) as forgetful:
        for method, path in ENDPOINTS:
            if method == "GET":
                continue
            reply = forgetful.request(method, path, json={"model": "llama3.2", "name": "x", "target": "lab/llama3.2"})
            assert reply.status_code == 403 and "CSRF" in reply.text, (method, path, reply.status_code)
    assert len(upstream.requests) == calls_before  # nothing reached an Ollama server
    assert admin.relay.app.services.upstreams.get("lab") is not None
