"""Upstream errors keep their status and message, in the caller's dialect; bad input is a
clear 4xx; every outcome leaves exactly one usage row."""

from __future__ import annotations

import gzip
import os

import httpx
import openai
import pytest

from tests.live import free_port

CHAT = [{"role": "user", "content": "hi"}]


def test_upstream_400_keeps_status_and_message(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="openai/error_400_unsupported_system_role", messages=CHAT)
    error = caught.value
    assert error.status_code == 400
    assert "does not support 'system' with this model" in error.message
    assert error.body["param"] == "messages[0].role" and error.body["code"] == "unsupported_value"
    row = relay.row(error.response.headers["x-request-id"])
    assert (row["outcome"], row["status"], row["provider"]) == ("upstream_error", 400, "openai")
    assert "does not support 'system'" in row["error"]


def test_upstream_429_is_a_429_in_both_dialects(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="openrouter/error_429_rate_limited", messages=CHAT)
    assert "temporarily rate-limited upstream" in caught.value.message
    reply = httpx.post(
        relay.url + "/api/chat", json={"model": "openrouter/error_429_rate_limited", "messages": CHAT, "stream": True}
    )
    assert reply.status_code == 429
    assert "rate-limited" in reply.json()["error"]
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["status"], row["streamed"]) == ("upstream_error", 429, True)


def test_groq_tool_use_failure(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="groq/error_400_tool_use_failed", messages=CHAT, stream=True)
    assert caught.value.body["code"] == "tool_use_failed"


def test_unreachable_upstream_is_a_502(make_relay) -> None:
    relay = make_relay(provider_base_urls={"openai": f"http://127.0.0.1:{free_port()}/v1"})
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": CHAT})
    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == "upstream_unavailable"
    assert relay.row(reply.headers["x-request-id"])["outcome"] == "upstream_error"


@pytest.mark.parametrize(
    ("path", "payload", "needle"),
    [
        ("/v1/chat/completions", b"{not json", "not valid JSON"),
        ("/v1/chat/completions", b"[1, 2]", "JSON object"),
        ("/v1/chat/completions", b'{"messages": []}', "'model' is required"),
        ("/v1/chat/completions", b'{"model": "gpt-4o"}', "'messages' is required"),
        ("/v1/chat/completions", b'{"model": 5, "messages": []}', "'model' must be a string"),
        ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": "hi"}', "must be a list"),
        ("/v1/chat/completions", b'{"model": "gpt-4o", "messages": [{"content": "x"}]}', "'role'"),
        ("/v1/chat/completions", b'{"model": "x", "messages": [{"role": "user"}], "stream": "yes"}', "'stream'"),
        ("/v1/embeddings", b'{"model": "x"}', "'input' is required"),
        ("/api/chat", b"{not json", "not valid JSON"),
        ("/api/chat", b'{"messages": []}', "'model' is required"),
        ("/api/chat", b'{"model": "x", "messages": [{"content": 1}]}', "'role'"),
        ("/api/chat", b'{"model": "x", "messages": [{"role": "user"}], "think": "lots"}', "'think'"),
        ("/api/generate", b'{"model": "x", "prompt": 5}', "'prompt' must be a string"),
        ("/api/generate", b'{"model": "x", "prompt": {}}', "'prompt' must be a string"),
        ("/api/generate", b'{"model": "x", "prompt": 0}', "'prompt' must be a string"),
        ("/api/chat", b"", "empty"),
        ("/api/chat", b'{"model": 5, "messages": []}', "'model' must be a model's name"),
        ("/v1/chat/completions", b'{"model": "\xff", "messages": []}', "not valid UTF-8 (at byte 11)"),
    ],
)
def test_bad_input_is_a_clear_400(relay, path: str, payload: bytes, needle: str) -> None:
    reply = httpx.post(relay.url + path, content=payload, headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    body = reply.json()
    message = body["error"] if path.startswith("/api/") else body["error"]["message"]
    assert needle in message and reply.headers["x-relay-route"] == "none"
    row = relay.row(reply.headers["x-request-id"])  # refused before the pipeline, still one row
    assert (row["outcome"], row["status"], row["endpoint"]) == ("client_error", 400, path)
    assert needle in row["error"] and row["dialect"] == ("ollama" if path.startswith("/api/") else "openai")


@pytest.mark.parametrize(
    ("path", "payload", "dialect"),
    [
        ("/v1/messages", {"model": "claude-x@team-a", "messages": "hi"}, "anthropic"),
        ("/v1/responses", {"model": "gpt-x@team-a", "input": 5}, "responses"),
        ("/v1/chat/completions", {"model": "gpt-x@team-a", "messages": "hi"}, "openai"),
        ("/api/embed", {"model": "nomic@team-a"}, "ollama"),
    ],
)
def test_a_refused_request_has_its_model_and_tags_on_its_row(relay, path: str, payload: dict, dialect: str) -> None:
    reply = httpx.post(relay.url + path, json=payload)
    assert reply.status_code == 400, reply.text
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["dialect"], row["provider"]) == ("client_error", dialect, None)
    assert row["requested_model"] == payload["model"].split("@")[0] and row["tags"] == ["team-a"]
    assert row["cost_nanousd"] is None and row["input_tokens"] == 0


