"""Tag attribution rules: X-Proxy-Tag > model@tag > bearer token, one tag row per tag."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import hypothesis
import pytest

from app.errors import BadRequest
from app.tagging import TAG_PATTERN, bearer_tags, parse_tags, split_model_tag

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
MODEL = "openai/chat_nonstream_basic"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def post(
    relay, model: str, *, headers: dict[str, Any] | None = None, path: str = "/v1/chat/completions"
) -> httpx.Response:
    body = {**CHAT, "model": model} if path != "/api/chat" else {**CHAT, "model": model, "stream": False}
    return httpx.post(relay.url + path, json=body, headers=headers or {})


def tags_of(relay, response: httpx.Response) -> list[str]:
    return relay.row(response.headers["x-request-id"])["tags"]


def test_header_tag(relay) -> None:
    tag = unique()
    response = post(relay, MODEL, headers={"X-Proxy-Tag": tag})
    assert response.status_code == 200
    assert tags_of(relay, response) == [tag]


def test_model_suffix_tag_is_stripped_before_upstream(relay, upstream) -> None:
    tag = unique()
    response = post(relay, f"{MODEL}@{tag}")
    assert response.status_code == 200
    assert response.headers["x-relay-model"] == MODEL
    assert upstream.last("/chat/completions").body["model"] == "chat_nonstream_basic"
    row = relay.row(response.headers["x-request-id"])
    assert row["tags"] == [tag]
    assert row["requested_model"] == MODEL  # the suffix is a tag, not part of the name (README, Tags)


def test_bearer_token_tag(relay) -> None:
    tag = unique("team")
    response = post(relay, MODEL, headers={"Authorization": f"Bearer {tag}"})
    assert tags_of(relay, response) == [tag]


def test_header_wins_and_suffix_is_still_stripped(relay, upstream) -> None:
    header, suffix, bearer = unique("h"), unique("s"), unique("b")
    response = post(relay, f"{MODEL}@{suffix}", headers={"X-Proxy-Tag": header, "Authorization": f"Bearer {bearer}"})
    assert response.status_code == 200
    assert upstream.last("/chat/completions").body["model"] == "chat_nonstream_basic"
    assert tags_of(relay, response) == [header]


def test_suffix_wins_over_bearer(relay) -> None:
    suffix, bearer = unique("s"), unique("b")
    response = post(relay, f"{MODEL}@{suffix}", headers={"Authorization": f"Bearer {bearer}"})
    assert tags_of(relay, response) == [suffix]


def test_several_tags_trimmed_deduplicated_each_with_its_own_row(relay) -> None:
    a, b = unique("a"), unique("b")
    response = post(relay, MODEL, headers={"X-Proxy-Tag": f"{a} ,{b}, {a},,"})
    assert tags_of(relay, response) == [a, b]
    # Per-tag totals are exact: each tag finds the request once.
    for tag in (a, b):
        rows = relay.rows(tag=tag)
        assert [r["request_id"] for r in rows] == [response.headers["x-request-id"]]
        assert sum(r["output_tokens"] for r in rows) == 363


def test_several_tags_in_model_suffix(relay) -> None:
    a, b = unique("a"), unique("b")
    response = post(relay, f"{MODEL}@{a},{b}")
    assert tags_of(relay, response) == [a, b]


def test_bearer_that_looks_like_a_provider_key_is_never_stored(relay) -> None:
    response = post(relay, MODEL, headers={"Authorization": "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"})
    assert response.status_code == 200
    assert tags_of(relay, response) == []


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "-leading-dash", "semi;colon", "ünï"])
def test_invalid_header_tag_is_a_clear_400_in_each_dialect(relay, bad: str) -> None:
    openai_reply = post(relay, MODEL, headers={"X-Proxy-Tag": bad.encode()})
    assert openai_reply.status_code == 400
    assert "invalid tag" in openai_reply.json()["error"]["message"]
    assert openai_reply.json()["error"]["type"] == "invalid_request_error"
    ollama_reply = post(relay, MODEL, headers={"X-Proxy-Tag": bad.encode()}, path="/api/chat")
    assert ollama_reply.status_code == 400
    assert "invalid tag" in ollama_reply.json()["error"]


def test_invalid_suffix_tag_is_a_400(relay) -> None:
    response = post(relay, f"{MODEL}@bad tag")
    assert response.status_code == 400
    assert "invalid tag" in response.json()["error"]["message"]
    row = relay.row(response.headers["x-request-id"])
    assert (row["outcome"], row["status"]) == ("client_error", 400)


@hypothesis.given(raw=hypothesis.strategies.text(max_size=200))
@hypothesis.settings(max_examples=300, deadline=None)
def test_tag_parsing_never_crashes(raw: str) -> None:
    """Any header value gives either valid tags or the relay's own 400, nothing else."""
    try:
        tags = parse_tags(raw, source="the X-Proxy-Tag header")
    except BadRequest as exc:
        assert "tag" in exc.message
        return
    assert len(tags) == len(set(tags)) <= 16
    assert all(TAG_PATTERN.fullmatch(t) for t in tags)
    model, suffix = split_model_tag(raw)
    if suffix:  # the suffix is what follows the last "@", and the two rejoin to the original
        assert "@" not in suffix and f"{model}@{suffix}" == raw
    assert bearer_tags(f"Bearer {raw}") is not None  # never raises


def test_a_model_name_with_a_nul_is_recorded_and_does_not_stop_usage_rows(relay) -> None:
    """A caller's JSON may carry U+0000 anywhere; PostgreSQL refuses it in text, and the usage
    writer once retried that row forever, every later row queued behind it."""
    tag = unique()
    refused = post(relay, "no-such\u0000model", headers={"X-Proxy-Tag": tag})
    assert refused.status_code == 400 and "control character" in refused.json()["error"]["message"]
    fine = post(relay, MODEL, headers={"X-Proxy-Tag": tag})
    assert fine.status_code == 200
    rows = {row["request_id"]: row for row in relay.rows(tag=tag)}
    assert set(rows) == {refused.headers["x-request-id"], fine.headers["x-request-id"]}
    assert rows[refused.headers["x-request-id"]]["requested_model"] in ("no-such\u0000model", "no-such\ufffdmodel")
