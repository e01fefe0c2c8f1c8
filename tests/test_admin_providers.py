"""The Providers & models admin pages and their JSON API: provider status and connection
tests, the catalog browser, per-model overrides that the very next request obeys, and custom
providers from add to removal. No response may ever show an API key."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.admin.pages.providers_common import redact, safe_url
from app.stores.models import CustomProvider
from tests.conftest import PNG
from tests.test_cost_relay import replaying

KEY_ENV = "RELAY_ADMIN_PROVIDERS_TEST_KEY"
SECRET = "sk-relay-admin-SECRET-7f3a9c1e5b"
SHOWN_NEVER = (SECRET, "test-key-")  # the custom provider's key, and every built-in's
MODEL = "openai/gpt-4o-mini"  # priced by the catalog: $0.15 in, $0.60 out per million
OVERRIDE = "/api/models/openai/gpt-4o-mini/override"
PAGE = "/providers/models/openai/gpt-4o-mini"
# chat_nonstream_basic reports 16 prompt and 363 completion tokens
CATALOG_COST = 16 * 150 + 363 * 600


@pytest.fixture
def watched(make_admin, monkeypatch) -> Iterator[Any]:
    """make_admin, whose every response is checked for keys when the test ends."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    seen: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append(response)

    def make(**changes: Any) -> Any:
        made = make_admin(**changes)
        made.client.event_hooks["response"].append(keep)
        return made

    yield make
    for response in seen:
        for secret in SHOWN_NEVER:
            assert secret not in response.text, f"{response.request.method} {response.request.url} shows a key"


@pytest.fixture
def admin(watched) -> Any:
    return watched()