def test_a_refused_request_takes_its_tag_from_the_bearer_but_never_a_secret(relay) -> None:
    tagged = httpx.post(relay.url + "/api/chat", content=b"{", headers={"authorization": "Bearer team-b"})
    assert relay.row(tagged.headers["x-request-id"])["tags"] == ["team-b"]
    secret = httpx.post(relay.url + "/api/chat", content=b"{", headers={"authorization": "Bearer sk-abc123"})
    row = relay.row(secret.headers["x-request-id"])
    assert row["tags"] == [] and "sk-abc123" not in str(row)
    bad_tag = httpx.post(relay.url + "/api/chat", content=b"{", headers={"x-proxy-tag": "no spaces allowed"})
    assert bad_tag.status_code == 400 and relay.row(bad_tag.headers["x-request-id"])["tags"] == []


def test_the_requested_model_is_stored_without_its_tag_suffix(relay) -> None:
    body = {"model": "openai/chat_nonstream_basic@team-c", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    row = relay.row(reply.headers["x-request-id"])
    assert (row["requested_model"], row["tags"]) == ("openai/chat_nonstream_basic", ["team-c"])


def test_form_bodies_are_415(relay) -> None:
    reply = httpx.post(relay.url + "/v1/chat/completions", data={"model": "x"})
    assert reply.status_code == 415 and "JSON" in reply.json()["error"]["message"]
    multipart = httpx.post(relay.url + "/api/chat", files={"model": (None, "x")})
    assert multipart.status_code == 415 and "JSON" in multipart.json()["error"]
    for refused in (reply, multipart):
        row = relay.row(refused.headers["x-request-id"])
        assert (row["outcome"], row["status"], row["requested_model"]) == ("client_error", 415, "")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_json_sent_the_way_curl_d_sends_it_is_read(relay, path: str) -> None:
    """``curl URL -d '{...}'`` (the README's and Ollama's examples) labels the body as a form."""
    body = b'{"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "hi"}], "stream": false}'
    reply = httpx.post(relay.url + path, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200, reply.text
    assert relay.row(reply.headers["x-request-id"])["outcome"] == "ok"


def test_compressed_bodies_are_415(relay) -> None:
    """Never expanded: a small compressed body can be a huge one."""
    body = gzip.compress(b'{"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "hi"}]}')
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    reply = httpx.post(relay.url + "/v1/chat/completions", content=body, headers=headers)
    assert reply.status_code == 415 and "Content-Encoding gzip" in reply.json()["error"]["message"]
    assert reply.headers["x-relay-route"] == "none"
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["status"]) == ("client_error", 415)


def test_a_null_stream_is_the_default(relay) -> None:
    """OpenAI's spec has ``stream`` nullable, default false; Ollama's default is true."""
    chat = {"model": "openai/chat_nonstream_basic", "messages": CHAT, "stream": None}
    reply = httpx.post(relay.url + "/v1/chat/completions", json=chat)
    assert reply.status_code == 200 and reply.json()["object"] == "chat.completion"
    ollama = httpx.post(relay.url + "/api/chat", json={**chat, "model": "lab/llama3.2"})
    assert ollama.status_code == 200 and ollama.headers["content-type"] == "application/x-ndjson"
    for stream in ("yes", 1):  # truthy is not true
        anthropic = httpx.post(
            relay.url + "/v1/messages", json={**chat, "max_tokens": 5, "stream": stream, "model": "openai/x"}
        )
        assert anthropic.status_code == 400 and "stream" in anthropic.json()["error"]["message"]


def test_a_provider_without_a_model_says_so(relay) -> None:
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "openai/", "messages": CHAT})
    assert reply.status_code == 404 and "no model after the '/'" in reply.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/api/chat", "/v1/messages/count_tokens"])
def test_a_model_name_no_header_can_carry_still_gets_its_reply(relay, path: str) -> None:
    """The name is echoed in X-Relay-Model, percent-encoded: raw, it failed the whole reply (a bare 500
    after the provider had answered)."""
    body = {"model": "openai/gpt-4o-mini-\U0001f600", "messages": CHAT, "max_tokens": 5, "stream": False}
    reply = httpx.post(relay.url + path, json=body)
    assert reply.status_code in (200, 404), reply.text  # the emulated OpenAI has no such recording: its 404
    assert reply.headers["x-relay-model"] == "openai/gpt-4o-mini-%F0%9F%98%80"
    assert reply.headers["content-type"] == "application/json" and reply.json()


