"""The Aliases page on a fresh install: a built-in alias whose provider is not configured is
unavailable, shown quietly, not as an error; a target that cannot resolve still is one."""

from __future__ import annotations

import re


def test_aliases_of_unconfigured_providers_are_quietly_unavailable(make_admin) -> None:
    admin = make_admin(provider_keys={"openai": "test-key-openai"}, model_aliases="old=nowhere/mistral")
    listed = {a["name"]: a for a in admin.client.get("/api/aliases").json()["aliases"]}
    sonnet = listed["claude-sonnet"]
    assert (sonnet["resolves_to"], sonnet["error"], sonnet["unavailable"]) == (None, None, "anthropic not configured")
    assert listed["gemini-pro"]["unavailable"] == "gemini not configured"
    assert listed["gpt"]["resolves_to"].startswith("openai/") and listed["gpt"]["unavailable"] is None
    assert listed["old"]["unavailable"] is None and "does not resolve" in listed["old"]["error"]
    page = admin.client.get("/aliases").text
    assert '<span class="badge badge-muted">unavailable: anthropic not configured</span>' in page
    errors = re.findall(r'<span class="error">([^<]*)</span>', page)
    assert len(errors) == 1 and "nowhere/mistral" in errors[0]  # only the alias that is wrong