def chat(admin, model: str = MODEL, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return httpx.post(admin.relay.url + "/v1/chat/completions", json=body, timeout=30)


def cost(admin, reply: httpx.Response) -> tuple[int | None, str]:
    row = admin.relay.row(reply.headers["x-request-id"])
    return row["cost_nanousd"], row["cost_source"]


def test_everything_needs_a_session(admin) -> None:
    api = [
        ("GET", "/api/providers"),
        ("POST", "/api/providers/openai/test"),
        ("GET", "/api/catalog?q=gpt"),
        ("GET", OVERRIDE),
        ("PUT", OVERRIDE),
        ("DELETE", OVERRIDE),
        ("GET", "/api/custom-providers"),
        ("POST", "/api/custom-providers"),
        ("PUT", "/api/custom-providers/x"),
        ("DELETE", "/api/custom-providers/x"),
    ]
    pages = [
        ("GET", "/providers"),
        ("GET", "/providers/catalog"),
        ("GET", PAGE),
        ("POST", PAGE),
        ("POST", "/providers/test/openai"),
        ("POST", "/providers/custom"),
        ("GET", "/providers/custom/x"),
        ("POST", "/providers/custom/x/delete"),
    ]
    with httpx.Client(base_url=admin.url) as anonymous:
        for method, path in api:
            assert anonymous.request(method, path, json={}).status_code == 401, path
        for method, path in pages:
            reply = anonymous.request(method, path)
            assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next="), path


def test_providers_status_and_connection_tests(admin, upstream) -> None:
    providers = {p["name"]: p for p in admin.client.get("/api/providers").json()["providers"]}
    assert {"openai", "anthropic", "gemini", "perplexity", "lab"} <= set(providers)
    openai = providers["openai"]
    assert (openai["key"], openai["declared_in"], openai["origin"]) == (
        "key set (env OPENAI_API_KEY)",
        "environment (OPENAI_API_KEY)",
        "env",
    )
    assert openai["models"] > 100 and openai["discovery"] is None
    lab = providers["lab"]
    assert lab["declared_in"] == "environment (OLLAMA_INSTANCES)" and lab["discovery"]["ok"]

    for name in ("openai", "anthropic", "gemini", "lab", "perplexity"):  # perplexity: no model list, a free probe
        result = admin.client.post(f"/api/providers/{name}/test").json()
        assert result["ok"], result
    assert admin.client.post("/api/providers/openai/test").json()["models"] > 0
    upstream.down.add("lab")
    try:
        failed = admin.client.post("/api/providers/lab/test").json()
    finally:
        upstream.down.discard("lab")
    assert not failed["ok"] and "lab is down" in failed["message"]
    assert admin.client.post("/api/providers/nope/test").status_code == 404

    page = admin.client.get("/providers")
    assert page.status_code == 200 and "key set (env OPENAI_API_KEY)" in page.text
    assert 'hx-post="/providers/test/openai"' in page.text
    fragment = admin.client.post("/providers/test/openai", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "OK: connected" in fragment.text and "<html" not in fragment.text


def test_catalog_search_and_pages(admin) -> None:
    first = admin.client.get("/api/catalog").json()
    assert first["total"] > 300 and first["per_page"] == 50 and len(first["models"]) == 50
    second = admin.client.get("/api/catalog", params={"page": 2}).json()
    assert {m["label"] for m in first["models"]}.isdisjoint(m["label"] for m in second["models"])
    last = admin.client.get("/api/catalog", params={"page": 10_000}).json()
    assert last["page"] == last["pages"] == first["pages"]

    found = admin.client.get("/api/catalog", params={"q": "gpt-4o MINI", "provider": "openai"}).json()
    assert found["total"] >= 1
    assert all("gpt-4o" in m["label"] and "mini" in m["label"] and m["provider"] == "openai" for m in found["models"])
    gpt4o = admin.client.get("/api/catalog", params={"q": "openai/gpt-4o"}).json()["models"][0]
    assert gpt4o["label"] == "openai/gpt-4o"
    assert gpt4o["prices"] == {
        "input": "2.5",
        "cache_read": "1.25",
        "cache_write": None,
        "output": "10",
        "request_fee": None,
    }
    assert gpt4o["context_window"] == 128000 and gpt4o["capabilities"]["vision"] is True
    assert gpt4o["enabled"] and not any(gpt4o["overridden"].values())

    page = admin.client.get("/providers/catalog", params={"q": "claude sonnet"})
    assert page.status_code == 200 and "anthropic/claude-sonnet-4-5" in page.text and "<html" in page.text
    assert 'hx-trigger="input changed delay:300ms' in page.text
    fragment = admin.client.get(
        "/providers/catalog",
        params={"q": "claude sonnet"},
        headers={"HX-Request": "true", "HX-Target": "catalog-results"},
    )
    assert "anthropic/claude-sonnet-4-5" in fragment.text and "<html" not in fragment.text
    paged = admin.client.get("/providers/catalog", params={"page": 2}).text
    assert "Page 2 of" in paged and "page=3" in paged


def test_price_override_prices_the_next_request(admin, upstream) -> None:
    try:
        with replaying(upstream, "openai", "chat_nonstream_basic"):
            assert cost(admin, chat(admin)) == (CATALOG_COST, "catalog")
            put = admin.client.put(OVERRIDE, json={"price": {"input_per_mtok": "1", "output_per_mtok": 2}})
            assert put.status_code == 200, put.text
            assert put.json()["price"]["input_per_mtok"] == "1"
            assert cost(admin, chat(admin)) == (16 * 1000 + 363 * 2000, "override")
            row = admin.client.get("/api/catalog", params={"q": MODEL}).json()["models"][0]
            assert row["prices"]["input"] == "1" and row["overridden"]["price"]

            form = admin.client.post(PAGE, data={"part": "price", "action": "save", "input_per_mtok": "3"})
            assert form.status_code == 303 and "done=price-saved" in form.headers["location"]
            assert cost(admin, chat(admin)) == (16 * 3000 + 363 * 600, "override")
            assert "Price override saved" in admin.client.get(form.headers["location"]).text

            wrong = admin.client.post(PAGE, data={"part": "price", "input_per_mtok": "-5"})
            assert wrong.status_code == 400 and "must be a number of at least 0" in wrong.text

            removed = admin.client.post(PAGE, data={"part": "price", "action": "remove"})
            assert removed.status_code == 303
            assert cost(admin, chat(admin)) == (CATALOG_COST, "catalog")
    finally:
        admin.client.delete(OVERRIDE)


@pytest.mark.parametrize(
    ("price", "field", "message"),
    [
        ({"input_per_mtok": "-1"}, "price.input_per_mtok", "at least 0"),
        ({"input_per_mtok": "abc"}, "price.input_per_mtok", "not a number"),
        ({"output_per_mtok": "0.0000000001"}, "price.output_per_mtok", "decimal places"),
        ({"cache_read_per_mtok": 1, "cache_read_multiplier": 0.5}, "price.cache_read_multiplier", "not both"),
        ({"tier_threshold": "1.5"}, "price.tier_threshold", "whole number"),
        ({"input": 1}, "price", "unknown fields"),
        ({}, "price", "at least one field"),
    ],
)
def test_bad_prices_are_clear_errors(admin, price: dict[str, Any], field: str, message: str) -> None:
    reply = admin.client.put(OVERRIDE, json={"price": price})
    assert reply.status_code == 400 and message in reply.json()["errors"][field]
    assert admin.client.get(OVERRIDE).json()["price"] is None


def test_disabling_a_model_makes_the_next_request_a_404(admin, upstream) -> None:
    try:
        with replaying(upstream, "openai", "chat_nonstream_basic"):
            assert chat(admin).status_code == 200
            assert admin.client.put(OVERRIDE, json={"switches": {"enabled": False}}).status_code == 200
            refused = chat(admin)
            assert refused.status_code == 404 and "disabled" in refused.text
            assert not admin.client.get("/api/catalog", params={"q": MODEL}).json()["models"][0]["enabled"]

            assert admin.client.post(PAGE, data={"part": "switches", "action": "remove"}).status_code == 303
            assert chat(admin).status_code == 200
            assert admin.client.post(PAGE, data={"part": "switches", "enabled": "no"}).status_code == 303
            assert chat(admin).status_code == 404
    finally:
        admin.client.delete(OVERRIDE)
    assert admin.client.get(OVERRIDE).json()["switches"] is None


def test_vision_switched_off_refuses_images(admin, upstream) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    try:
        with replaying(upstream, "openai", "chat_nonstream_basic"):
            assert chat(admin, messages=messages).status_code == 200
            put = admin.client.put(OVERRIDE, json={"switches": {"vision": False}})
            assert put.json()["switches"] == {**put.json()["switches"], "enabled": True, "vision": False}
            refused = chat(admin, messages=messages)
            assert refused.status_code == 400 and "does not accept images" in refused.text
            assert chat(admin).status_code == 200  # text still goes through
    finally:
        admin.client.delete(OVERRIDE)


def test_capability_switches_reach_what_ollama_clients_are_shown(admin) -> None:
    def shown() -> list[str]:
        return httpx.post(admin.relay.url + "/api/show", json={"model": MODEL}).json()["capabilities"]

    assert {"tools", "vision"} <= set(shown())  # the catalog's word
    try:
        assert admin.client.put(OVERRIDE, json={"switches": {"tools": False}}).status_code == 200
        assert "tools" not in shown() and "vision" in shown()
    finally:
        admin.client.delete(OVERRIDE)
    assert "tools" in shown()


def test_quirk_override_rewrites_the_next_request(admin, upstream) -> None:
    rule = {"drop": ["temperature"], "rename": {"seed": "random_seed"}}
    try:
        with replaying(upstream, "openai", "chat_nonstream_basic"):
            put = admin.client.put(OVERRIDE, json={"quirk": rule})
            assert put.status_code == 200 and put.json()["quirk"]["match"] == {
                "provider": "openai",
                "model": r"^gpt\-4o\-mini$",
            }
            reply = chat(admin, temperature=0.2, seed=5)
            assert reply.headers["x-relay-dropped-params"] == "temperature"
            sent = upstream.last("/openai/v1/chat/completions").body
            assert "temperature" not in sent and "seed" not in sent and sent["random_seed"] == 5

            form = {"part": "quirk", "drop": "top_p", "defaults": "seed=7\nuser=relay", "system": "fold"}
            assert admin.client.post(PAGE, data=form).status_code == 303
            assert admin.client.get(OVERRIDE).json()["quirk"]["defaults"] == {"seed": 7, "user": "relay"}
            chat(admin, top_p=0.5)
            sent = upstream.last("/openai/v1/chat/completions").body
            assert "top_p" not in sent and sent["seed"] == 7
            page = admin.client.get(PAGE).text
            assert "seed=7" in page and "Remove this override" in page

            for bad, message in [
                ({"system": "unfold"}, "must be 'fold'"),
                ({"drop": ["no way"]}, "not parameter"),
                ({"defaults": {"max_tokens": "abc"}}, "max_tokens takes a number"),  # it went upstream as text
            ]:
                wrong = admin.client.put(OVERRIDE, json={"quirk": bad})
                assert wrong.status_code == 400 and message in wrong.text
            assert "changes nothing" in admin.client.put(OVERRIDE, json={"quirk": {}}).text
            assert "one name=value" in admin.client.post(PAGE, data={"part": "quirk", "rename": "oops"}).text
    finally:
        assert admin.client.delete(OVERRIDE).json()["quirk"] is None
    assert admin.client.get(OVERRIDE).json() | {"catalog": None} == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "catalog": None,
        "price": None,
        "switches": None,
        "quirk": None,
    }


def custom(emulator, name: str, **changes: Any) -> dict[str, Any]:
    return {"name": name, "api": "openai", "base_url": f"{emulator[1]}/deepseek/v1", "api_key_env": KEY_ENV, **changes}


def test_custom_provider_from_add_to_removal(admin, emulator, upstream) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    try:
        added = admin.client.post("/api/custom-providers", json=custom(emulator, name))
        assert added.status_code == 201, added.text
        view = added.json()
        assert {"chat_nonstream_cache_hit_reasoning", "chat_stream_reasoner"} <= set(view["discovered"])
        assert view["discovery"]["ok"] and view["key"] == f"key set (env {KEY_ENV})" and not view["read_only"]

        reply = chat(admin, f"{name}/chat_nonstream_cache_hit_reasoning")
        assert reply.status_code == 200, reply.text
        assert upstream.last("/deepseek/v1/chat/completions").headers["authorization"] == f"Bearer {SECRET}"
        listed = {p["name"]: p for p in admin.client.get("/api/providers").json()["providers"]}
        assert listed[name]["declared_in"] == "admin UI" and listed[name]["editable"]
        assert admin.client.post(f"/api/providers/{name}/test").json()["ok"]
        assert name in {p["name"] for p in admin.client.get("/api/custom-providers").json()["providers"]}

        edited = admin.client.put(f"/api/custom-providers/{name}", json=custom(emulator, name, models=["only-this"]))
        assert edited.status_code == 200, edited.text
        assert edited.json()["discovered"] == ["only-this"] and edited.json()["discovery"] is None
        assert admin.client.get("/api/catalog", params={"provider": name}).json()["total"] == 1
        assert chat(admin, f"{name}/chat_nonstream_cache_hit_reasoning").status_code == 200
    finally:
        removed = admin.client.delete(f"/api/custom-providers/{name}")
    assert removed.status_code == 200 and removed.json() == {"deleted": name}
    assert chat(admin, f"{name}/chat_nonstream_cache_hit_reasoning").status_code == 404
    assert admin.client.get(f"/api/custom-providers/{name}").status_code == 404
    assert admin.client.delete(f"/api/custom-providers/{name}").status_code == 404
    assert name not in {p["name"] for p in admin.client.get("/api/providers").json()["providers"]}


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"name": "openai"}, 409, "built-in provider"),
        ({"name": "lab"}, 409, "OLLAMA_INSTANCES"),
        ({"name": "Not Valid"}, 400, "must be lower-case"),
        ({"api": "grpc"}, 400, "api must be one of"),
        ({"base_url": "ftp://x"}, 400, "http(s) URL"),
        ({"base_url": "http://[::1"}, 400, "is not a URL"),  # a 500, and the record was saved
        ({"api_key_env": "RELAY_ADMIN_TEST_UNSET_VAR"}, 400, "RELAY_ADMIN_TEST_UNSET_VAR is not set"),
        ({"api_key_env": "ADMIN_PASSWORD"}, 400, "the relay's own secrets"),
        ({"api_key_file": "/run/key"}, 400, "not both"),
        ({"models": [1]}, 400, "list of model ids"),
        ({"api_key": "sk-inline"}, 400, "unknown fields"),
    ],
)
def test_bad_custom_providers_are_refused(admin, emulator, changes: dict[str, Any], status: int, message: str) -> None:
    record = custom(emulator, f"t-{uuid.uuid4().hex[:8]}") | changes
    reply = admin.client.post("/api/custom-providers", json=record)
    assert reply.status_code == status and message in reply.json()["detail"], reply.text
    assert record["name"] not in {p["name"] for p in admin.client.get("/api/custom-providers").json()["providers"]}