WRONG_TYPES = [  # (path, body): fields a translation for another provider used to crash on
    ("/v1/chat/completions", {"model": "anthropic/messages_nonstream_thinking", "messages": CHAT, "stop": 5}),
    ("/v1/chat/completions", {"model": "gemini/generateContent_basic_thoughts", "messages": CHAT, "stop": True}),
    ("/v1/completions", {"model": "lab/llama3.2", "prompt": "hi", "stop": 5}),
    ("/v1/chat/completions", {"model": "gemini/generateContent_basic_thoughts", "messages": CHAT, "tools": 5}),
    (
        "/v1/chat/completions",
        {"model": "anthropic/x", "messages": CHAT, "tools": [{"type": "function", "function": 5}]},
    ),
    (
        "/v1/chat/completions",
        {
            "model": "anthropic/x",
            "messages": CHAT,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
        },
    ),
    ("/v1/chat/completions", {"model": "anthropic/x", "messages": CHAT, "reasoning_effort": ["high"]}),
    (
        "/v1/chat/completions",
        {
            "model": "gemini/generateContent_basic_thoughts",
            "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
        },
    ),
    (
        "/v1/chat/completions",
        {
            "model": "lab/llama3.2",
            "messages": [*CHAT, {"role": "assistant", "content": None, "tool_calls": "x"}, *CHAT],
        },
    ),
    (
        "/v1/messages",
        {"model": "gemini/generateContent_basic_thoughts", "max_tokens": 5, "messages": CHAT, "stop_sequences": 5},
    ),
    (
        "/v1/responses",
        {"model": "anthropic/x", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": 5}]},
    ),
    ("/api/chat", {"model": "lab/llama3.2", "messages": CHAT, "stream": False, "options": {"stop": 5}}),
    ("/api/generate", {"model": "lab/llama3.2", "prompt": "hi", "stream": False, "images": 5}),
]


@pytest.mark.parametrize(("path", "body"), WRONG_TYPES)
def test_wrong_types_are_a_400_in_every_translation(relay, upstream, path: str, body: dict) -> None:
    before = len(upstream.requests)
    reply = httpx.post(relay.url + path, json=body)
    assert reply.status_code == 400, reply.text  # a 500 would also have the SDKs retry it
    assert len(upstream.requests) == before  # refused before any provider was asked
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["status"]) == ("client_error", 400)


def test_oversized_body_is_413(make_relay) -> None:
    relay = make_relay(max_body_bytes=1000)
    big = {"model": "openai/x", "messages": [{"role": "user", "content": "x" * 2000}]}
    assert httpx.post(relay.url + "/v1/chat/completions", json=big).status_code == 413
    reply = httpx.post(relay.url + "/api/chat", json=big, headers={"x-proxy-tag": "team-d"})
    assert reply.status_code == 413 and "larger than 1000 bytes" in reply.json()["error"]
    assert reply.headers["x-relay-route"] == "none"
    row = relay.row(reply.headers["x-request-id"])  # never read, yet on file
    assert (row["outcome"], row["status"], row["dialect"], row["tags"]) == ("client_error", 413, "ollama", ["team-d"])
    admin = httpx.post(relay.url + "/api/show", json=big)  # no inference asked for: no row
    assert admin.status_code == 413 and relay.rows(request_id=admin.headers["x-request-id"]) == []


def test_unknown_routes_in_each_dialect(relay) -> None:
    openai_reply = httpx.get(relay.url + "/v1/nothing")
    assert openai_reply.status_code == 404 and "no such endpoint" in openai_reply.json()["error"]["message"]
    ollama_reply = httpx.post(relay.url + "/api/nothing", json={})
    assert ollama_reply.status_code == 404 and "no such endpoint" in ollama_reply.json()["error"]
    wrong_method = httpx.get(relay.url + "/v1/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    for reply in (openai_reply, ollama_reply, wrong_method):  # no inference asked for: no row
        assert relay.rows(request_id=reply.headers["x-request-id"]) == []


def test_health_and_readiness(relay) -> None:
    assert httpx.get(relay.url + "/health").json() == {"status": "ok", "pid": os.getpid()}  # served in-process
    ready = httpx.get(relay.url + "/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"catalog": True, "database": True}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat", "/v1/messages"])
def test_an_unknown_model_says_no_route_was_taken(relay, path: str) -> None:
    body = {"model": "nobody/serves-this", "messages": CHAT, "max_tokens": 5, "stream": False}
    reply = httpx.post(relay.url + path, json=body)
    assert reply.status_code == 404, reply.text
    assert reply.headers["x-relay-route"] == "none" and "x-relay-model" not in reply.headers
    row = relay.row(reply.headers["x-request-id"])
    assert (row["route"], row["resolved_model"]) == ("none", None)
