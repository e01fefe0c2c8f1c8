"""The Ollama page and API: instances added in the admin UI serve requests at once and vanish
when removed, pulls report live progress, deletes reach the server."""

from __future__ import annotations

import html
import itertools
import re
import time
from typing import Any

import httpx
import pytest

from app.admin.pages.ollama_pulls import PULLS, PullJob
from tests.emulator import PULL_PROGRESS

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "stream": False}


def wait_for(client: httpx.Client, path: str, done: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """GET ``path`` until ``done(reply)``; every reply seen, in order."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.get(path)
        assert reply.status_code == 200, reply.text
        seen.append(reply.json())
        if done(seen[-1]):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"{path} did not finish: {seen[-1]}")


def chat(admin: Any, model: str) -> httpx.Response:
    return httpx.post(admin.relay.url + "/api/chat", json={"model": model, **CHAT})


def test_an_added_instance_serves_at_once_and_goes_when_removed(make_admin, upstream) -> None:
    admin = make_admin()
    emulator = admin.relay.app.services.upstreams.get("lab").base_url.removesuffix("/lab")
    catalog = admin.relay.app.services.catalog
    added = admin.client.post("/api/ollama/instances", json={"name": "den", "base_url": emulator + "/den/"})
    try:
        assert added.status_code == 201, added.text
        den = added.json()
        assert (den["name"], den["base_url"], den["source"], den["status"]) == ("den", emulator + "/den", "admin", "ok")
        models = {m["name"]: m for m in den["models"]}
        assert models["llama3.2:latest"] == {
            "name": "llama3.2:latest",
            "use": "den/llama3.2:latest",
            "size": 2019393189,
            "size_text": "2.0 GB",
            "parameter_size": "3.2B",
            "quantization": "Q4_K_M",
            "family": "llama",
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "mode": "chat",
        }
        listed = {i["name"]: i for i in admin.client.get("/api/ollama/instances").json()["instances"]}
        assert listed["lab"]["source"] == "env" and not listed["lab"]["removable"]
        assert listed["den"]["model_count"] == 2 and listed["den"]["removable"]
        reply = chat(admin, "den/llama3.2")
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-relay-model"] == "den/llama3.2:latest"
        assert upstream.last("/api/chat").path == "/den/api/chat"
        page = admin.client.get("/ollama")
        assert page.status_code == 200
        assert 'value="den/llama3.2:latest"' in page.text and "readonly" in page.text
        assert "Remove instance" in page.text
        models_reply = admin.client.get("/api/ollama/instances/den/models", params={"refresh": "true"})
        assert [m["name"] for m in models_reply.json()["models"]] == ["deepseek-r1:latest", "llama3.2:latest"]
    finally:
        removed = admin.client.delete("/api/ollama/instances/den")
    assert removed.status_code == 200 and removed.json() == {"removed": "den"}
    assert catalog.models("den") == [] and admin.relay.app.services.upstreams.get("den") is None
    assert "den" not in [i["name"] for i in admin.client.get("/api/ollama/instances").json()["instances"]]
    assert chat(admin, "den/llama3.2").status_code == 404
    assert admin.client.get("/api/ollama/instances/den/models").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "openai", "base_url": "http://127.0.0.1:1"}, 409, "already used by a provider"),
        ({"name": "lab", "base_url": "http://127.0.0.1:1"}, 409, "already used by a provider"),
        ({"name": "Den", "base_url": "http://127.0.0.1:1"}, 400, "lower-case"),
        ({"name": "a/b", "base_url": "http://127.0.0.1:1"}, 400, "lower-case"),
        ({"name": "", "base_url": "http://127.0.0.1:1"}, 400, "lower-case"),
        ({"name": "den", "base_url": "ftp://127.0.0.1:1"}, 400, "http(s) URL"),
        ({"name": "den", "base_url": "127.0.0.1:11434"}, 400, "http(s) URL"),
        ({"name": "den"}, 400, "http(s) URL"),
        ({"name": "den", "base_url": "http://[::1"}, 400, "is not a URL"),  # Python cannot split it: a 500
        ({"name": "den", "base_url": "http://127.0.0.1:99999"}, 400, "is not a URL"),
    ],
)
def test_instances_are_validated(make_admin, body: dict[str, Any], status: int, says: str) -> None:
    admin = make_admin()
    reply = admin.client.post("/api/ollama/instances", json=body)
    assert reply.status_code == status, reply.text
    assert says in reply.json()["error"]


def test_instances_from_the_environment_stay(make_admin) -> None:
    admin = make_admin()
    refused = admin.client.delete("/api/ollama/instances/lab")
    assert refused.status_code == 409 and "OLLAMA_INSTANCES" in refused.json()["error"]
    assert admin.client.delete("/api/ollama/instances/nowhere").status_code == 404
    assert admin.relay.app.services.upstreams.get("lab") is not None


def test_pull_reports_progress_until_success(make_admin, upstream) -> None:
    admin = make_admin()
    started = admin.client.post("/api/ollama/instances/lab/pull", json={"model": "llama3.2"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert started.headers["location"] == f"/api/ollama/pulls/{job['id']}"
    assert (job["instance"], job["model"], job["done"]) == ("lab", "llama3.2", False)
    seen = wait_for(admin.client, f"/api/ollama/pulls/{job['id']}", lambda j: j["done"])
    final = seen[-1]
    assert (final["ok"], final["status"], final["percent"], final["error"]) == (True, "success", 100.0, None)
    assert final["total"] == 2142590208 and final["completed"] == 241970  # the documented layer
    assert all(a["percent"] <= b["percent"] for a, b in itertools.pairwise(seen))
    pulled = upstream.last("/lab/api/pull")
    assert (pulled.method, pulled.body) == ("POST", {"model": "llama3.2", "stream": True})
    fragment = admin.client.get(f"/ollama/pulls/{job['id']}", headers={"HX-Request": "true"})
    assert 'value="100.0"' in fragment.text and "pulled" in fragment.text
    assert "hx-get" not in fragment.text and fragment.headers["hx-trigger"] == "ollama-changed"
    assert admin.client.get("/api/ollama/pulls/unknown").status_code == 404


def test_pull_progress_is_summed_over_layers() -> None:
    job = PullJob("x", "lab", "m")
    for line in PULL_PROGRESS[:2]:
        job.update(dict(line))
    assert job.percent == round(100 * 241970 / 2142590208, 1) and job.status == "pulling digestname"
    job.update({"status": "pulling other", "digest": "other", "total": 2142590208, "completed": 2142590208})
    assert job.percent == 50.0
    job.update({"status": "success"})
    assert job.ok and job.percent == 100.0


def test_a_running_pull_polls_its_fragment(make_admin) -> None:
    admin = make_admin()
    job = PullJob("running1", "lab", "llama3.2", status="pulling digestname")
    job.update(dict(PULL_PROGRESS[1]))
    admin.relay.app.admin.state.setdefault(PULLS, {})[job.id] = job
    fragment = admin.client.get("/ollama/pulls/running1", headers={"HX-Request": "true"})
    assert 'hx-get="/ollama/pulls/running1"' in fragment.text and 'hx-trigger="load delay:500ms"' in fragment.text
    assert "<progress" in fragment.text and "hx-trigger" not in fragment.headers
    page = admin.client.get("/ollama")
    assert 'id="pull-job-running1"' in page.text  # a page opened later shows it too


def test_a_failed_pull_says_why(make_admin, upstream) -> None:
    admin = make_admin()
    upstream.down.add("lab")
    try:
        job = admin.client.post("/api/ollama/instances/lab/pull", json={"model": "llama3.2"}).json()
        final = wait_for(admin.client, f"/api/ollama/pulls/{job['id']}", lambda j: j["done"])[-1]
    finally:
        upstream.down.discard("lab")
    assert final["ok"] is False and "lab is down" in final["error"]
    assert admin.client.post("/api/ollama/instances/lab/pull", json={"model": "no spaces"}).status_code == 400
    assert admin.client.post("/api/ollama/instances/nowhere/pull", json={"model": "x"}).status_code == 404


def test_delete_model_reaches_the_server(make_admin, upstream) -> None:
    admin = make_admin()
    reply = admin.client.post("/api/ollama/instances/lab/delete-model", json={"model": "llama3.2:latest"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"instance": "lab", "deleted": "llama3.2:latest"}
    deleted = upstream.last("/lab/api/delete")
    assert (deleted.method, deleted.body) == ("DELETE", {"model": "llama3.2:latest"})
    missing = admin.client.post("/api/ollama/instances/lab/delete-model", json={"model": "nothing-here"})
    assert missing.status_code == 404 and "nothing-here" in missing.json()["error"]


def test_the_page_works_through_htmx_and_plain_forms(make_admin, upstream) -> None:
    admin = make_admin()
    htmx = {"HX-Request": "true"}
    bad = admin.client.post("/ollama/instances", data={"name": "openai", "base_url": "http://x"}, headers=htmx)
    assert bad.status_code == 200 and 'role="alert"' in bad.text and "already used" in bad.text
    assert "<html" not in bad.text and 'value="openai"' in bad.text  # the body only, the input kept
    pulled = admin.client.post("/ollama/instances/lab/pull", data={"model": "llama3.2"}, headers=htmx)
    assert "Pulling llama3.2 on lab." in pulled.text and "<progress" in pulled.text
    deleted = admin.client.post("/ollama/instances/lab/delete-model", data={"model": "llama3.2:latest"})
    assert deleted.status_code == 200 and "Deleted llama3.2:latest from lab." in deleted.text
    assert "<html" in deleted.text
    # A plain browser form: no htmx, the CSRF token as a field.
    with httpx.Client(base_url=admin.url, cookies=admin.client.cookies, headers={"Origin": admin.url}) as browser:
        page = browser.get("/ollama")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        refreshed = browser.post("/ollama/instances/lab/refresh", data={"csrf_token": token})
        assert refreshed.status_code == 200 and "lab: 2 models." in refreshed.text
        refused = browser.post("/ollama/instances/lab/refresh", data={"csrf_token": "wrong"})
        assert refused.status_code == 403
        removed = browser.post("/ollama/instances/lab/remove", data={"csrf_token": token})
        assert removed.status_code == 400 and "OLLAMA_INSTANCES" in removed.text
    body = admin.client.get("/ollama/body")
    assert "<html" not in body.text and "lab" in body.text


def test_an_unreachable_instance_is_added_with_a_warning(make_admin, upstream) -> None:
    admin = make_admin()
    htmx = {"HX-Request": "true"}
    emulator = admin.relay.app.services.upstreams.get("lab").base_url.removesuffix("/lab")
    try:
        dead = admin.client.post(
            "/ollama/instances", data={"name": "dead", "base_url": "http://127.0.0.1:1"}, headers=htmx
        )
        assert dead.status_code == 200 and 'class="flash ok"' not in dead.text
        warning = re.search(r'<p class="flash warn" role="status"[^>]*>([^<]*)</p>', dead.text)
        assert warning, dead.text
        assert html.unescape(warning.group(1)).startswith(
            "Added instance dead, but it cannot be reached: cannot reach http://127.0.0.1:1 ("
        )
        assert "Its models appear once it answers" in warning.group(1)
        den = admin.client.post("/ollama/instances", data={"name": "den", "base_url": emulator + "/den"}, headers=htmx)
        assert '<p class="flash ok" role="status">Added instance den: 2 models found.</p>' in den.text
        assert 'class="flash warn"' not in den.text
    finally:
        for name in ("dead", "den"):
            admin.client.delete(f"/api/ollama/instances/{name}")
