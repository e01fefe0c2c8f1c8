"""REQUIRE_API_KEY: keys created, listed and revoked from the CLI, stored only as hashes,
refused in each dialect when missing, wrong, revoked or expired; their tags attribute usage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.keys import key_hash, new_key, shown_prefix
from app.stores.models import ApiKey

CHAT = {"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "x"}]}


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "app", "keys", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def keyed(make_relay):
    relay = make_relay(require_api_key=True)

    def add(key: str, **fields) -> None:
        async def create() -> None:
            with relay.app.services.database.context:
                await ApiKey.create(prefix=shown_prefix(key), key_hash=key_hash(key), **fields)
            await relay.app.live.reload()

        relay.server.call(create)

    return relay, add


def post(relay, key: str | None, path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = CHAT if path.startswith("/v1") else {**CHAT, "stream": False}
    return httpx.post(relay.url + path, json=body, headers=headers)


def test_missing_or_unknown_keys_get_401_in_each_dialect(keyed) -> None:
    relay, _ = keyed
    for key in (None, "sk-not-a-relay-key", new_key()):
        reply = post(relay, key)
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_error"
        assert reply.json()["error"]["code"] == "invalid_api_key"
        ollama = post(relay, key, "/api/chat")
        assert ollama.status_code == 401 and "API key" in ollama.json()["error"]
    row = relay.rows()[-1]
    assert (row["outcome"], row["status"]) == ("client_error", 401)


def test_valid_key_is_served_and_tags_the_request(keyed) -> None:
    relay, add = keyed
    key = new_key()
    add(key, name="ci", tags=["team-keys", "env-test"])
    reply = post(relay, key)
    assert reply.status_code == 200
    assert relay.row(reply.headers["x-request-id"])["tags"] == ["team-keys", "env-test"]
    override = post(relay, key, **{"X-Proxy-Tag": "explicit"})
    assert relay.row(override.headers["x-request-id"])["tags"] == ["explicit"]
    via_header = httpx.post(relay.url + "/api/chat", json={**CHAT, "stream": False}, headers={"x-api-key": key})
    assert via_header.status_code == 200


def test_revoked_and_expired_keys_are_refused(keyed) -> None:
    relay, add = keyed
    revoked, expired, later = new_key(), new_key(), new_key()
    add(revoked, revoked_at=datetime.now(UTC))
    add(expired, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    add(later, expires_at=datetime.now(UTC) + timedelta(days=1))
    assert post(relay, revoked).status_code == 401
    assert post(relay, expired).status_code == 401
    assert post(relay, later).status_code == 200


def test_cli_creates_lists_and_revokes_and_keeps_only_a_hash(db_url, make_relay) -> None:
    created = cli(db_url, "create", "--name", "laptop", "--tags", "alice,team-a", "--expires-days", "30")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("rk-") and "shown once" in created.stderr
    listed = cli(db_url, "list").stdout
    assert key[:9] in listed and key not in listed and "'laptop'" in listed and "alice,team-a" in listed

    async def stored() -> list[dict]:
        from tortoise.context import TortoiseContext

        from app.stores.db import tortoise_config

        ctx = TortoiseContext()
        with ctx:
            await ctx.init(config=tortoise_config(db_url))
            rows = await ApiKey.all().values()
            await ctx.close_connections()
        return rows

    rows = asyncio.run(stored())
    assert all(key not in str(row) for row in rows)  # not recoverable from the database
    assert any(row["key_hash"] == key_hash(key) for row in rows)
    relay = make_relay(require_api_key=True)
    assert post(relay, key).status_code == 200
    key_id = next(r["id"] for r in rows if r["key_hash"] == key_hash(key))
    revoked = cli(db_url, "revoke", str(key_id))
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    relay.server.call(relay.app.live.reload)
    assert post(relay, key).status_code == 401


def test_revoke_takes_the_name_the_whole_key_the_id_or_the_listed_start(db_url) -> None:
    keys = {}
    for name in ("by-name", "by-key", "by-id", "by-prefix"):
        created = cli(db_url, "create", "--name", name)
        assert created.returncode == 0, created.stderr
        keys[name] = created.stdout.strip()
    listed = cli(db_url, "list").stdout
    key_id = next(line.split()[0] for line in listed.splitlines() if "'by-id'" in line)  # "#12"
    for which in ("by-name", keys["by-key"], key_id, keys["by-prefix"][:9]):
        revoked = cli(db_url, "revoke", which)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout, (which, revoked.stderr)
    listed = cli(db_url, "list").stdout
    for name in keys:
        assert next(line for line in listed.splitlines() if f"'{name}'" in line).split()[2] == "revoked"
    assert cli(db_url, "revoke", "no-such-key").returncode == 1


def test_a_key_is_never_revoked_by_an_empty_or_partial_name(db_url) -> None:
    created = cli(db_url, "create", "--name", "only-one")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    for which in ("", "  ", key[:1], key[:5]):  # revoke "$KEY" with KEY unset; a letter
        refused = cli(db_url, "revoke", which)
        assert refused.returncode in (1, 2) and "revoked" not in refused.stdout, (which, refused.stdout)
    listed = next(line for line in cli(db_url, "list").stdout.splitlines() if "'only-one'" in line)
    assert listed.split()[2] == "active"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires-days", "0"], "above 0"),  # it made a key that never expired
        (["--expires-days", "-5"], "above 0"),  # one already expired
        (["--expires-days", "nan"], "above 0"),  # a traceback
        (["--expires-days", "1e308"], "at most"),
        (["--tags", "a b"], "--tags"),  # a traceback
    ],
)
def test_bad_key_options_are_one_line_errors(db_url, args: list[str], message: str) -> None:
    refused = cli(db_url, "create", "--name", "bad", *args)
    assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr


def test_without_the_requirement_relay_keys_never_become_tags(make_relay) -> None:
    relay = make_relay()
    reply = post(relay, new_key())
    assert reply.status_code == 200 and relay.row(reply.headers["x-request-id"])["tags"] == []
