"""The admin UI's main flows in a real browser, each taking effect on the very next request,
with no restart: a price override, an Ollama instance, the usage log filtered and exported, and
the default model."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import login, shot

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def chat(relay_url: str, model: str, tag: str | None = None) -> httpx.Response:
    headers = {"X-Proxy-Tag": tag} if tag else {}
    return httpx.post(relay_url + "/v1/chat/completions", json={**CHAT, "model": model}, headers=headers)


def test_price_override_is_used_by_the_next_request(page: Page, make_admin, upstream) -> None:
    admin = make_admin()
    login(page, admin)
    page.goto(admin.url + "/providers/models/openai/gpt-4o")
    expect(page.get_by_role("heading", level=1)).to_contain_text("gpt-4o")
    page.get_by_label("Input, USD per million tokens").fill("1")
    page.get_by_label("Output, USD per million tokens").fill("2")
    page.locator("form:has(#p-input_per_mtok)").get_by_role("button", name="Save").click()
    expect(page.get_by_label("Input, USD per million tokens")).to_have_value("1")
    shot(page, "flow-price-override")
    upstream.fallback["openai"] = "chat_nonstream_basic"
    try:
        reply = chat(admin.relay.url, "openai/gpt-4o")
    finally:
        upstream.fallback.pop("openai")
    # 16 input at $1 and 363 output at $2 per million: the override, not the catalog's $2.50/$10.
    assert admin.relay.row(reply.headers["x-request-id"])["cost_nanousd"] == 16 * 1000 + 363 * 2000
    page.locator("form:has(#p-input_per_mtok)").get_by_role("button", name="Remove this override").click()
    expect(page.get_by_label("Input, USD per million tokens")).to_have_value("")


def test_added_ollama_instance_shows_its_models_and_serves(page: Page, make_admin, emulator) -> None:
    admin = make_admin()
    login(page, admin)
    page.goto(admin.url + "/ollama")
    name = f"den{uuid.uuid4().hex[:4]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("URL", exact=True).fill(f"{emulator[1]}/{name}")
    page.get_by_role("button", name="Add instance").click()
    # The environment's instance "lab" lists llama3.2:latest too: wait for the new instance's own row.
    expect(page.locator(f"section:has(#instance-{name})").get_by_text("llama3.2:latest")).to_be_visible()
    shot(page, "flow-ollama-instance")
    reply = chat(admin.relay.url, f"{name}/llama3.2")
    assert reply.status_code == 200 and reply.headers["x-relay-model"] == f"{name}/llama3.2:latest"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"form[action='/ollama/instances/{name}/remove']").get_by_role("button").click()
    expect(page.get_by_text(f"{name}/llama3.2")).to_have_count(0)
    assert chat(admin.relay.url, f"{name}/llama3.2").status_code == 404


def test_usage_log_filtered_by_tag_and_exported(page: Page, make_admin) -> None:
    admin = make_admin()
    tag = f"team-{uuid.uuid4().hex[:6]}"
    mine = [chat(admin.relay.url, "openai/chat_nonstream_basic", tag).headers["x-request-id"] for _ in range(3)]
    chat(admin.relay.url, "openai/chat_nonstream_basic", "someone-else")
    admin.relay.rows(tag=tag)  # written
    login(page, admin)
    page.goto(admin.url + "/usage")
    page.get_by_label("Tag").fill(tag)
    with page.expect_response(lambda r: "/usage" in r.url and r.request.headers.get("hx-request") == "true"):
        page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(f"tag={tag}"))
    shot(page, "flow-usage-filtered")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert sorted(r["request_id"] for r in rows) == sorted(mine)
    assert all(r["tags"] == tag for r in rows)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="JSON").click()
    exported = json.loads(Path(download_info.value.path()).read_text())
    assert sorted(r["request_id"] for r in exported) == sorted(mine)


def test_usage_filters_apply_once_and_survive_the_back_button(page: Page, make_admin) -> None:
    """Enter in a filter fired both change and submit (two requests, two history entries), and
    Back restored the results but not what the form said."""
    admin = make_admin()
    tag = f"team-{uuid.uuid4().hex[:6]}"
    chat(admin.relay.url, "openai/chat_nonstream_basic", tag)
    admin.relay.rows(tag=tag)  # written
    login(page, admin)
    page.goto(admin.url + "/usage")
    applied: list[str] = []
    page.on("requestfinished", lambda r: applied.append(r.url) if f"tag={tag}" in r.url else None)
    page.get_by_label("Tag").fill(tag)
    page.get_by_label("Tag").press("Enter")
    expect(page).to_have_url(re.compile(f"tag={tag}"))
    page.get_by_label("Outcome").select_option("ok")
    expect(page).to_have_url(re.compile("outcome=ok"))
    assert len(applied) == 2, applied  # one for the tag, one for the outcome
    page.go_back()
    expect(page).not_to_have_url(re.compile("outcome=ok"))
    expect(page.get_by_label("Tag")).to_have_value(tag)
    expect(page.get_by_label("Outcome")).to_have_value("")


def test_default_model_catches_the_next_unknown_model(page: Page, make_admin) -> None:
    admin = make_admin()
    assert chat(admin.relay.url, "no-such-model").status_code == 404
    login(page, admin)
    page.goto(admin.url + "/aliases")
    page.get_by_label("Default model").fill("openai/chat_nonstream_basic")
    page.get_by_role("button", name="Save default").click()
    expect(page.get_by_label("Default model")).to_have_value("openai/chat_nonstream_basic")
    shot(page, "flow-default-model")
    reply = chat(admin.relay.url, "no-such-model")
    assert reply.status_code == 200
    assert (reply.headers["x-relay-model"], reply.headers["x-relay-route"]) == (
        "openai/chat_nonstream_basic",
        "default",
    )
    page.get_by_role("button", name="No default").click()
    expect(page.get_by_label("Default model")).to_have_value("")
    assert chat(admin.relay.url, "no-such-model").status_code == 404


def test_a_refused_alias_edit_is_shown_in_view_and_kept_in_its_row(page: Page, make_admin) -> None:
    """The error flashed above the fold while the form was below it, and the refused target
    turned up in the "Add an alias" form instead of the row it was typed in."""
    admin = make_admin()
    name = f"edit-{uuid.uuid4().hex[:6]}"
    assert admin.client.post("/api/aliases", json={"name": name, "target": "lab/llama3.2"}).status_code == 201
    page.set_viewport_size({"width": 390, "height": 500})
    login(page, admin)
    page.goto(admin.url + "/aliases")
    row = page.get_by_label(f"Target of {name}")
    row.fill("nosuch/zzz")
    row.press("Enter")
    error = page.get_by_role("alert")
    expect(error).to_contain_text("does not resolve")
    expect(error).to_be_focused()
    expect(error).to_be_in_viewport()
    expect(page.get_by_label(f"Target of {name}")).to_have_value("nosuch/zzz")
    expect(page.locator("#alias-target")).to_have_value("")
    admin.client.delete(f"/api/aliases/{name}")