def test_custom_provider_pages(admin, emulator) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    form = {k: v for k, v in custom(emulator, name).items()} | {"models": ""}
    try:
        added = admin.client.post("/providers/custom", data=form)
        assert added.status_code == 303 and added.headers["location"] == f"/providers/custom/{name}?done=added"
        page = admin.client.get(added.headers["location"]).text
        assert "Custom provider added" in page and f"{name}/chat_stream_reasoner" in page
        assert f"key set (env {KEY_ENV})" in page
        again = admin.client.post("/providers/custom", data=form)
        assert again.status_code == 409 and "exists already" in again.text
        wrong = admin.client.post(f"/providers/custom/{name}", data=form | {"base_url": "nowhere"})
        assert wrong.status_code == 400 and "http(s) URL" in wrong.text and 'value="nowhere"' in wrong.text
        saved = admin.client.post(f"/providers/custom/{name}", data=form | {"models": "a, b"})
        assert saved.status_code == 303
        assert "Custom provider saved" in admin.client.get(saved.headers["location"]).text
        assert f"/providers/custom/{name}" in admin.client.get("/providers").text
    finally:
        gone = admin.client.post(f"/providers/custom/{name}/delete")
    assert gone.status_code == 303 and gone.headers["location"] == "/providers?done=removed"
    assert admin.client.get(f"/providers/custom/{name}").status_code == 404


