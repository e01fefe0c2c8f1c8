"""The openai SDK, sync and async, against the relay in front of every recorded
OpenAI-compatible response: text, reasoning, tool calls, finish reasons and usage survive."""

from __future__ import annotations

import uuid

import openai
import pytest

from tests.cases import CHAT_CASES, OTHER_COMPATIBLE, Case
from tests.recordings import Expected, expected_body, expected_stream

MESSAGES = [{"role": "user", "content": "hello"}]


def _expected(case: Case) -> Expected:
    return expected_stream(case.provider, case.name) if case.stream else expected_body(case.provider, case.name)


def _check_usage_row(row: dict, case: Case, model: str) -> None:
    assert row["outcome"] == "ok" and row["status"] == 200
    assert row["resolved_model"] == model
    assert (row["input_tokens"], row["output_tokens"]) == (case.input, case.output)
    assert row["reasoning_tokens"] == case.reasoning
    assert row["cached_input_tokens"] == case.cached
    assert row["usage_reported"] is True
    assert row["streamed"] is case.stream
    if case.cost_nanousd is not None:
        assert row["cost_nanousd"] == case.cost_nanousd


def run_sync(client: openai.OpenAI, model: str, case: Case, tag: str) -> tuple[Expected, dict]:
    got = Expected()
    headers = {"X-Proxy-Tag": tag}
    if case.stream:
        calls: dict[int, list[str]] = {}
        usage_chunks = 0
        with client.chat.completions.with_streaming_response.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, extra_headers=headers
        ) as response:
            relay_headers = dict(response.headers)
            for chunk in response.parse():
                usage_chunks += chunk.usage is not None
                for choice in chunk.choices:
                    got.text += choice.delta.content or ""
                    got.reasoning += getattr(choice.delta, "reasoning_content", None) or ""
                    for call in choice.delta.tool_calls or []:
                        slot = calls.setdefault(call.index, ["", ""])
                        slot[0] += call.function.name or "" if call.function else ""
                        slot[1] += call.function.arguments or "" if call.function else ""
                    got.finish = choice.finish_reason or got.finish
        got.tool_calls = [(n, a) for n, a in (calls[i] for i in sorted(calls))]
        assert usage_chunks >= 1, "include_usage asked for a usage chunk"
        return got, relay_headers
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=headers)
    completion = raw.parse()
    message = completion.choices[0].message
    got.text = message.content or ""
    got.reasoning = getattr(message, "reasoning_content", None) or ""
    got.tool_calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
    got.finish = completion.choices[0].finish_reason
    return got, dict(raw.headers)


@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda c: c.id)
def test_sync_client_relays_recording(relay, case: Case, sdk) -> None:
    client = sdk.openai(relay.url)
    tag = f"t-{uuid.uuid4().hex[:12]}"
    model = f"{case.provider}/{case.name}"
    got, headers = run_sync(client, model, case, tag)
    want = _expected(case)
    assert got == want
    assert headers["x-relay-model"] == model
    rows = relay.rows(tag=tag)
    assert [r["request_id"] for r in rows] == [headers["x-request-id"]]
    _check_usage_row(rows[0], case, model)


@pytest.mark.parametrize("case", OTHER_COMPATIBLE, ids=lambda c: c.id)
def test_other_openai_compatible_servers(make_relay, emulator, case: Case, sdk) -> None:
    relay = make_relay(provider_base_urls={"openai": f"{emulator[1]}/{case.provider}/v1"})
    client = sdk.openai(relay.url)
    tag = f"t-{uuid.uuid4().hex[:12]}"
    got, headers = run_sync(client, f"openai/{case.name}", case, tag)
    assert got == _expected(case)
    assert headers["x-relay-model"] == f"openai/{case.name}"
    _check_usage_row(relay.rows(tag=tag)[0], case, f"openai/{case.name}")


@pytest.mark.parametrize("case", [c for c in CHAT_CASES if c.stream], ids=lambda c: c.id)
async def test_async_client_streams(relay, case: Case) -> None:
    client = openai.AsyncOpenAI(base_url=relay.url + "/v1", api_key="unused", max_retries=0)
    tag = f"t-{uuid.uuid4().hex[:12]}"
    text = ""
    finish = None
    usage = None
    stream = await client.chat.completions.create(
        model=f"{case.provider}/{case.name}", messages=MESSAGES, stream=True, extra_headers={"X-Proxy-Tag": tag}
    )
    async for chunk in stream:
        usage = usage or chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    want = expected_stream(case.provider, case.name)
    assert (text, finish) == (want.text, want.finish)
    assert usage is None, "no usage chunk unless the client asks for one"
    await client.close()
    _check_usage_row(relay.rows(tag=tag)[0], case, f"{case.provider}/{case.name}")


async def test_async_client_non_streaming(relay) -> None:
    client = openai.AsyncOpenAI(base_url=relay.url + "/v1", api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(model="openai/chat_nonstream_tool_calls", messages=MESSAGES)
    assert completion.choices[0].message.tool_calls[0].function.name == "get_user_country"
    assert completion.usage is not None and completion.usage.prompt_tokens == 68
    await client.close()


def test_legacy_completions(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    tag = f"t-{uuid.uuid4().hex[:12]}"
    completion = client.completions.create(
        model="openai/completions_legacy_nonstream", prompt="A new holiday", extra_headers={"X-Proxy-Tag": tag}
    )
    want = expected_body("openai", "completions_legacy_nonstream")
    assert completion.choices[0].text == want.text and completion.choices[0].finish_reason == "length"
    row = relay.rows(tag=tag)[0]
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"]) == ("/v1/completions", 14, 16)


@pytest.mark.parametrize(
    "model",
    [
        "anthropic/messages_nonstream_parallel_tool_use",
        "gemini/generateContent_basic_thoughts",
        "lab/api_chat_nonstream_tool_calls",
        "openai/chat_nonstream_basic",
    ],
)
def test_every_chat_choice_has_the_fields_openais_schema_requires(relay, model: str) -> None:
    import httpx

    reply = httpx.post(
        relay.url + "/v1/chat/completions", json={"model": model, "messages": MESSAGES}, timeout=10
    ).json()
    for choice in reply["choices"]:
        assert "logprobs" in choice and "refusal" in choice["message"], choice
