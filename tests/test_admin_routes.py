"""Routes edited in the admin UI (app/admin/pages/routes_ops.py): made, replaced and deleted
through the JSON API and the Routes page, applied to the very next request, checked as
PROVIDERS_FILE's routes are; the file's own are read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from app.stores.models import RouteRecord

MESSAGES = [{"role": "user", "content": "hi"}]


def ask(admin: Any, model: str) -> httpx.Response:
    return httpx.post(admin.relay.url + "/v1/chat/completions", json={"model": model, "messages": MESSAGES})


def test_a_route_made_through_the_api_serves_the_next_request(make_admin: Any) -> None:
    admin = make_admin()
    assert ask(admin, "made-here").status_code == 404
    body = {"name": "made-here", "deployments": ["openai/chat_nonstream_basic", "groq/chat_nonstream_basic"]}
    made = admin.client.post("/api/routes", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["source"] == "admin" and made.json()["fallback_on"] == ["429", "5xx", "connect", "timeout"]
    reply = ask(admin, "made-here")
    assert reply.status_code == 200 and reply.headers["x-relay-route"] == "route"
    assert reply.headers["x-relay-model"] == "openai/chat_nonstream_basic"
    assert admin.client.post("/api/routes", json=body).status_code == 409
    swapped = admin.client.put(
        "/api/routes/made-here", json={"deployments": ["groq/chat_nonstream_basic"], "strategy": "least_in_flight"}
    )
    assert swapped.status_code == 200 and swapped.json()["strategy"] == "least_in_flight"
    assert ask(admin, "made-here").headers["x-relay-model"] == "groq/chat_nonstream_basic"
    listed = {r["name"]: r for r in admin.client.get("/api/routes").json()["routes"]}
    assert listed["made-here"]["deployments"][0]["cooling_seconds"] == 0
    assert admin.client.delete("/api/routes/made-here").json() == {"deleted": "made-here"}
    assert ask(admin, "made-here").status_code == 404
    assert admin.client.delete("/api/routes/made-here").status_code == 404


def test_a_wrong_route_is_a_400_that_says_why(make_admin: Any) -> None:
    admin = make_admin()
    cases = [
        ({"name": "r", "deployments": []}, "non-empty list"),
        ({"name": "r", "deployments": ["a/b"], "strategy": "random"}, "strategy must be one of"),
        ({"name": "r", "deployments": ["a/b"], "retries": 2}, "unknown fields"),
        ({"name": "r@t", "deployments": ["a/b"]}, "no '@'"),
        ({"name": "r" * 129, "deployments": ["a/b"]}, "at most 128 characters"),  # the database's: a 500
        ({"name": "r", "deployments": ["a/b"], "cooldown": {"failures": 10**23}}, "at most"),  # past JSON's integers
        ({"name": "r", "deployments": [{"model": "a/b", "weight": 10**23}]}, "from 1 to"),
        ({"name": "r", "deployments": ["nosuch/model"]}, "the deployment 'nosuch/model' does not resolve"),
        ({"name": "r", "deployments": ["lab/llama3.2"], "context_fallback": "nosuch/big"}, "'nosuch/big' does not"),
    ]
    for body, needle in cases:
        reply = admin.client.post("/api/routes", json=body)
        assert reply.status_code == 400 and needle in reply.text, (body, reply.text)


def test_the_files_routes_are_read_only(make_admin: Any, tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"routes": [{"name": "from-file", "deployments": ["openai/chat_nonstream_basic"]}]}))
    admin = make_admin(providers_file=str(path))
    listed = {r["name"]: r for r in admin.client.get("/api/routes").json()["routes"]}
    assert listed["from-file"]["source"] == "file" and listed["from-file"]["editable"] is False
    replaced = admin.client.put("/api/routes/from-file", json={"deployments": ["groq/chat_nonstream_basic"]})
    assert replaced.status_code == 409 and "PROVIDERS_FILE" in replaced.text
    assert admin.client.delete("/api/routes/from-file").status_code == 409
    assert ask(admin, "from-file").status_code == 200


def test_the_routes_page_adds_and_deletes_a_route(make_admin: Any) -> None:
    admin = make_admin()
    form = {
        "name": "paged",
        "strategy": "weighted",
        "deployments": "openai/chat_nonstream_basic 3\ngroq/chat_nonstream_basic",
        "fallback_on": "429, 5xx",
        "failures": "2",
        "window": "30",
        "seconds": "10",
        "context_fallback": "",
        "csrf_token": admin.csrf,
    }
    page = admin.client.post("/routes/save", data=form)
    assert page.status_code == 200 and "Route paged added" in page.text, page.text[-2000:]
    assert 'id="route-paged"' in page.text and "(weight 3)" in page.text
    route = admin.client.get("/api/routes/paged").json()
    assert route["cooldown"] == {"failures": 2, "window": 30.0, "seconds": 10.0} and route["fallback_on"] == [
        "429",
        "5xx",
    ]
    assert ask(admin, "paged").status_code == 200
    bad = admin.client.post("/routes/save", data={**form, "name": "other", "deployments": "a/b two words here"})
    assert bad.status_code == 400 and "model weight" in bad.text and "two words here" in bad.text
    gone = admin.client.post("/routes/delete", data={"csrf_token": admin.csrf, "name": "paged"})
    assert "Deleted route paged" in gone.text and ask(admin, "paged").status_code == 404


def test_routes_whose_names_a_path_would_mangle_are_deleted_by_name(make_admin: Any) -> None:
    """'pct%41' in a path reads as 'pctA': the page's Delete removed the other route."""
    admin = make_admin()
    names = ["pctA", "pct%41", "team/chat", "q?x", "hash#1"]
    for name in names:
        made = admin.client.post("/api/routes", json={"name": name, "deployments": ["lab/llama3.2"]})
        assert made.status_code == 201, made.text
    page = admin.client.get("/routes").text
    assert 'name="name" value="pct%41"' in page  # what the Delete button sends
    for name in ("pct%41", "q?x", "hash#1"):
        gone = admin.client.post("/routes/delete", data={"csrf_token": admin.csrf, "name": name})
        assert gone.status_code == 200 and f"Deleted route {name}" in gone.text
    assert admin.client.delete("/api/routes/" + quote("team/chat", safe="")).status_code == 200
    left = {r["name"] for r in admin.client.get("/api/routes").json()["routes"]}
    assert "pctA" in left and not left & {"pct%41", "team/chat", "q?x", "hash#1"}
    assert admin.client.delete("/api/routes/pctA").status_code == 200  # the database is every test's


def test_a_stored_route_that_no_longer_checks_out_is_listed_with_its_error(make_admin: Any) -> None:
    admin = make_admin()

    async def store() -> None:
        with admin.relay.app.services.database.context:
            await RouteRecord.create(name="broken", spec={"deployments": "not a list"})
        await admin.relay.app.live.reload()

    admin.relay.server.call(store)
    listed = {r["name"]: r for r in admin.client.get("/api/routes").json()["routes"]}
    assert "deployments must be a non-empty list" in listed["broken"]["error"]
    assert ask(admin, "broken").status_code == 404  # not served
    assert admin.client.delete("/api/routes/broken").status_code == 200