def test_providers_from_the_file_are_read_only(watched, emulator, tmp_path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"providers:\n  - {{name: filed, api: openai, base_url: '{emulator[1]}/deepseek/v1', api_key_env: {KEY_ENV}}}\n"
    )
    admin = watched(providers_file=str(path))
    listed = {p["name"]: p for p in admin.client.get("/api/custom-providers").json()["providers"]}
    assert listed["filed"]["read_only"] and listed["filed"]["origin"] == "file"
    assert listed["filed"]["key"] == "key set" and "chat_stream_reasoner" in listed["filed"]["discovered"]
    status = {p["name"]: p for p in admin.client.get("/api/providers").json()["providers"]}["filed"]
    assert (status["declared_in"], status["editable"], status["discovery"]["ok"]) == ("PROVIDERS_FILE", False, True)
    assert admin.client.put("/api/custom-providers/filed", json=custom(emulator, "filed")).status_code == 409
    assert admin.client.delete("/api/custom-providers/filed").status_code == 409
    assert admin.client.post("/api/custom-providers", json=custom(emulator, "filed")).status_code == 409
    assert admin.client.put("/api/custom-providers/openai", json=custom(emulator, "openai")).status_code == 409
    page = admin.client.get("/providers/custom/filed")
    assert page.status_code == 200 and "read-only" in page.text and "Save changes" not in page.text
    assert admin.client.post("/providers/custom/filed/delete").status_code == 409
    assert "PROVIDERS_FILE" in admin.client.get("/providers").text


