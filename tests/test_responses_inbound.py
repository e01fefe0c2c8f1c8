"""OpenAI's Responses API inbound, driven by the real ``openai`` SDK (``client.responses``).

Towards OpenAI the relay passes the client's body on and OpenAI's bytes back
(tests/fixtures/openai-responses); towards any other provider it translates both ways, here
against the recorded Chat Completions, Anthropic, Gemini and Ollama replies. Usage rows carry
the provider's figures and the ``responses`` dialect."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.cases import CHAT_CASES, Case
from tests.conftest import closing
from tests.recordings import expected_body, expected_stream, openai_dialect_says

FIXTURES = Path(__file__).parent / "fixtures" / "openai-responses"
NATIVE = [
    "responses_nonstream_shell_local_multiturn",
    "responses_nonstream_web_search_tool",
    "responses_nonstream_client_tool_search",
    "responses_stream_shell_local_multiturn",
    "responses_stream_web_search_tool",
    "responses_stream_client_tool_search",
]


def _client(relay: Any, tag: str) -> openai.OpenAI:
    return closing(
        openai.OpenAI(base_url=relay.url + "/v1", api_key="k", default_headers={"X-Proxy-Tag": tag}, max_retries=0)
    )


def _recorded_response(name: str) -> dict[str, Any]:
    if name.startswith("responses_nonstream"):
        return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]
    for block in (FIXTURES / f"{name}.sse").read_text().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        event = json.loads("\n".join(data)) if data else {}
        if event.get("type") in ("response.completed", "response.incomplete"):
            return event["response"]  # type: ignore[no-any-return]
    raise AssertionError(f"{name} has no final response")


@pytest.mark.parametrize("name", NATIVE)
def test_native_pass_through_to_openai(relay, upstream, name: str) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    client = _client(relay, tag)
    request = {"model": f"openai/{name}", "input": "hello", "store": False, "include": ["reasoning.encrypted_content"]}
    if "_stream_" in name:
        # The events as they come, not the SDK's accumulator: the recorded tool_search stream
        # itself changes an item's call_id between added and done, which openai 3.63 refuses.
        events = list(client.responses.create(**request, stream=True))
        assert [e.sequence_number for e in events] == list(range(len(events)))
        response = next(e.response for e in events if e.type == "response.completed")
    else:
        response = client.responses.create(**request)
    recorded = _recorded_response(name)
    assert response.model_dump(exclude_none=True)["output"] == json.loads(json.dumps(recorded["output"])) or [
        o.type for o in response.output
    ] == [o["type"] for o in recorded["output"]]
    assert response.output_text == "".join(
        c["text"]
        for o in recorded["output"]
        if o["type"] == "message"
        for c in o["content"]
        if c["type"] == "output_text"
    )
    sent = upstream.last("/openai/v1/responses")
    assert sent.body["model"] == name and sent.body["include"] == ["reasoning.encrypted_content"]
    rows = relay.rows(tag=tag)
    assert len(rows) == 1 and rows[0]["dialect"] == "responses" and rows[0]["endpoint"] == "/v1/responses"
    usage = recorded["usage"]
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    assert rows[0]["cached_input_tokens"] == usage["input_tokens_details"]["cached_tokens"]


def _expected(case: Case):
    return expected_stream(case.provider, case.name) if case.stream else expected_body(case.provider, case.name)


# OpenAI's own models take Responses requests natively; every other provider's are translated.
TRANSLATED = [case for case in CHAT_CASES if case.provider != "openai"]


@pytest.mark.parametrize("case", TRANSLATED, ids=lambda c: c.id)
def test_translated_from_chat_completions(relay, case: Case) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    client = _client(relay, tag)
    model = f"{case.provider}/{case.name}"
    if case.stream:
        with client.responses.stream(model=model, input="hello") as stream:
            deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            response = stream.get_final_response()
        assert deltas == response.output_text
    else:
        response = client.responses.create(model=model, input="hello")
    want = _expected(case)
    assert response.output_text == want.text
    calls = [(o.name, o.arguments) for o in response.output if o.type == "function_call"]
    assert calls == want.tool_calls
    summary = "".join(s.text for o in response.output if o.type == "reasoning" for s in o.summary)
    assert summary == want.reasoning
    assert response.status == ("incomplete" if want.finish == "length" else "completed")
    rows = relay.rows(tag=tag)
    assert len(rows) == 1 and rows[0]["dialect"] == "responses"
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (case.input, case.output)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (case.input, case.output)


class Weather(BaseModel):
    city: str


def test_function_tools_round_trip_and_structured_output(relay, upstream) -> None:
    client = _client(relay, "t-tools")
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}]
    first = client.responses.create(model="mistral/chat_nonstream_tool_call", input="weather?", tools=tools)
    call = next(o for o in first.output if o.type == "function_call")
    history = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    client.responses.create(
        model="groq/chat_nonstream_basic",
        instructions="be brief",
        input=history,
        tools=tools,
        tool_choice={"type": "function", "name": "get_weather"},
        reasoning={"effort": "low"},
        max_output_tokens=99,
    )
    sent = upstream.last("/groq/v1/chat/completions").body
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["messages"][2]["tool_calls"][0]["id"] == call.call_id
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["reasoning_effort"] == "low" and sent["max_tokens"] == 99
    schema = {"type": "json_schema", "name": "weather", "schema": Weather.model_json_schema(), "strict": True}
    client.responses.create(model="groq/chat_nonstream_basic", input="x", text={"format": schema})
    sent = upstream.last("/groq/v1/chat/completions").body
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": Weather.model_json_schema(), "strict": True},
    }


def test_built_in_tools_and_stored_state_are_refused_by_name_elsewhere(relay) -> None:
    client = _client(relay, "t-refused")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="groq/chat_nonstream_basic", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in str(caught.value)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="groq/chat_nonstream_basic", input="x", previous_response_id="resp_1")
    assert "does not store conversations" in str(caught.value)


OTHER_UPSTREAMS = [  # (model, whether its recording is a stream)
    ("anthropic/messages_nonstream_parallel_tool_use", False),
    ("anthropic/messages_stream_thinking", True),
    ("anthropic/messages_stream_tool_use", True),
    ("gemini/generateContent_basic_thoughts", False),
    ("gemini/generateContent_function_call", True),
    ("gemini/streamGenerateContent_sse_thinking", True),
    ("lab/api_chat_stream_truncated", True),
    ("lab/api_chat_nonstream_tool_calls", False),
]


@pytest.mark.parametrize(("model", "stream"), OTHER_UPSTREAMS)
def test_anthropic_gemini_and_ollama_say_the_same_in_both_dialects(relay, sdk, model: str, stream: bool) -> None:
    """The Responses dialect tells what the OpenAI dialect tells of the same recording: text,
    reasoning (as a summary), function calls, and the same usage row."""
    tags = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    said = openai_dialect_says(sdk.openai(relay.url), model, stream=stream, tag=tags[0])
    text, reasoning, tool_calls = said.text, said.reasoning, said.tool_calls
    assert text or tool_calls  # the recording says something
    if stream:
        with _client(relay, tags[1]).responses.stream(model=model, input="hello") as events:
            response = events.get_final_response()
    else:
        response = _client(relay, tags[1]).responses.create(model=model, input="hello")
    assert response.output_text == text
    assert "".join(s.text for o in response.output if o.type == "reasoning" for s in o.summary) == reasoning
    assert [(o.name, o.arguments) for o in response.output if o.type == "function_call"] == tool_calls
    first, second = relay.rows(tag=tags[0])[0], relay.rows(tag=tags[1])[0]
    counts = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cost_nanousd")
    assert [first[c] for c in counts] == [second[c] for c in counts]
    assert (first["dialect"], second["dialect"]) == ("openai", "responses")


def test_openais_own_errors_reach_the_client(relay) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    client = _client(relay, tag)
    with pytest.raises(openai.APIError) as caught:
        for _ in client.responses.create(model="openai/responses_stream_error", input="x", stream=True):
            pass
    assert "exceeded your current quota" in str(caught.value)
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="openai/responses_nonstream_error", input="x")
    assert "exceeded your current quota" in limited.value.message
    rows = relay.rows(tag=tag)
    assert [(r["outcome"], r["dialect"]) for r in rows] == [("upstream_error", "responses")] * 2


@pytest.mark.parametrize("name", ["agent_responses_nonstream_web_search", "agent_responses_stream_web_search"])
def test_perplexitys_agent_api_takes_responses_requests_as_written(relay, upstream, sdk, name: str) -> None:
    """Perplexity's Agent API is a Responses API: the client's body goes on as written, and the
    row's usage and cost are those the OpenAI dialect's row records for the same reply."""
    tags = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    client = _client(relay, tags[0])
    request = {"model": f"perplexity/{name}", "input": "news?", "tools": [{"type": "web_search"}]}
    if "_stream_" in name:
        events = list(client.responses.create(**request, stream=True))
        assert events[-1].type == "response.completed"
    else:
        assert client.responses.create(**request).output
    assert upstream.last("/perplexity/v1/responses").body["tools"] == [{"type": "web_search"}]
    chat = sdk.openai(relay.url).chat.completions.create(
        model=f"perplexity/{name}",
        messages=[{"role": "user", "content": "news?"}],
        stream="_stream_" in name,
        extra_headers={"X-Proxy-Tag": tags[1]},
    )
    if "_stream_" in name:
        list(chat)  # type: ignore[arg-type]
    native, translated = relay.rows(tag=tags[0])[0], relay.rows(tag=tags[1])[0]
    columns = ("input_tokens", "output_tokens", "reasoning_tokens", "cost_nanousd", "provider_cost_nanousd")
    assert [native[c] for c in columns] == [translated[c] for c in columns]
    assert native["dialect"] == "responses" and native["provider_cost_nanousd"]


def test_web_searches_in_openais_output_are_counted(relay) -> None:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    _client(relay, tag).responses.create(model="openai/responses_nonstream_web_search_tool", input="news?")
    recorded = _recorded_response("responses_nonstream_web_search_tool")
    searches = sum(1 for item in recorded["output"] if item["type"] == "web_search_call")
    assert searches > 0 and relay.rows(tag=tag)[0]["web_search_requests"] == searches


def test_stored_responses_are_openais_and_pass_through(relay, upstream) -> None:
    """No recording of these endpoints exists: what is checked is that each call reaches OpenAI
    (the emulated one) as the client made it, with the relay's key, and that OpenAI's answer,
    here a 404, comes back as OpenAI gave it."""
    client = _client(relay, "t-stored")
    calls = [
        (lambda: client.responses.retrieve("resp_abc"), "GET", "/openai/v1/responses/resp_abc"),
        (lambda: client.responses.delete("resp_abc"), "DELETE", "/openai/v1/responses/resp_abc"),
        (lambda: client.responses.cancel("resp_abc"), "POST", "/openai/v1/responses/resp_abc/cancel"),
        (
            lambda: client.responses.input_items.list("resp_abc", limit=5),
            "GET",
            "/openai/v1/responses/resp_abc/input_items",
        ),
    ]
    for call, method, path in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert "no recording" in caught.value.message
        sent = upstream.requests[-1]
        assert (sent.method, sent.path) == (method, path)
        assert sent.headers["authorization"] == "Bearer test-key-openai"


def test_stored_responses_without_openai_are_a_clear_404(make_relay) -> None:
    relay = make_relay(provider_keys={})
    with pytest.raises(openai.NotFoundError) as caught:
        _client(relay, "t").responses.retrieve("resp_abc")
    assert "keeps none" in caught.value.message


STREAMED = [case for case in TRANSLATED if case.stream]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("case", STREAMED, ids=lambda c: c.id)
def test_a_translated_stream_adds_up_to_the_whole_response(relay, case: Case) -> None:
    """The SDK's own accumulator takes the translated events, and the response it ends with is
    the one the relay renders whole from the same recording's reply (its chunks added up)."""
    from app.dialects.responses import whole
    from app.formats.responses_inbound import internal_request
    from app.internal import Usage
    from app.pipeline.core import Exchange
    from tests.recordings import payloads

    model = f"{case.provider}/{case.name}"
    with _client(relay, "t-acc").responses.stream(model=model, input="hello") as stream:
        final = stream.get_final_response()
    message: dict[str, Any] = {"role": "assistant", "content": "", "reasoning_content": ""}
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in payloads(case.provider, case.name):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            message["content"] += delta.get("content") or ""
            message["reasoning_content"] += delta.get("reasoning_content") or delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), {"id": "", "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                slot["function"]["name"] += (call.get("function") or {}).get("name") or ""
                slot["function"]["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    ex = Exchange(
        request_id=final.id.removeprefix("resp_"),
        dialect="responses",
        endpoint="/v1/responses",
        kind="chat",
        body={"model": model},
        stream=False,
        headers={},
        client="",
        requested_model=model,
        native={"model": model, "input": "hello"},
    )
    reasoning = final.usage.output_tokens_details.reasoning_tokens if final.usage else 0
    ex.usage = Usage(input=case.input, output=case.output, reasoning=reasoning, cached_input=case.cached, reported=True)
    rendered = whole(ex, {"choices": [{"message": message, "finish_reason": finish}]}, internal_request(ex.native))
    assert json.loads(final.model_dump_json(exclude_none=True))["output"] == _without_nulls(rendered["output"])
    assert final.status == rendered["status"] and final.usage.output_tokens == rendered["usage"]["output_tokens"]


class CityLocation(BaseModel):
    city: str
    country: str


def test_structured_output_parses_end_to_end(make_relay, emulator) -> None:
    """responses.parse with a pydantic model, against the recorded JSON-schema reply of Ollama's
    OpenAI-compatible endpoint (reached as a Chat Completions provider, so translated)."""
    relay = make_relay(provider_base_urls={"xai": f"{emulator[1]}/ollama/v1"})
    parsed = _client(relay, "t-parse").responses.parse(
        model="xai/v1_chat_completions_json_schema", input="Where is the Eiffel tower?", text_format=CityLocation
    )
    assert parsed.output_parsed == CityLocation(city="Paris", country="France")
    sent = emulator[0].last("/ollama/v1/chat/completions").body
    assert sent["response_format"]["json_schema"]["name"] == "CityLocation"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "country"]


