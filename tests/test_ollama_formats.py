"""Translations between OpenAI's shapes and Ollama's, and the Ollama adapter's reading of
recorded /api/chat replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import BadRequest
from app.formats.images import base64_of, data_url, sniff_mime
from app.formats.ollama_messages import messages_from_ollama, messages_to_ollama, tool_calls_to_ollama
from app.formats.ollama_params import (
    effort_from_think,
    finish_reason,
    openai_from_options,
    options_from_openai,
    response_format_from_format,
    think_from_effort,
)
from app.formats.ollama_reply import ReplyTranslator
from app.formats.openai_chat import json_format
from app.internal import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD"
GIF = "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
WEBP = "UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA="


@pytest.mark.parametrize(
    ("b64", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp"), ("AAAA", "image/png")],
)
def test_image_mime_sniffing_and_data_urls(b64: str, mime: str):
    assert sniff_mime(b64) == mime
    assert data_url(b64) == f"data:{mime};base64,{b64}"
    assert base64_of(data_url(b64)) == b64


def test_images_that_cannot_reach_ollama():
    with pytest.raises(BadRequest, match="inline images only"):
        base64_of("https://example.com/cat.png")
    with pytest.raises(BadRequest, match="base64-encoded"):
        base64_of("data:image/png,rawbytes")
    with pytest.raises(BadRequest, match="not valid base64"):
        sniff_mime("A")


OLLAMA_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is this, and the weather?", "images": [PNG, JPEG]},
    {
        "role": "assistant",
        "content": "",
        "thinking": "Two tools.",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_time", "arguments": {"tz": "CET"}}},
        ],
    },
    # results name only the tool, and come back in the other order
    {"role": "tool", "tool_name": "get_time", "content": "12:00"},
    {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
]


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A tool call as a request message carries it: no stream index."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_messages_from_ollama():
    out = messages_from_ollama(OLLAMA_CONVERSATION)
    assert out[0] == {"role": "system", "content": "Be brief."}
    assert out[1]["content"] == [
        {"type": "text", "text": "What is this, and the weather?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
    ]
    assert out[2] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Two tools.",
        "tool_calls": [
            call("call_2_0", "get_weather", '{"city":"Paris"}'),
            call("call_2_1", "get_time", '{"tz":"CET"}'),
        ],
    }
    assert out[3] == {"role": "tool", "content": "12:00", "tool_call_id": "call_2_1"}
    assert out[4] == {"role": "tool", "content": "sunny", "tool_call_id": "call_2_0"}


def test_round_trip_back_to_ollama():
    back = messages_to_ollama(messages_from_ollama(OLLAMA_CONVERSATION))
    assert back[1] == {"role": "user", "content": "What is this, and the weather?", "images": [PNG, JPEG]}
    assert back[2] == {
        "role": "assistant",
        "content": "",
        "thinking": "Two tools.",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}, "id": "call_2_0"},
            {"function": {"name": "get_time", "arguments": {"tz": "CET"}}, "id": "call_2_1"},
        ],
    }
    assert back[3] == {"role": "tool", "content": "12:00", "tool_call_id": "call_2_1", "tool_name": "get_time"}
    assert back[4] == {"role": "tool", "content": "sunny", "tool_call_id": "call_2_0", "tool_name": "get_weather"}


def test_tool_results_pairing_edge_cases():
    calls = [{"function": {"name": "w", "arguments": {"c": n}}} for n in (1, 2)]
    named = messages_from_ollama(
        [{"role": "assistant", "tool_calls": calls}, *({"role": "tool", "tool_name": "w", "content": c} for c in "ab")]
    )
    assert [m.get("tool_call_id") for m in named] == [None, "call_0_0", "call_0_1"]
    # one result answers by id, the next only by name: it must get the other call
    with_ids = [{"id": i, **c} for i, c in zip(("x", "y"), calls, strict=True)]
    mixed = messages_from_ollama(
        [
            {"role": "assistant", "tool_calls": with_ids},
            {"role": "tool", "tool_call_id": "x", "tool_name": "w", "content": "1"},
            {"role": "tool", "tool_name": "w", "content": "2"},
            {"role": "tool", "tool_name": "nope", "content": "3"},
        ]
    )
    assert [m.get("tool_call_id") for m in mixed] == [None, "x", "y", "call_unmatched"]


def test_messages_to_ollama_from_openai_shapes():
    out = messages_to_ollama(
        [
            {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": f"data:image/gif;base64,{GIF}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c2", "content": "done"},
        ]
    )
    assert out == [
        {"role": "system", "content": "a\nb"},
        {"role": "user", "content": "", "images": [GIF]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "f", "arguments": {"x": 1}}, "id": "c1"},
                {"function": {"name": "g", "arguments": {}}, "id": "c2"},
            ],
        },
        {"role": "tool", "content": "done", "tool_call_id": "c2", "tool_name": "g"},
    ]


def test_messages_ollama_cannot_take():
    with pytest.raises(BadRequest, match="not valid JSON"):
        messages_to_ollama([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}])
    with pytest.raises(BadRequest, match="'input_audio' cannot be sent"):
        messages_to_ollama([{"role": "user", "content": [{"type": "input_audio"}]}])
    with pytest.raises(BadRequest, match="needs a 'role'"):
        messages_from_ollama([{"content": "hi"}])
    with pytest.raises(BadRequest, match="must be a list"):
        messages_from_ollama({"role": "user"})


def test_tool_calls_to_ollama_keeps_truncated_arguments():
    out = tool_calls_to_ollama(
        [{"id": "c", "function": {"name": "f", "arguments": '{"a": 1'}}, {"function": {"name": "g"}}]
    )
    assert out == [
        {"function": {"name": "f", "arguments": {"_raw": '{"a": 1'}}, "id": "c"},
        {"function": {"name": "g", "arguments": {}}},
    ]


def test_options_both_ways():
    sampling = {"temperature": 0.2, "top_p": 0.9, "seed": 7, "presence_penalty": 0.0}
    options = options_from_openai({**sampling, "max_tokens": 64, "stop": "END", "n": 1})
    assert options == {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.0,
        "num_predict": 64,
        "stop": ["END"],
    }
    assert openai_from_options(options) == {**sampling, "max_tokens": 64, "stop": ["END"]}
    assert options_from_openai({"max_completion_tokens": 10, "max_tokens": 99}) == {"num_predict": 10}
    assert options_from_openai({"max_completion_tokens": None, "max_tokens": 99}) == {"num_predict": 99}
    assert openai_from_options({"num_predict": -1, "top_k": 40, "num_ctx": 4096}) == {}
    assert openai_from_options(None) == {}


def test_options_ollama_cannot_honour():
    with pytest.raises(BadRequest, match="'n' must be 1") as caught:
        options_from_openai({"n": 2})
    assert caught.value.param == "n"
    with pytest.raises(BadRequest, match="'options' must be an object"):
        openai_from_options([1])


def test_format_and_response_format():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert json_format({"type": "json_object"}) == "json"
    assert json_format({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema
    assert json_format({"type": "json_schema", "json_schema": {"name": "x"}}) == "json"
    assert json_format({"type": "text"}) is None
    assert json_format(None) is None
    assert response_format_from_format("json") == {"type": "json_object"}
    assert response_format_from_format(schema) == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert response_format_from_format("") is None
    with pytest.raises(BadRequest):
        response_format_from_format("yaml")


THINK = {"none": False, "minimal": False, "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
EFFORT = {"low": "low", "medium": "medium", "high": "high", "max": "high", True: "medium", False: None, None: None}


def test_think_and_reasoning_effort():
    assert {e: think_from_effort(e) for e in THINK} == THINK
    assert (think_from_effort("max"), think_from_effort(None), think_from_effort("bogus")) == ("high", None, None)
    assert {t: effort_from_think(t) for t in EFFORT} == EFFORT
    for bad in ("extreme", 1):
        with pytest.raises(BadRequest):
            effort_from_think(bad)
    reasons = (finish_reason("length", False), finish_reason("stop", True), finish_reason(None, False))
    assert reasons == ("length", "tool_calls", "stop")


DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def translator(kind: str = "chat") -> ReplyTranslator:
    return ReplyTranslator(request_id="0123456789abcdef", chat=kind == "chat")


def test_translator_on_recorded_stream():
    translate = translator()
    items = [
        item
        for line in FIXTURES.joinpath("api_chat_stream_truncated.ndjson").read_text().splitlines()
        for item in translate.line(json.loads(line))
    ]
    chunks = [i for i in items if isinstance(i, dict)]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "This is test completion response"
    assert len(chunks) == 6 and {c["id"] for c in chunks} == {"chatcmpl-0123456789abcdef"}
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[0]["model"] == "phi3" and chunks[0]["object"] == "chat.completion.chunk"
    durations = dict(zip(DURATIONS, (58123571935, 55561676662, 34847000, 2381751000), strict=True))
    assert items[-1] == Usage(input=10, output=239, reported=True, durations=durations)
    assert sum(isinstance(i, Usage) for i in items) == 1


TOOL_CALLS = [
    ("MyPlugin_GetCurrentWeather", '{"location":"Boston, MA"}'),
    ("MyPlugin_FunctionWithException", '{"argument":"value"}'),
    ("MyPlugin_NonExistentFunction", '{"argument":"value"}'),
    ("MyPlugin_InvalidArguments", "{}"),  # the recording has no "arguments" at all
    ("MyPlugin_IntArguments", '{"age":"36"}'),
]


def test_translator_whole_reply_with_tool_calls():
    data = json.loads(FIXTURES.joinpath("api_chat_nonstream_tool_calls.json").read_text())
    reply = translator().whole(data)
    body = reply.body
    assert body is not None and body["object"] == "chat.completion" and body["model"] == "llama3.2"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    calls = choice["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == TOOL_CALLS
    assert [c["id"] for c in calls] == [f"call_89abcdef_{n}" for n in range(5)]
    assert all(c["type"] == "function" and "index" not in c for c in calls)
    assert body["usage"] == {"prompt_tokens": 152, "completion_tokens": 22, "total_tokens": 174}
    durations = dict(zip(DURATIONS, (456177688, 56756331, 108231000, 240925000), strict=True))
    assert reply.usage == Usage(input=152, output=22, reported=True, durations=durations)


def test_translator_streamed_tool_calls_and_null_arguments():
    translate = translator()
    data = json.loads(FIXTURES.joinpath("api_chat_nonstream_tool_calls.json").read_text())
    data["message"]["tool_calls"][3]["function"]["arguments"] = None
    first = translate.line(
        {**data, "done": False, "message": {**data["message"], "tool_calls": data["message"]["tool_calls"][:2]}}
    )
    rest = translate.line({**data, "message": {**data["message"], "tool_calls": data["message"]["tool_calls"][2:]}})
    deltas = [c["choices"][0]["delta"] for c in (*first, *rest) if isinstance(c, dict) and c["choices"][0]["delta"]]
    calls = [tc for d in deltas for tc in d["tool_calls"]]
    assert [c["index"] for c in calls] == [0, 1, 2, 3, 4]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == TOOL_CALLS
    assert isinstance(rest[-2], dict) and rest[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert isinstance(rest[-1], Usage) and (rest[-1].input, rest[-1].output) == (152, 22)


def test_translator_generate_lines():
    translate = translator("completion")
    first: list[Any] = translate.line({"model": "m", "response": "Hi", "thinking": "hmm", "done": False})
    last: list[Any] = translate.line(
        {"model": "m", "response": "", "done": True, "done_reason": "length", "eval_count": 2}
    )
    assert first[0]["object"] == "text_completion" and first[0]["id"] == "cmpl-0123456789abcdef"
    assert first[0]["choices"] == [{"index": 0, "text": "Hi", "finish_reason": None, "reasoning_content": "hmm"}]
    assert last[0]["choices"] == [{"index": 0, "text": "", "finish_reason": "length"}]
    assert last[1] == Usage(output=2, reported=True)
