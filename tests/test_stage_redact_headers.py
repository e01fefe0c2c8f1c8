"""The redact and header_tags stages, against the emulated upstream: what leaves the relay is
redacted (in both dialects, whatever the upstream's), and tags come from configured headers."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import PNG
from tests.test_stage_spend_limit import MESSAGES

SECRET_MAIL = "alice.smith@example.com"
CARD = "4111 1111 1111 1111"  # passes the Luhn check
ORDER = "1234 5678 9012 3456"  # does not: an order number stays
TEXT = f"Mail {SECRET_MAIL} about card {CARD}, order {ORDER}, staff EMP-123456, from +44 20 7946 0958."


def configure(tmp_path: Path, stages: str, options: str) -> str:
    path = tmp_path / f"pipeline-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f"stages = {stages}\n{options}")
    return str(path)


REDACTING = '["tags", "resolve", "redact", "quirks", "dispatch", "meter", "cost"]'


@pytest.fixture
def redacting(make_relay, tmp_path):
    options = '[options.redact]\ncustom = { staff_id = "EMP-[0-9]{6}" }\n'
    return make_relay(pipeline_file=configure(tmp_path, REDACTING, options))


def assert_redacted(text: str) -> None:
    assert SECRET_MAIL not in text and "4111" not in text and "EMP-123456" not in text and "7946" not in text
    for name in ("email", "card", "staff_id", "phone"):
        assert f"[REDACTED:{name}]" in text
    assert ORDER in text


def test_openai_dialect_to_an_openai_upstream(redacting, upstream, sdk) -> None:
    tag = f"rd-{uuid.uuid4().hex[:8]}"
    content = [
        {"type": "text", "text": TEXT},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG.hex()}},
    ]
    reply = sdk.openai(redacting.url).chat.completions.create(
        model="openai/chat_nonstream_basic",
        messages=[{"role": "system", "content": f"Reply to {SECRET_MAIL}"}, {"role": "user", "content": content}],
        extra_headers={"X-Proxy-Tag": tag},
    )
    assert reply.choices[0].message.content
    sent = upstream.last("/openai/v1/chat/completions").body
    assert_redacted(sent["messages"][0]["content"] + sent["messages"][1]["content"][0]["text"])
    assert sent["messages"][1]["content"][1]["image_url"]["url"].endswith(PNG.hex())  # images untouched
    assert sent["model"] == "chat_nonstream_basic"
    row = redacting.rows(tag=tag)[0]
    assert row["requested_model"] == "openai/chat_nonstream_basic" and row["status"] == 200


def test_streamed_to_an_anthropic_upstream(redacting, upstream, sdk) -> None:
    chunks = list(
        sdk.openai(redacting.url).chat.completions.create(
            model="anthropic/messages_stream_text_simple",
            messages=[{"role": "user", "content": TEXT}],
            stream=True,
        )
    )
    assert chunks
    sent = upstream.last("/anthropic/v1/messages").body
    assert_redacted(str(sent["messages"]))


def test_anthropic_dialect_to_anthropic_as_written_but_redacted(redacting, upstream) -> None:
    body = {
        "model": "anthropic/messages_stream_text_simple",
        "max_tokens": 20,
        "stream": True,
        "system": [{"type": "text", "text": f"Reply to {SECRET_MAIL}", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": TEXT}]}],
    }
    reply = httpx.post(redacting.url + "/v1/messages", json=body, timeout=10)
    assert reply.status_code == 200 and "message_stop" in reply.text
    sent = upstream.last("/anthropic/v1/messages").body
    assert_redacted(sent["system"][0]["text"] + sent["messages"][0]["content"][0]["text"])
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}  # the rest as the client wrote it


def test_ollama_dialect_to_an_ollama_upstream(redacting, upstream, sdk) -> None:
    client = sdk.ollama(redacting.url)
    list(client.chat(model="lab/api_chat_stream_truncated", messages=[{"role": "user", "content": TEXT}], stream=True))
    assert_redacted(upstream.last("/lab/api/chat").body["messages"][0]["content"])
    client.generate(model="lab/llama3.2", prompt=TEXT, system=f"for {SECRET_MAIL}", stream=False)
    sent = upstream.last("/lab/api/generate").body
    assert_redacted(sent["prompt"])
    assert SECRET_MAIL not in sent["system"]
    client.embed(model="lab/all-minilm", input=[TEXT, "plain"])
    sent = upstream.last("/lab/api/embed").body
    assert_redacted(sent["input"][0])
    assert sent["input"][1] == "plain"


def test_embeddings_and_tool_arguments(redacting, upstream) -> None:
    body = {
        "model": "openai/chat_nonstream_basic",
        "messages": [
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": f'{{"email": "{SECRET_MAIL}"}}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"{SECRET_MAIL} has card {CARD}"},
        ],
    }
    assert httpx.post(redacting.url + "/v1/chat/completions", json=body).status_code == 200
    sent = upstream.last("/openai/v1/chat/completions").body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"email": "[REDACTED:email]"}'
    assert sent[1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert sent[2]["content"] == "[REDACTED:email] has card [REDACTED:card]"


HEADER_STAGES = '["tags", "header_tags", "resolve", "quirks", "dispatch", "meter", "cost"]'


def test_header_tags_are_added_to_the_other_tags(make_relay, tmp_path) -> None:
    options = '[options.header_tags]\nheaders = { x-forwarded-user = "user:", x-team = "team:" }\n'
    relay = make_relay(pipeline_file=configure(tmp_path, HEADER_STAGES, options))
    project = f"p-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": f"openai/chat_nonstream_basic@{project}", "messages": MESSAGES},
        headers={"X-Forwarded-User": "bob@example.com", "X-Team": "red, blue"},
    )
    assert reply.status_code == 200
    row = relay.row(reply.headers["x-request-id"])
    assert row["tags"] == [project, "user:bob@example.com", "team:red", "team:blue"]
    bad = httpx.post(
        relay.url + "/api/chat",
        json={"model": "openai/chat_nonstream_basic", "messages": MESSAGES, "stream": False},
        headers={"X-Team": "has space"},
    )
    assert bad.status_code == 400 and "invalid tag 'team:has space'" in bad.json()["error"]
    assert relay.row(bad.headers["x-request-id"])["status"] == 400


def test_header_tags_replace_and_required(make_relay, tmp_path) -> None:
    options = '[options.header_tags]\nheaders = { x-forwarded-user = "" }\nreplace = true\nrequired = true\n'
    relay = make_relay(pipeline_file=configure(tmp_path, HEADER_STAGES, options))
    body = {"model": "openai/chat_nonstream_basic", "messages": MESSAGES}
    user = f"u-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": "other", "X-Forwarded-User": user}
    )
    assert relay.row(reply.headers["x-request-id"])["tags"] == [user]
    refused = httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": "other"})
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert "x-forwarded-user" in refused.json()["error"]["message"]