def test_custom_and_namespaced_tools_travel_as_functions(relay, upstream) -> None:
    """Codex's freeform tools (apply_patch) and namespaced ones: one-string functions and
    ``<namespace>__<name>`` functions towards a chat API, and back as custom_tool_call items."""
    client = _client(relay, "t-custom")
    tools = [
        {"type": "custom", "name": "weather", "description": "freeform"},
        {
            "type": "namespace",
            "name": "agents",
            "description": "sub-agents",
            "tools": [
                {"type": "function", "name": "spawn", "parameters": {"type": "object"}},
            ],
        },
    ]
    history = [
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "weather", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        {"type": "function_call", "call_id": "c2", "namespace": "agents", "name": "spawn", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": "ok"},
    ]
    response = client.responses.create(model="mistral/chat_nonstream_tool_call", input=history, tools=tools)
    call = next(o for o in response.output if o.type == "custom_tool_call")
    recorded = json.loads((Path(__file__).parent / "fixtures/mistral/chat_nonstream_tool_call.json").read_text())
    assert (call.name, call.input) == (
        "weather",
        recorded["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
    )
    sent = upstream.last("/mistral/v1/chat/completions").body
    functions = {t["function"]["name"]: t["function"]["parameters"] for t in sent["tools"]}
    assert functions["weather"]["properties"] == {"input": {"type": "string"}}
    assert "agents__spawn" in functions
    calls = [c for m in sent["messages"] if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("c1", "weather", '{"input":"*** Begin Patch"}'),
        ("c2", "agents__spawn", "{}"),
    ]


def test_input_tokens_from_openai_and_estimated_elsewhere(relay, upstream) -> None:
    """``client.responses.input_tokens.count``: OpenAI's own count, else an estimate that errs high."""
    client = closing(openai.OpenAI(base_url=relay.url + "/v1", api_key="k", max_retries=0))
    counted = client.responses.input_tokens.with_raw_response.count(model="openai/gpt-5", input="Tell me a joke.")
    assert counted.parse().input_tokens == 2000 + len(json.dumps("Tell me a joke."))  # the emulated OpenAI's
    assert counted.headers["x-relay-token-count"] == "provider"
    sent = upstream.last("/responses/input_tokens")
    assert sent.body == {"model": "gpt-5", "input": "Tell me a joke."}
    long_text = "The quick brown fox jumps over the lazy dog. " * 200
    tool = {"type": "function", "name": "t", "description": "d" * 300, "parameters": {"type": "object"}}
    call = {"type": "function_call", "call_id": "c1", "name": "t", "arguments": json.dumps({"q": "x" * 600})}
    items = [
        {"role": "user", "content": long_text},
        call,
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    raw = client.responses.input_tokens.with_raw_response.count(model="groq/any", input=items, tools=[tool])
    assert raw.headers["x-relay-token-count"] == "estimate" and raw.parse().object == "response.input_tokens"
    # Never low: ~2,000 tokens of text under any tokenizer, plus the tool and its call.
    assert raw.parse().input_tokens >= len(long_text) // 4 + 100 + 600 // 4
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.input_tokens.count(model="groq/any", input=[])
    assert bad.value.body["param"] == "input"
