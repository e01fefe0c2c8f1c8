"""Perplexity's Agent API (/v1/responses) through both dialects with the real SDKs: the
recorded answers, their web sources and usage, the Sonar names as presets, and the request
translation the Agent API (which refuses unknown fields) gets.

Numbers are read by hand from the recordings. Non-streamed: input_tokens 3007 of which 1224
written to the cache and 1780 read from it, output 36, total_cost 0.00119 USD. Streamed:
input_tokens 3007 of which 3004 read, nothing written, output 37, total_cost 0.00105 USD.
The relay keeps cache writes outside ``input`` (3007 - 1224 = 1783) and reads inside it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import openai
import pytest

from app.adapters.base import Call
from app.adapters.perplexity import PerplexityAdapter
from app.adapters.perplexity_request import agent_request
from app.errors import BadRequest, UpstreamProtocolError, UpstreamStatusError
from app.internal import Usage
from app.providers import Provider
from tests.servers import adapter_on

NONSTREAM = "perplexity/agent_responses_nonstream_web_search"
STREAM = "perplexity/agent_responses_stream_web_search"
ASK = "Find the official TypeScript website and describe TypeScript in one sentence with a citation."
MESSAGES = [{"role": "user", "content": ASK}]
NONSTREAM_TEXT = (
    "The official TypeScript website is **typescriptlang.org**; TypeScript is a strongly typed programming"
    " language that builds on JavaScript with syntax for types.[7]"
)
STREAM_TEXT = (
    "The official TypeScript website is **typescriptlang.org**; TypeScript is a strongly typed programming"
    " language that builds on JavaScript and adds syntax for types.[7]"
)
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]


def _tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _check_sources(search_results: Any, citations: Any) -> None:
    assert len(search_results) == 10 and len(citations) == 10
    assert search_results[0]["title"] == "TypeScript - Wikipedia"
    assert search_results[0]["url"] == "https://en.wikipedia.org/wiki/TypeScript"
    assert search_results[0]["date"] == "2006-11-28" and search_results[0]["snippet"].startswith("|Developer|")
    assert citations == [r["url"] for r in search_results]
    assert citations[6] == "https://www.typescriptlang.org/"  # the answer's [7]


def _row(relay, tag: str) -> dict[str, Any]:
    rows = relay.rows(tag=tag)
    assert len(rows) == 1
    assert (rows[0]["outcome"], rows[0]["status"], rows[0]["provider"]) == ("ok", 200, "perplexity")
    assert rows[0]["usage_reported"] is True
    row: dict[str, Any] = rows[0]
    return row


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    keys = ("input_tokens", "cached_input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    return (*(row[k] for k in keys), row["reasoning_tokens"], row["cost_nanousd"])


def test_openai_dialect_whole_reply(relay, sdk, upstream) -> None:
    tag = _tag()
    raw = sdk.openai(relay.url).chat.completions.with_raw_response.create(
        model=NONSTREAM, messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
    )
    completion = raw.parse()
    assert raw.headers["x-relay-model"] == NONSTREAM
    assert completion.choices[0].message.content == NONSTREAM_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "openai/gpt-6-luna"
    extra = completion.model_extra or {}
    _check_sources(extra["search_results"], extra["citations"])
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3007, 36)
    assert completion.usage.prompt_tokens_details.cached_tokens == 1780
    row = _row(relay, tag)
    assert row["streamed"] is False and row["resolved_model"] == NONSTREAM
    assert _tokens(row) == (1783, 1780, 0, 1224, 36, 0, 1_190_000)
    sent = upstream.last("/perplexity/")
    assert sent.path == "/perplexity/v1/responses"
    assert sent.headers["authorization"] == "Bearer test-key-perplexity"
    assert sent.body == {
        "model": "agent_responses_nonstream_web_search",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": ASK}]}],
        "tools": [{"type": "web_search"}],
        "stream": False,
    }


def test_openai_dialect_stream(relay, sdk, upstream) -> None:
    tag = _tag()
    text, finish, roles, usage = "", None, [], None
    sources: list[tuple[Any, Any]] = []
    with sdk.openai(relay.url).chat.completions.with_streaming_response.create(
        model=STREAM,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Proxy-Tag": tag},
    ) as response:
        for chunk in response.parse():
            extra = chunk.model_extra or {}
            if "citations" in extra:
                sources.append((extra["search_results"], extra["citations"]))
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                roles += [choice.delta.role] if choice.delta.role else []
                finish = choice.finish_reason or finish
    assert (text, finish, roles) == (STREAM_TEXT, "stop", ["assistant"])
    # Once when the search results arrive (before any text), again on the last chunk.
    assert len(sources) == 2
    for results, citations in sources:
        _check_sources(results, citations)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (3007, 37)
    assert usage.prompt_tokens_details.cached_tokens == 3004
    row = _row(relay, tag)
    assert row["streamed"] is True
    assert _tokens(row) == (3007, 3004, 0, 0, 37, 0, 1_050_000)
    assert upstream.last("/perplexity/").body["stream"] is True


def test_sources_arrive_before_the_answer(relay) -> None:
    body = {"model": STREAM, "messages": MESSAGES, "stream": True}
    text = httpx.post(relay.url + "/v1/chat/completions", json=body).text
    chunks = [json.loads(part[6:]) for part in text.split("\n\n") if part.startswith("data: {")]
    first_source = next(i for i, c in enumerate(chunks) if "citations" in c)
    first_text = next(i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["delta"].get("content"))
    assert first_source < first_text
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[0]["id"].startswith("resp_5619693e")
    assert text.endswith("data: [DONE]\n\n") and "usage" not in text  # the client did not ask for usage


@pytest.mark.parametrize(("model", "stream", "output", "row"), [
    (NONSTREAM, False, 36, (1783, 1780, 0, 1224, 36, 0, 1_190_000)),
    (STREAM, True, 37, (3007, 3004, 0, 0, 37, 0, 1_050_000)),
])  # fmt: skip
def test_ollama_dialect(relay, sdk, model: str, stream: bool, output: int, row: tuple[int, ...]) -> None:
    tag = _tag()
    client = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag})
    if stream:
        parts = list(client.chat(model=model, messages=MESSAGES, stream=True))
        answer, final = "".join(p.message.content or "" for p in parts), parts[-1]
    else:
        final = client.chat(model=model, messages=MESSAGES, stream=False)
        answer = final.message.content or ""
    assert answer.startswith(STREAM_TEXT if stream else NONSTREAM_TEXT)  # the dialect may append sources
    assert (final.done, final.done_reason) == (True, "stop")
    assert (final.prompt_eval_count, final.eval_count) == (3007, output)
    got = _row(relay, tag)
    assert (got["dialect"], got["endpoint"], got["streamed"]) == ("ollama", "/api/chat", stream)
    assert _tokens(got) == row


@pytest.mark.parametrize(("model", "preset"), [
    ("sonar", "fast"),
    ("sonar-pro", "low"),
    ("sonar-reasoning-pro", "low"),
    ("sonar-deep-research", "medium"),
    ("high", "high"),
])  # fmt: skip
def test_sonar_names_become_presets(relay, sdk, upstream, model: str, preset: str) -> None:
    client = sdk.openai(relay.url)
    with pytest.raises(openai.NotFoundError):  # the emulator has no recording for a preset
        client.chat.completions.create(
            model=f"perplexity/{model}",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
            max_tokens=100,
            temperature=0.2,
        )
    assert upstream.last("/perplexity/").body == {
        "preset": preset,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}],
        "instructions": "Be brief.",
        "temperature": 0.2,
        "max_output_tokens": 100,
        "stream": False,
    }


def test_sonar_search_options_ride_on_the_web_search_tool(relay, sdk, upstream) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.openai(relay.url).chat.completions.create(
            model="perplexity/sonar-pro",
            messages=[{"role": "user", "content": "news?"}],
            stream=True,
            extra_body={
                "search_recency_filter": "week",
                "search_domain_filter": ["nasa.gov", "-reddit.com"],
                "web_search_options": {"search_context_size": "high"},
            },
        )
    sent = upstream.last("/perplexity/").body
    assert (sent["preset"], sent["stream"]) == ("low", True)
    assert sent["tools"] == [
        {
            "type": "web_search",
            "filters": {"search_domain_filter": ["nasa.gov", "-reddit.com"], "search_recency_filter": "week"},
            "search_context_size": "high",
        }
    ]
    assert "stream_options" not in sent  # the Agent API reports usage by default


def test_explicit_model_with_tools_and_a_tool_turn(relay, sdk, upstream) -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "weather here?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]  # fmt: skip
    completion = sdk.openai(relay.url).chat.completions.create(
        model=NONSTREAM,
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        reasoning_effort="high",
        max_completion_tokens=1024,
        extra_body={"max_steps": 3},
    )
    assert completion.choices[0].message.content == NONSTREAM_TEXT  # the recording, whatever was asked
    assert upstream.last("/perplexity/").body == {
        "model": "agent_responses_nonstream_web_search",
        "instructions": "Use tools.",
        "input": [
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "weather here?"},
                {"type": "input_image", "image_url": "https://example.com/sky.png"},
            ]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        "max_steps": 3,
        "max_output_tokens": 1024,
        "reasoning": {"effort": "high"},
        "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
            {"type": "web_search"},
        ],
        "tool_choice": {"name": "get_weather"},
        "stream": False,
    }  # fmt: skip


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"stop": ["\n\n"]}, "stop"),
    ({"seed": 7}, "seed"),
    ({"return_related_questions": True}, "return_related_questions"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"web_search_options": {"search_type": "pro"}}, "web_search_options"),
])  # fmt: skip
def test_parameters_the_agent_api_lacks_are_refused(relay, sdk, upstream, extra: dict[str, Any], param: str) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.openai(relay.url).chat.completions.create(model=NONSTREAM, messages=MESSAGES, extra_body=extra)
    assert caught.value.param == param and param in caught.value.message
    assert len(upstream.requests) == before  # nothing reached Perplexity


def test_neutral_values_of_missing_parameters_are_accepted(relay, sdk) -> None:
    completion = sdk.openai(relay.url).chat.completions.create(
        model=NONSTREAM, messages=MESSAGES, n=1, presence_penalty=0, frequency_penalty=0, stop=None
    )
    assert completion.choices[0].message.content == NONSTREAM_TEXT


@pytest.mark.parametrize("dialect", ["openai", "ollama"])
def test_embeddings_are_a_client_error(relay, sdk, upstream, dialect: str) -> None:
    """The Agent API has no embeddings: the caller is told so with a 400 in its own dialect
    (the OpenAPI fuzzer found a 501, a server error, here)."""
    before = len(upstream.requests)
    if dialect == "openai":
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.openai(relay.url).embeddings.create(model=NONSTREAM, input="hi")
        assert "chat only" in caught.value.message
    else:
        reply = httpx.post(relay.url + "/api/embed", json={"model": NONSTREAM, "input": "hi"})
        assert reply.status_code == 400 and "chat only" in reply.json()["error"]
    assert len(upstream.requests) == before


# The adapter alone, against hand-made Agent API answers for what the recordings do not show.

PROVIDER = Provider("perplexity", "perplexity", "https://pplx.test", "key")


def _call(model: str = "openai/gpt-6-luna", stream: bool = False, **body: Any) -> Call:
    return Call(model=model, kind="chat", body={"messages": MESSAGES, **body}, stream=stream, request_id="r1")


async def _send(call: Call, reply: httpx.Response) -> list[Any]:
    async with adapter_on(PerplexityAdapter, PROVIDER, lambda request: reply) as perplexity:
        result = await perplexity.send(call)
        if result.stream is None:
            return [result.body, result.usage]
        return [item async for item in result.stream]


def _sse(*events: dict[str, Any]) -> httpx.Response:
    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
    return httpx.Response(200, content=data, headers={"content-type": "text/event-stream"})


RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "openai/gpt-6-luna", "output": []}


async def test_incomplete_reply_is_cut_by_length_and_tool_calls_come_back() -> None:
    output = [
        {"type": "function_call", "call_id": "c1", "name": "search_web", "arguments": "{}"},  # Perplexity's own
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "message", "content": [{"type": "output_text", "text": "Par", "annotations": [
            {"type": "url_citation", "url": "https://example.com/a", "start_index": 0, "end_index": 3},
        ]}]},
    ]  # fmt: skip
    data = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    usage = {"input_tokens": 10, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}}
    body, got = await _send(_call(tools=TOOLS), httpx.Response(200, json={**data, "output": output, "usage": usage}))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning_content"] == "thinking" and choice["message"]["content"] == "Par"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_weather"]
    assert body["citations"] == ["https://example.com/a"]
    assert got == Usage(input=10, output=5, reasoning=2, reported=True)


async def test_failed_responses_and_error_events_raise() -> None:
    failed = {**RESPONSE, "status": "failed", "error": {"code": 500, "message": "model error"}}
    with pytest.raises(UpstreamStatusError, match="model error") as caught:
        await _send(_call(), httpx.Response(200, json=failed))
    assert caught.value.status == 500
    created = {"type": "response.created", "response": {**RESPONSE, "status": "in_progress"}}
    delta = {"type": "response.output_text.delta", "delta": "Hi"}
    error = {"type": "error", "code": 429, "message": "slow down"}
    with pytest.raises(UpstreamStatusError, match="slow down") as caught:
        await _send(_call(stream=True), _sse(created, delta, error))
    assert caught.value.status == 429
    with pytest.raises(UpstreamProtocolError, match="ended before"):
        await _send(_call(stream=True), _sse(created, delta))


async def test_streamed_tool_call_and_reasoning() -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "c2", "name": "get_weather", "arguments": "{}"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**RESPONSE, "status": "in_progress"}},
        {"type": "response.reasoning_summary_text.delta", "delta": "hmm"},
        {"type": "response.output_item.added", "item": {**item, "arguments": "", "status": "in_progress"}},
        {"type": "response.output_item.done", "item": {**item, "status": "completed"}},
        {"type": "response.completed", "response": {**RESPONSE, "status": "completed"}},
    ]
    chunks = await _send(_call(stream=True, tools=TOOLS), _sse(*events))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {"reasoning_content": "hmm"}
    assert deltas[2]["tool_calls"] == [
        {"index": 0, "id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_disable_search_and_effort() -> None:
    assert "tools" not in agent_request(_call(disable_search=True))
    assert agent_request(_call(reasoning_effort="none"))["reasoning"] == {"effort": "minimal"}
    with pytest.raises(BadRequest, match="always searches"):
        agent_request(_call(model="sonar", disable_search=True))
    with pytest.raises(BadRequest, match="not both"):
        agent_request(_call(tools=[{"type": "web_search"}], search_recency_filter="day"))
