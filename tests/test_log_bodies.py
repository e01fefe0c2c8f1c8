"""Bodies stay out of the log unless the log_bodies stage is listed; with it, requests (as
redacted before it) and replies are logged, streaming or not, and headers never are."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest

from tests.test_stage_redact_headers import configure

SECRET = "the-launch-code-is-4242"
TOKEN = "team-bodies-token"


def everything(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def ask(sdk, relay, tag: str, *, stream: bool, text: str = f"Remember {SECRET} and mail bob@example.com") -> str:
    client = sdk.openai(relay.url)
    client.api_key = TOKEN
    messages = [{"role": "user", "content": text}]
    if stream:
        chunks = client.chat.completions.create(
            model="openai/chat_stream_text_short", messages=messages, stream=True, extra_headers={"X-Proxy-Tag": tag}
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(
        model="openai/chat_nonstream_basic", messages=messages, extra_headers={"X-Proxy-Tag": tag}
    )
    return reply.choices[0].message.content or ""


def test_no_bodies_in_the_log_by_default(relay, sdk, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for stream in (False, True):
        ask(sdk, relay, f"lb-{uuid.uuid4().hex[:8]}", stream=stream)
    text = everything(caplog)
    assert SECRET not in text and TOKEN not in text


@pytest.mark.parametrize("stream", [False, True])
def test_log_bodies_logs_what_left_and_what_came_back(make_relay, tmp_path, sdk, caplog, stream: bool) -> None:
    stages = '["tags", "resolve", "redact", "log_bodies", "quirks", "dispatch", "meter", "cost"]'
    options = '[options.redact]\npatterns = ["email"]\n[options.log_bodies]\nmax_chars = 20000\n'
    relay = make_relay(pipeline_file=configure(tmp_path, stages, options))
    caplog.set_level(logging.INFO, logger="llm_relay.bodies")
    answer = ask(sdk, relay, f"lb-{uuid.uuid4().hex[:8]}", stream=stream)
    lines = [r.getMessage() for r in caplog.records if r.name == "llm_relay.bodies"]
    assert len(lines) == 2, lines
    request, reply = lines
    assert request.startswith("request ") and SECRET in request
    assert "[REDACTED:email]" in request and "bob@example.com" not in request  # logged after redact
    assert reply.startswith("reply ") and answer
    # A whole body is logged as JSON; a stream relayed as upstream bytes, event by event.
    expected = '"content":"Paris"' if stream else orjson.dumps(answer).decode()[1:-1]
    assert expected in reply
    assert TOKEN not in everything(caplog)
