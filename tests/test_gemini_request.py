"""The Gemini translation without a relay: the recorded requests rebuilt from equivalent
OpenAI requests field for field, the JSON Schema cut-down, parameters, thought signatures,
the JSON-array stream splitter, reply edge cases Gemini documents, and the model list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from app.adapters.base import Call
from app.adapters.gemini import SKIP_SIGNATURE, GeminiAdapter, call_key
from app.formats.gemini_params import gemini_schema, generation_config
from app.formats.gemini_reply import ReplyTranslator
from app.formats.gemini_request import build_request, embed_request, join_call_id, split_call_id
from app.formats.json_array import JSONArraySplitter
from app.providers import Provider
from tests.servers import adapter_on

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
PROVIDER = Provider("gemini", "gemini", "https://gemini.test", "test-key-gemini", "gemini")
FLASH = {"supports_reasoning": True}  # what the catalog says of gemini-2.5-flash


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.request.json").read_text())


def _system(text: str) -> dict:
    return {"role": "system", "content": text}


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_basic_thoughts_request() -> None:
    want = recorded("generateContent_basic_thoughts")
    got = build_request({"messages": [_system("You are a chatbot."), _user("Hello!")]}, {})
    assert got["contents"] == want["contents"]
    assert got["systemInstruction"]["parts"] == want["systemInstruction"]["parts"]
    # pydantic-ai also sent responseModalities ["TEXT"], Gemini's default for text models.
    assert "generationConfig" not in got


def test_cached_content_request_passes_the_native_field() -> None:
    want = recorded("generateContent_cached_content")
    body = {"messages": [_user("What is the capital of France?")], "cachedContent": want["cachedContent"]}
    got = build_request(body, {})
    assert got["contents"] == want["contents"]
    assert got["cachedContent"] == "cachedContents/7lf5him5ev4iemi1yjv2gwli5bhpz3yidzejwllo"


def test_function_call_request() -> None:
    want = recorded("generateContent_function_call")
    tool = {
        "type": "function",
        "function": {
            "name": "pelican_name_generator",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
            "strict": True,
        },
    }
    body = {
        "messages": [_user("Two names for a pet pelican")],
        "tools": [tool],
        "safetySettings": want["safetySettings"],
    }
    got = build_request(body, {}, FLASH)
    assert got["contents"] == want["contents"]
    assert got["safetySettings"] == want["safetySettings"]
    [declaration] = got["tools"][0]["functionDeclarations"]
    [recorded_declaration] = want["tools"][0]["functionDeclarations"]
    assert declaration["name"] == recorded_declaration["name"]
    assert declaration["parameters"] == recorded_declaration["parameters"] == {"properties": {}, "type": "object"}
    assert "description" not in declaration  # llm-gemini sent null: nothing to say
    assert got["generationConfig"] == want["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}


def test_sse_basic_request() -> None:
    want = recorded("streamGenerateContent_sse_basic")
    body = {
        "messages": [_system("You are a helpful chatbot."), _user("What is the capital of France?")],
        "temperature": 0.0,
    }
    got = build_request(body, {})
    assert got["contents"] == want["contents"]
    assert got["systemInstruction"]["parts"] == want["systemInstruction"]["parts"]
    assert got["generationConfig"] == want["generationConfig"] == {"temperature": 0.0}


def test_sse_thinking_request() -> None:
    want = recorded("streamGenerateContent_sse_thinking")
    tool = {
        "type": "function",
        "function": {"name": "dummy", "description": "", "parameters": {"type": "OBJECT", "properties": {}}},
    }
    body = {"messages": [_system("You are a helpful assistant."), _user("How do I cross the street?")], "tools": [tool]}
    got = build_request(body, {}, {"supports_reasoning": True})
    assert got["contents"] == want["contents"]
    assert got["systemInstruction"]["parts"] == want["systemInstruction"]["parts"]
    assert got["tools"] == want["tools"]
    assert got["generationConfig"] == want["generationConfig"]


def test_usage_mid_stream_request() -> None:
    want = recorded("streamGenerateContent_sse_usage_mid_stream")
    got = build_request({"messages": [_user("Count from 1 to 30, one number per line, digits only.")]}, {})
    assert got == {"contents": want["contents"]}


def test_embed_request_matches_the_recording() -> None:
    want = recorded("batchEmbedContents_two_texts_768")
    got = embed_request({"input": ["First text", "Second text"], "dimensions": 768}, "gemini-embedding-2")
    assert got == want
    assert embed_request({"input": "one"}, "m") == {
        "requests": [{"model": "models/m", "content": {"parts": [{"text": "one"}]}}]
    }


def test_generation_config_fields() -> None:
    body = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 10,
        "max_completion_tokens": 99,
        "stop": "END",
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "n": 2,
        "response_format": {"type": "json_object"},
    }
    assert generation_config(body, None) == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 99,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "candidateCount": 2,
        "responseMimeType": "application/json",
    }
    assert generation_config({"max_tokens": 10, "stop": ["a", "b"]}, None) == {
        "maxOutputTokens": 10,
        "stopSequences": ["a", "b"],
    }


@pytest.mark.parametrize(
    ("effort", "thinking"),
    [
        ("none", {"thinkingBudget": 0}),
        ("low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("high", {"thinkingBudget": 24576, "includeThoughts": True}),
    ],
)
def test_reasoning_effort_budgets(effort: str, thinking: dict) -> None:
    assert generation_config({"reasoning_effort": effort}, FLASH) == {"thinkingConfig": thinking}


def test_thinking_budget_passthrough_and_unknown_models() -> None:
    budget = {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert generation_config(budget, None) == {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}}
    assert generation_config({}, None) == {}  # a model not known to think is not asked to
    assert generation_config({}, {"supports_reasoning": False}) == {}


def test_json_schema_is_cut_down_to_gemini_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "strict": {"type": ["string", "null"], "description": "a property named like a keyword stays"},
            "kind": {"const": "pet"},
            "owner": {"$ref": "#/$defs/Person"},
            "tags": {"type": "array", "items": {"type": "string", "uniqueItems": True}},
            "either": {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "string"}]},
        },
        "required": ["kind"],
        "$defs": {
            "Person": {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
        },
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "strict": {"type": "string", "nullable": True, "description": "a property named like a keyword stays"},
            "kind": {"enum": ["pet"]},
            "owner": {"type": "object", "properties": {"name": {"type": "string"}}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
        "required": ["kind"],
    }
    recursive = {
        "type": "object",
        "properties": {"next": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"$ref": "#/$defs/Node"}},
    }
    assert gemini_schema(recursive)["properties"]["next"] == {"type": "object"}
    body = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}}
    config = generation_config(body, None)
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == gemini_schema(schema)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice(choice, config) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    request = build_request({"messages": [_user("hi")], "tools": [tool], "tool_choice": choice}, {})
    assert request["toolConfig"] == {"functionCallingConfig": config}


def test_conversation_with_tools_images_and_signatures() -> None:
    image = ("image/png", "iVBORw0KGgo=")
    messages = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "thinking about it",
            "tool_calls": [
                {
                    "id": join_call_id("call_1", "SIG=="),
                    "type": "function",
                    "function": {"name": "a", "arguments": '{"q": 1}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": join_call_id("call_1", "SIG=="), "content": "one"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "thanks"},
    ]
    request = build_request({"messages": messages}, {"https://x/a.png": image})
    assert request["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert request["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "Look"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}],
        },
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "a", "args": {"q": 1}}, "thoughtSignature": "SIG=="},
                {"functionCall": {"name": "b", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "a", "response": {"result": "one"}}},
                {"functionResponse": {"name": "b", "response": {"result": "two"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]
    assert split_call_id("call_1~ts~SIG==") == ("call_1", "SIG==")
    assert split_call_id("call_1") == ("call_1", None)


def _replayed(model_text: str = "hi") -> dict:
    return build_request(
        {
            "messages": [
                _user(model_text),
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "x", "content": "ok"},
            ]
        },
        {},
    )


def test_signature_memory_restores_only_the_same_conversation() -> None:
    adapter = GeminiAdapter(PROVIDER, httpx.AsyncClient())
    first = build_request({"messages": [_user("hi")]}, {})
    adapter.signatures.remember(call_key("gemini-2.5-flash", first, 1, "f", {}), "REMEMBERED")
    same = _replayed("hi")
    adapter._sign("gemini-2.5-flash", same)
    assert same["contents"][1]["parts"][0]["thoughtSignature"] == "REMEMBERED"
    other = _replayed("a different conversation")
    adapter._sign("gemini-2.5-flash", other)
    assert "thoughtSignature" not in other["contents"][1]["parts"][0]
    other_model = _replayed("hi")
    adapter._sign("gemini-2.5-pro", other_model)
    assert "thoughtSignature" not in other_model["contents"][1]["parts"][0]


def test_gemini_3_gets_the_documented_stand_in_signature() -> None:
    adapter = GeminiAdapter(PROVIDER, httpx.AsyncClient())
    request = _replayed("hi")
    adapter._sign("gemini-3-pro-preview", request)
    assert (
        request["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE == "skip_thought_signature_validator"
    )


def _array_recording() -> bytes:
    return (FIXTURES / "generateContent_function_call.json").read_bytes()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 61, 1000, 100000])
def test_json_array_splitter_any_split(size: int) -> None:
    data = _array_recording()
    splitter = JSONArraySplitter()
    items = []
    for start in range(0, len(data), size):
        items += splitter.feed(data[start : start + size])
    items += splitter.close()
    assert [json.loads(i) for i in items] == json.loads(data)


def test_json_array_splitter_strings_with_brackets_and_lone_objects() -> None:
    tricky = b'[{"text": "a } ] [ { \\" \\\\"}\r\n,\r\n{"b": [1, {"c": "}"}]}]'
    for size in range(1, 8):
        splitter = JSONArraySplitter()
        items = [i for s in range(0, len(tricky), size) for i in splitter.feed(tricky[s : s + size])]
        assert [json.loads(i) for i in items] == json.loads(tricky)
    lone = JSONArraySplitter()
    assert [json.loads(i) for i in lone.feed(b'{"a": 1}')] == [{"a": 1}]
    cut = JSONArraySplitter()
    assert cut.feed(b'[{"a": ') == [] and cut.close() == [b'{"a":']


def test_max_tokens_without_parts_and_filters() -> None:
    # Shapes from Google's GenerateContentResponse reference: a candidate cut by
    # MAX_TOKENS may carry a content with a role and no parts at all.
    translate = ReplyTranslator(request_id="req12345678", model="gemini-2.5-flash")
    cut = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}]}
    whole = translate.whole(cut).body
    assert whole is not None
    assert whole["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert whole["choices"][0]["finish_reason"] == "length"
    [chunk] = ReplyTranslator(request_id="r", model="m").chunk(cut)
    assert isinstance(chunk, dict) and chunk["choices"][0]["finish_reason"] == "length"
    for reason in ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"):
        body = ReplyTranslator(request_id="r", model="m").whole({"candidates": [{"finishReason": reason}]}).body
        assert body is not None and body["choices"][0]["finish_reason"] == "content_filter"
    blocked = ReplyTranslator(request_id="r", model="m").whole({"promptFeedback": {"blockReason": "SAFETY"}}).body
    assert blocked is not None and blocked["choices"][0]["finish_reason"] == "content_filter"
    other = ReplyTranslator(request_id="r", model="m").whole({"candidates": [{"finishReason": "OTHER"}]}).body
    assert other is not None and other["choices"][0]["finish_reason"] == "stop"


def test_grounding_becomes_citations_and_search_results() -> None:
    data = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Spain won."}]},
                "finishReason": "STOP",
                "groundingMetadata": {
                    "webSearchQueries": ["euro 2024 winner"],
                    "groundingChunks": [
                        {"web": {"uri": "https://example.org/a", "title": "example.org"}},
                        {"web": {"uri": "https://example.org/b", "title": "uefa.com"}},
                        {"web": {"uri": "https://example.org/a", "title": "example.org"}},
                    ],
                },
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "toolUsePromptTokenCount": 50},
    }
    reply = ReplyTranslator(request_id="r", model="m").whole(data)
    assert reply.body is not None
    assert reply.body["citations"] == ["https://example.org/a", "https://example.org/b"]
    assert reply.body["search_results"] == [
        {"title": "example.org", "url": "https://example.org/a"},
        {"title": "uefa.com", "url": "https://example.org/b"},
    ]
    assert reply.usage is not None and (reply.usage.input, reply.usage.tool_prompt, reply.usage.output) == (60, 50, 3)
    chunk = ReplyTranslator(request_id="r", model="m").chunk(data)[0]
    assert isinstance(chunk, dict) and chunk["citations"] == ["https://example.org/a", "https://example.org/b"]


def test_model_list_follows_pages() -> None:
    first = (FIXTURES / "models_list.json").read_bytes()
    token = json.loads(first)["nextPageToken"]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("pageToken") == token:
            # A second page, made up here: the recording holds the first page only.
            return httpx.Response(200, json={"models": [{"name": "models/second-page-model"}]})
        return httpx.Response(200, content=first, headers={"content-type": "application/json"})

    async def run() -> list[dict]:
        async with adapter_on(GeminiAdapter, PROVIDER, handler) as gemini:
            return await gemini.list_models()

    models = asyncio.run(run())
    ids = [m["id"] for m in models]
    assert ids[:3] == ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"]
    assert ids[-1] == "second-page-model"
    assert len(ids) == len(json.loads(first)["models"]) + 1
    assert not any(i.startswith("models/") for i in ids)
    assert [r.url.path for r in seen] == ["/v1beta/models", "/v1beta/models"]
    assert all(r.headers["x-goog-api-key"] == "test-key-gemini" for r in seen)


def test_model_list_stops_when_a_token_repeats() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json={"models": [{"name": "models/m"}], "nextPageToken": "same"})

    async def run() -> list[dict]:
        async with adapter_on(GeminiAdapter, PROVIDER, handler) as gemini:
            return await gemini.list_models()

    assert len(asyncio.run(run())) == 2 and calls == 2


def test_stream_url_and_headers() -> None:
    seen: list[httpx.Request] = []
    sse = (FIXTURES / "streamGenerateContent_sse_basic.sse").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    async def run() -> list:
        async with adapter_on(GeminiAdapter, PROVIDER, handler) as gemini:
            call = Call(
                model="gemini-2.0-flash", kind="chat", body={"messages": [_user("hi")]}, stream=True, request_id="r1"
            )
            reply = await gemini.send(call)
            assert reply.stream is not None
            return [item async for item in reply.stream]

    items = asyncio.run(run())
    assert seen[0].url.raw_path == b"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert seen[0].headers["x-goog-api-key"] == "test-key-gemini"
    assert "authorization" not in seen[0].headers
    assert len(items) == 6  # three chunks, each followed by the usage so far