def test_unknown_models_and_providers(admin) -> None:
    assert admin.client.get("/api/models/nope/x/override").status_code == 404
    assert admin.client.get("/api/models/openai/gpt-4o").status_code == 404  # no /override
    assert admin.client.get("/providers/models/nope/x").status_code == 404
    nested = admin.client.get("/api/models/openrouter/openai/gpt-4o/override").json()
    assert (nested["provider"], nested["model"], nested["catalog"]) == ("openrouter", "openai/gpt-4o", None)
    assert admin.client.get("/api/models/openai/GPT-4O/override").json()["model"] == "gpt-4o"
    assert admin.client.get("/api/catalog", params={"per_page": 1000}).json()["per_page"] == 200
    assert admin.client.get("/api/catalog", params={"provider": "nope"}).json()["total"] == 0
    assert admin.client.put(OVERRIDE, json={"colour": {}}).status_code == 400
    assert admin.client.put(OVERRIDE, content=b"[1]", headers={"Content-Type": "application/json"}).status_code == 400


def test_keys_are_redacted_from_messages_and_urls() -> None:
    assert redact(f"x: bad key {SECRET}", SECRET) == "x: bad key [redacted]"
    assert safe_url("https://user:pw@host:8443/v1?key=abc") == "https://host:8443/v1"


def test_a_provider_that_cannot_be_built_is_shown_with_its_error(admin, emulator) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"

    async def insert() -> None:  # as if its key variable vanished after it was added
        with admin.relay.app.services.database.context:
            await CustomProvider.create(**custom(emulator, name, api_key_env="RELAY_ADMIN_TEST_GONE_VAR"))
        await admin.relay.app.live.reload()

    admin.relay.server.call(insert)
    try:
        status = {p["name"]: p for p in admin.client.get("/api/providers").json()["providers"]}[name]
        assert "RELAY_ADMIN_TEST_GONE_VAR is not set" in status["error"] and not status["testable"]
        assert status["key"] == "env RELAY_ADMIN_TEST_GONE_VAR is not set"
        assert "not loaded" in admin.client.get("/providers").text
        assert chat(admin, f"{name}/chat_stream_reasoner").status_code == 404
    finally:
        assert admin.client.delete(f"/api/custom-providers/{name}").status_code == 200
    assert name not in admin.relay.app.live.provider_errors
