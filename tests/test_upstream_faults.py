"""Upstream faults from a real (faulty) server, seen through the openai and ollama SDKs: each
gets the right status or final error frame, and each request leaves exactly one usage row."""

from __future__ import annotations

import json
import uuid

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.conftest import closing

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def relay_on(make_relay, faulty):
    return make_relay(
        provider_base_urls={"openai": faulty.url},
        upstream_timeouts="openai=1/2",  # 1 s of silence inside a stream, 2 s for a reply
        upstream_retry_budget=5.0,
    )


def one_row(relay, tag: str) -> dict:
    rows = relay.rows(tag=tag)
    assert len(rows) == 1, f"expected exactly one usage row, got {len(rows)}"
    return rows[0]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_error_statuses_keep_their_meaning(relay_on, faulty, sdk, status: int, error_class) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    model = f"status:{status}"
    before = faulty.hits[model]
    with pytest.raises(error_class) as caught:
        sdk.openai(relay_on.url).chat.completions.create(
            model=f"openai/{model}", messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
        )
    assert caught.value.status_code == status and f"emulated {status}" in caught.value.message
    retried = status in (429, 500, 503)
    assert faulty.hits[model] - before == (3 if retried else 1)  # 2 retries, Retry-After: 0 honoured
    row = one_row(relay_on, tag)
    assert (row["outcome"], row["status"]) == ("upstream_error", status)
    ollama_reply = httpx.post(relay_on.url + "/api/chat", json={"model": f"openai/{model}", "messages": MESSAGES})
    assert ollama_reply.status_code == status and f"emulated {status}" in ollama_reply.json()["error"]


def test_transient_failures_are_retried_before_the_first_byte(relay_on, faulty, sdk) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    model = f"flaky:2-{uuid.uuid4().hex[:6]}"
    reply = sdk.openai(relay_on.url).chat.completions.create(
        model=f"openai/{model}", messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
    )
    assert reply.usage.prompt_tokens == 16
    assert faulty.hits[model] == 3
    assert one_row(relay_on, tag)["outcome"] == "ok"


def test_an_absurd_usage_report_is_answered_and_recorded_within_bounds(relay_on, sdk) -> None:
    """Counts past 64 bits and a cost of 1e300 dollars once failed the request after the upstream
    answered (the usage journal could not encode them) and lost its usage row; a database column
    could not hold them either. They are kept at MAX_TOKENS and MAX_NANOUSD."""
    from app.internal import MAX_NANOUSD, MAX_TOKENS

    tag = f"t-{uuid.uuid4().hex[:8]}"
    reply = sdk.openai(relay_on.url).chat.completions.create(
        model="openai/absurd-usage", messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
    )
    assert reply.choices[0].message.content
    row = one_row(relay_on, tag)
    assert (row["outcome"], row["input_tokens"], row["output_tokens"]) == ("ok", MAX_TOKENS, MAX_TOKENS)
    assert row["provider_cost_nanousd"] == MAX_NANOUSD and row["cost_nanousd"] == MAX_NANOUSD
    after = f"t-{uuid.uuid4().hex[:8]}"
    sdk.openai(relay_on.url).chat.completions.create(
        model="openai/flaky:0", messages=MESSAGES, extra_headers={"X-Proxy-Tag": after}
    )
    assert one_row(relay_on, after)["outcome"] == "ok"  # the writer is not held up


def test_reset_and_stall_before_a_reply(relay_on, sdk) -> None:
    for model, status in (("reset", 502), ("stall", 504)):
        tag = f"t-{uuid.uuid4().hex[:8]}"
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.openai(relay_on.url).chat.completions.create(
                model=f"openai/{model}", messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
            )
        assert caught.value.status_code == status
        row = one_row(relay_on, tag)
        assert (row["outcome"], row["status"]) == ("upstream_error", status)


@pytest.mark.parametrize("fault", ["midstream-error", "midstream-reset", "midstream-stall", "midstream-done"])
def test_failures_after_streaming_began_end_with_an_error_frame(relay_on, sdk, fault: str) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    received = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in sdk.openai(relay_on.url).chat.completions.create(
            model=f"openai/{fault}", messages=MESSAGES, stream=True, extra_headers={"X-Proxy-Tag": tag}
        ):
            received += "".join(c.delta.content or "" for c in chunk.choices)
    if fault == "midstream-error":
        assert "Tool call validation failed" in str(caught.value)
    row = one_row(relay_on, tag)
    assert row["outcome"] == "upstream_error" and row["status"] == 200  # the stream had begun
    assert row["output_tokens"] >= 1  # what was streamed is counted
    tag = f"t-{uuid.uuid4().hex[:8]}"
    client = ollama.Client(host=relay_on.url, headers={"X-Proxy-Tag": tag})
    with pytest.raises(ollama.ResponseError):
        list(client.chat(model=f"openai/{fault}", messages=MESSAGES, stream=True))
    client.close()
    assert one_row(relay_on, tag)["outcome"] == "upstream_error"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_dialect_gets_anthropics_error_types(relay_on, status: int, error_type: str) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    client = closing(anthropic.Anthropic(base_url=relay_on.url, api_key="k", max_retries=0))
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model=f"openai/status:{status}", max_tokens=5, messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
        )
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == error_type
    assert f"emulated {status}" in caught.value.body["error"]["message"]
    assert one_row(relay_on, tag)["dialect"] == "anthropic"


