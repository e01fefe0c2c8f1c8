"""OpenAI chat requests as Anthropic Messages requests: each recorded request is what the
translation of the matching OpenAI request produces, field for field (called directly, and as
the emulator received it through the relay from both dialects); then every request rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import BadRequest
from app.formats.anthropic_request import build_request

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
USER = {"role": "user", "content": "hi"}


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.request.json").read_text())
    return data


def _text(message: dict[str, Any]) -> str:
    [block] = message["content"]
    return str(block["text"])


def openai_equivalent(name: str) -> dict[str, Any]:
    """The OpenAI chat request a client would send to mean the recorded Anthropic one."""
    rec = recorded(name)
    body: dict[str, Any] = {"model": f"anthropic/{name}", "messages": []}
    if "system" in rec:
        body["messages"].append({"role": "system", "content": rec["system"]})
    body["messages"] += [{"role": m["role"], "content": _text(m)} for m in rec["messages"]]
    if rec["max_tokens"] != 8192:  # 8192 is what the relay asks for when the client doesn't
        body["max_tokens"] = rec["max_tokens"]
    for name_ in ("temperature", "thinking", "cache_control"):
        if name_ in rec:
            body[name_] = rec[name_]
    if "tools" in rec:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
            }
            for t in rec["tools"]
        ]
    if "tool_choice" in rec:
        body["tool_choice"] = rec["tool_choice"]["type"]
    return body


RECORDED_REQUESTS = sorted(p.name.removesuffix(".request.json") for p in FIXTURES.glob("*.request.json"))


def test_there_are_eight_recorded_requests() -> None:
    assert len(RECORDED_REQUESTS) == 8


@pytest.mark.parametrize("name", RECORDED_REQUESTS)
def test_translation_reproduces_recorded_request(name: str) -> None:
    rec = recorded(name)
    body = openai_equivalent(name)
    assert build_request(body, model=rec["model"], stream=rec["stream"]) == rec


@pytest.mark.parametrize("name", RECORDED_REQUESTS)
def test_emulator_receives_recorded_request(relay, sdk, upstream, name: str) -> None:
    """Through the relay with the openai SDK, the recorded reply answering the same request."""
    body = openai_equivalent(name)
    rec = recorded(name)
    extra = {k: body.pop(k) for k in ("thinking", "cache_control") if k in body}
    response = sdk.openai(relay.url).chat.completions.create(**body, stream=rec["stream"], extra_body=extra or None)
    if rec["stream"]:
        list(response)
    assert upstream.last("/anthropic/").body == {**rec, "model": name}


@pytest.mark.parametrize(
    "name", ["messages_stream_short_end_turn", "messages_stream_text_simple", "messages_stream_tool_use"]
)
def test_emulator_receives_recorded_request_from_ollama_dialect(relay, sdk, upstream, name: str) -> None:
    body = openai_equivalent(name)
    options = {"num_predict": body["max_tokens"]} if "max_tokens" in body else {}
    if "temperature" in body:
        options["temperature"] = body["temperature"]
    client = sdk.ollama(relay.url)
    parts = client.chat(
        model=body["model"], messages=body["messages"], tools=body.get("tools"), options=options, stream=True
    )
    list(parts)
    assert upstream.last("/anthropic/").body == {**recorded(name), "model": name}


# --- request rules ---------------------------------------------------------------------


def build(body: dict[str, Any], catalog: dict[str, Any] | None = None, stream: bool = False) -> dict[str, Any]:
    return build_request(body, model="claude-x", stream=stream, catalog=catalog)


def test_system_and_developer_messages_are_joined_never_dropped() -> None:
    sent = build(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                USER,
                {"role": "system", "content": "Late rule."},
            ]
        }
    )
    assert sent["system"] == "Be brief.\n\nUse French.\n\nLate rule."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_cache_breakpoints_survive() -> None:
    cached = {"type": "ephemeral"}
    sent = build(
        {
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": cached}]},
                {"role": "system", "content": "More"},
                {"role": "user", "content": [{"type": "text", "text": "doc", "cache_control": cached}]},
            ]
        }
    )
    assert sent["system"] == [
        {"type": "text", "text": "Long rules", "cache_control": cached},
        {"type": "text", "text": "More"},
    ]
    assert sent["messages"][0]["content"] == [{"type": "text", "text": "doc", "cache_control": cached}]


def test_max_tokens_sources() -> None:
    assert build({"messages": [USER]})["max_tokens"] == 8192
    assert build({"messages": [USER]}, {"max_output_tokens": 64000})["max_tokens"] == 64000
    assert build({"messages": [USER], "max_tokens": 50, "max_completion_tokens": 70})["max_tokens"] == 70
    assert build({"messages": [USER], "max_tokens": 50, "max_completion_tokens": None})["max_tokens"] == 50
    with pytest.raises(BadRequest):
        build({"messages": [USER], "max_tokens": 0})


def test_plain_fields() -> None:
    sent = build(
        {
            "messages": [USER],
            "stop": "END",
            "user": "alice",
            "temperature": 0.3,
            "top_k": 5,
            "seed": 1,
            "logprobs": True,
        }
    )
    assert sent["stop_sequences"] == ["END"] and sent["metadata"] == {"user_id": "alice"}
    assert (sent["temperature"], sent["top_k"]) == (0.3, 5)
    assert "seed" not in sent and "logprobs" not in sent
    assert build({"messages": [USER], "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]
    both = build({"messages": [USER], "temperature": 1.7, "top_p": 0.9})
    assert (both["temperature"], "top_p" in both) == (1.0, False)
    assert build({"messages": [USER], "top_p": 0.9})["top_p"] == 0.9
    assert "temperature" not in build({"messages": [USER], "temperature": 0.3}, {"supports_sampling_params": False})


def test_n_above_one_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        build({"messages": [USER], "n": 2})
    assert caught.value.param == "n" and "one choice" in caught.value.message
    assert "n" not in build({"messages": [USER], "n": 1})


@pytest.mark.parametrize(
    ("effort", "budget", "max_tokens"),
    [("low", 1024, 8192), ("medium", 4096, 8192), ("high", 16384, 16384 + 8192), ("xhigh", 32768, 32768 + 8192)],
)
def test_reasoning_effort_becomes_a_budget(effort: str, budget: int, max_tokens: int) -> None:
    sent = build({"messages": [USER], "reasoning_effort": effort, "temperature": 0.2, "top_p": 0.5, "top_k": 3})
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == max_tokens
    assert not {"temperature", "top_p", "top_k"} & set(sent)


def test_budget_fits_inside_the_model_output_limit() -> None:
    sent = build({"messages": [USER], "reasoning_effort": "medium", "max_tokens": 1000})
    assert (sent["thinking"]["budget_tokens"], sent["max_tokens"]) == (4096, 5096)
    sent = build({"messages": [USER], "reasoning_effort": "xhigh"}, {"max_output_tokens": 8000})
    assert (sent["thinking"]["budget_tokens"], sent["max_tokens"]) == (4000, 8000)


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_no_thinking_efforts(effort: str) -> None:
    sent = build({"messages": [USER], "reasoning_effort": effort, "temperature": 0.2})
    assert "thinking" not in sent and sent["temperature"] == 0.2


def test_unknown_effort_is_refused() -> None:
    with pytest.raises(BadRequest):
        build({"messages": [USER], "reasoning_effort": "extreme"})


def test_adaptive_models_get_an_effort_instead_of_a_budget() -> None:
    newest = {"supports_adaptive_thinking": True, "supports_xhigh_reasoning_effort": True, "max_output_tokens": 128000}
    sent = build({"messages": [USER], "reasoning_effort": "xhigh"}, newest)
    assert (sent["thinking"], sent["output_config"], sent["max_tokens"]) == (
        {"type": "adaptive"},
        {"effort": "xhigh"},
        128000,
    )
    sent = build({"messages": [USER], "reasoning_effort": "xhigh"}, {"supports_adaptive_thinking": True})
    assert sent["output_config"] == {"effort": "high"}


def test_client_thinking_passes_through() -> None:
    sent = build({"messages": [USER], "thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 1500})
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000} and sent["max_tokens"] == 3500
    sent = build({"messages": [USER], "thinking": {"type": "disabled"}, "reasoning_effort": "high"})
    assert "thinking" not in sent


def test_tools_and_tool_choice() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    choices = {
        "auto": {"type": "auto"},
        "none": {"type": "none"},
        "required": {"type": "any"},
        json.dumps({"type": "function", "function": {"name": "f"}}): {"type": "tool", "name": "f"},
    }
    for given, wanted in choices.items():
        choice = json.loads(given) if given.startswith("{") else given
        sent = build({"messages": [USER], "tools": [tool, server_tool], "tool_choice": choice})
        assert sent["tool_choice"] == wanted
        assert sent["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}, server_tool]
    sent = build({"messages": [USER], "tools": [tool], "parallel_tool_calls": False})
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in build({"messages": [USER], "tool_choice": "auto"})  # no tools, no choice


def test_forced_tool_use_turns_thinking_off() -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    sent = build({"messages": [USER], "tools": [tool], "tool_choice": "required", "reasoning_effort": "low"})
    assert "thinking" not in sent and sent["tool_choice"] == {"type": "any"}


def test_prefilled_answer_turns_thinking_off() -> None:
    sent = build({"messages": [USER, {"role": "assistant", "content": "{"}], "reasoning_effort": "low"})
    assert "thinking" not in sent and sent["messages"][-1]["content"] == [{"type": "text", "text": "{"}]


def test_tool_calls_and_results() -> None:
    gemini_style = "call_1~ts~c2ln/bmF0dXJl"
    sent = build(
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": gemini_style, "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
                        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": gemini_style, "content": "one"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
                {"role": "user", "content": "and then?"},
            ]
        }
    )
    safe = "call_1_ts_c2ln_bmF0dXJl"
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": safe, "name": "a", "input": {"x": 1}},
                {"type": "tool_use", "id": "call_2", "name": "b", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": safe, "content": "one"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "two"}]},
                {"type": "text", "text": "and then?"},
            ],
        },
    ]


def test_bad_tool_arguments_are_a_client_error() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "a", "arguments": "{not json"}}
    with pytest.raises(BadRequest):
        build({"messages": [USER, {"role": "assistant", "tool_calls": [call]}]})


def test_thinking_blocks_lead_the_assistant_turn() -> None:
    signed = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    call = {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}}
    assistant = {
        "role": "assistant",
        "content": "Looking.",
        "reasoning_content": "hmm",
        "thinking_blocks": [signed, redacted, {"type": "thinking", "thinking": "unsigned"}],
        "tool_calls": [call],
    }
    body = {"messages": [USER, assistant, {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
    sent = build({**body, "reasoning_effort": "low"})
    assert sent["messages"][1]["content"] == [
        signed,
        redacted,
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "c1", "name": "a", "input": {}},
    ]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    del assistant["thinking_blocks"]
    assert "thinking" not in build({**body, "reasoning_effort": "low"})


def test_prefill_loses_trailing_whitespace_and_empty_turns_vanish() -> None:
    sent = build({"messages": [USER, {"role": "user", "content": " "}, {"role": "assistant", "content": "Sure: \n"}]})
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Sure:"}]},
    ]


def test_structured_output_and_files() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    sent = build({"messages": [USER], "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in build({"messages": [USER], "response_format": {"type": "json_object"}})
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
    sent = build({"messages": [{"role": "user", "content": [pdf]}]})
    assert sent["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    ]
    with pytest.raises(BadRequest):
        build({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]})


def test_image_urls() -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "data:image/heic;base64,iVBORw0KGgo="}},
    ]
    sent = build({"messages": [{"role": "user", "content": parts}]})
    assert [b["source"]["media_type"] for b in sent["messages"][0]["content"]] == ["image/jpeg", "image/png"]
    with pytest.raises(BadRequest):
        build({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]})