@pytest.mark.parametrize("fault", ["midstream-error", "midstream-reset", "midstream-done"])
def test_anthropic_stream_failing_midway_ends_with_an_error_event(relay_on, fault: str) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    client = closing(anthropic.Anthropic(base_url=relay_on.url, api_key="k", max_retries=0))
    text = ""
    with pytest.raises(anthropic.APIError) as caught:
        with client.messages.stream(
            model=f"openai/{fault}", max_tokens=5, messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
        ) as stream:
            for piece in stream.text_stream:
                text += piece
    assert text  # the stream had begun
    if fault == "midstream-error":
        assert "Tool call validation failed" in str(caught.value)
    row = one_row(relay_on, tag)
    assert (row["outcome"], row["status"], row["dialect"]) == ("upstream_error", 200, "anthropic")


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, openai.AuthenticationError), (429, openai.RateLimitError), (503, openai.InternalServerError)],
)
def test_responses_dialect_keeps_the_status(relay_on, status: int, error_class) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    client = closing(openai.OpenAI(base_url=relay_on.url + "/v1", api_key="k", max_retries=0))
    with pytest.raises(error_class) as caught:
        client.responses.create(model=f"openai/status:{status}", input="hi", extra_headers={"X-Proxy-Tag": tag})
    assert caught.value.status_code == status and f"emulated {status}" in caught.value.message
    assert one_row(relay_on, tag)["dialect"] == "responses"


@pytest.mark.parametrize("fault", ["midstream-error", "midstream-reset", "midstream-done"])
def test_responses_stream_failing_midway_ends_with_an_error_event(make_relay, faulty, fault: str) -> None:
    relay_on = make_relay(provider_base_urls={"groq": faulty.url}, upstream_timeouts="groq=1/2")  # translated
    tag = f"t-{uuid.uuid4().hex[:8]}"
    client = closing(openai.OpenAI(base_url=relay_on.url + "/v1", api_key="k", max_retries=0))
    text = ""
    with pytest.raises(openai.APIError) as caught:
        for event in client.responses.create(
            model=f"groq/{fault}", input="hi", stream=True, extra_headers={"X-Proxy-Tag": tag}
        ):
            text += getattr(event, "delta", "") if event.type == "response.output_text.delta" else ""
    assert text  # the stream had begun
    if fault == "midstream-error":
        assert "Tool call validation failed" in str(caught.value)
    row = one_row(relay_on, tag)
    assert (row["outcome"], row["status"], row["dialect"]) == ("upstream_error", 200, "responses")


def test_a_responses_stream_that_fails_before_any_text_reports_no_usage(make_relay, faulty) -> None:
    """The failed response's usage is the row's: nothing generated, nothing estimated."""
    relay_on = make_relay(provider_base_urls={"groq": faulty.url}, upstream_timeouts="groq=1/2")  # translated
    tag = f"t-{uuid.uuid4().hex[:8]}"
    events: list[dict] = []
    body = {"model": "groq/empty-stream", "input": "hi " * 500, "stream": True}
    with httpx.stream("POST", relay_on.url + "/v1/responses", json=body, headers={"X-Proxy-Tag": tag}) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    failed = [e for e in events if e["type"] == "response.failed"]
    assert len(failed) == 1 and failed[0]["response"]["usage"] is None
    row = one_row(relay_on, tag)
    assert (row["outcome"], row["input_tokens"], row["output_tokens"]) == ("upstream_error", 0, 0)


def test_embeddings_that_are_not_vectors_are_a_502(relay_on) -> None:
    """A vector per token (llama-cpp-python's server without pooling) is nothing a client can read."""
    tag = f"t-{uuid.uuid4().hex[:8]}"
    for path, body in (
        ("/v1/embeddings", {"model": "openai/token-embeddings", "input": "hi"}),
        ("/api/embed", {"model": "openai/token-embeddings", "input": "hi"}),
    ):
        reply = httpx.post(relay_on.url + path, json=body, headers={"X-Proxy-Tag": tag})
        assert reply.status_code == 502, reply.text
        assert "not one vector of numbers" in reply.text
    rows = relay_on.rows(tag=tag)
    assert [(r["outcome"], r["status"]) for r in rows] == [("upstream_error", 502)] * 2
