"""Gemini's native API behind the relay, through both inbound dialects with the real SDKs:
every recording, the tool-use round trip with its thought signature, images, embeddings.

Token counts are written out by hand from the recordings' last usageMetadata: input is
promptTokenCount (+ toolUsePromptTokenCount, never present here), output is
candidatesTokenCount + thoughtsTokenCount, reasoning is thoughtsTokenCount, cached is
cachedContentTokenCount.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import PNG

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
MESSAGES = [{"role": "user", "content": "hello"}]
# The thought signature recorded on the pelican function call.
SIGNATURE = json.loads((FIXTURES / "generateContent_function_call.json").read_text())[1]["candidates"][0]["content"][
    "parts"
][0]["thoughtSignature"]
PELICAN_TOOL = {
    "type": "function",
    "function": {
        "name": "pelican_name_generator",
        "description": "Names for a pelican",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}
PNG_B64 = base64.b64encode(PNG).decode()


@dataclass(frozen=True)
class Recording:
    name: str
    stream: bool
    input: int
    output: int
    reasoning: int
    cached: int
    finish: str
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


RECORDINGS = [
    # usage 9 prompt, 9 candidates, 34 thoughts
    Recording("generateContent_basic_thoughts", False, 9, 43, 34, 0, "stop"),
    # usage 3520 prompt (3512 of them cached), 2 candidates, 42 thoughts
    Recording("generateContent_cached_content", False, 3520, 44, 42, 3512, "stop"),
    # a JSON-array stream; last usage 32 prompt, 12 candidates, 42 thoughts
    Recording("generateContent_function_call", True, 32, 54, 42, 0, "tool_calls", [("pelican_name_generator", "{}")]),
    # the earlier chunks say 15 prompt tokens, the last one 13 (and 8 candidates): last wins
    Recording("streamGenerateContent_sse_basic", True, 13, 8, 0, 0, "stop"),
    # last usage 34 prompt, 469 candidates, 787 thoughts
    Recording("streamGenerateContent_sse_thinking", True, 34, 1256, 787, 0, "stop"),
    # last usage 18 prompt, 80 candidates, 35 thoughts
    Recording("streamGenerateContent_sse_usage_mid_stream", True, 18, 115, 35, 0, "stop"),
]


def recorded_responses(name: str) -> list[dict[str, Any]]:
    """The responses of a recording, read here independently of the relay's parsers."""
    for suffix in (".sse", ".json"):
        path = FIXTURES / f"{name}{suffix}"
        if path.exists():
            break
    text = path.read_text()
    if suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    lines = [line[5:].strip() for line in text.replace("\r\n", "\n").split("\n") if line.startswith("data:")]
    return [json.loads(line) for line in lines]


def recorded_text(name: str) -> tuple[str, str]:
    """(answer, thoughts) as the recording spells them."""
    text, thoughts = "", ""
    for response in recorded_responses(name):
        for part in response["candidates"][0]["content"].get("parts", []):
            if "text" in part:
                if part.get("thought"):
                    thoughts += part["text"]
                else:
                    text += part["text"]
    return text, thoughts


def check_row(row: dict, case: Recording, *, dialect: str) -> None:
    assert (row["provider"], row["resolved_model"], row["dialect"]) == ("gemini", f"gemini/{case.name}", dialect)
    assert (row["outcome"], row["status"], row["usage_reported"]) == ("ok", 200, True)
    assert row["streamed"] is case.stream
    assert (row["input_tokens"], row["output_tokens"]) == (case.input, case.output)
    assert (row["reasoning_tokens"], row["cached_input_tokens"]) == (case.reasoning, case.cached)


def new_tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("case", RECORDINGS, ids=lambda c: c.name)
def test_recording_through_openai_dialect(relay, sdk, upstream, case: Recording) -> None:
    client = sdk.openai(relay.url)
    tag = new_tag()
    model = f"gemini/{case.name}"
    headers = {"X-Proxy-Tag": tag}
    text, reasoning, finish, usage = "", "", None, None
    calls: dict[int, list[str]] = {}
    if case.stream:
        stream = client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, extra_headers=headers
        )
        for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                reasoning += getattr(choice.delta, "reasoning_content", None) or ""
                for call in choice.delta.tool_calls or []:
                    slot = calls.setdefault(call.index, ["", ""])
                    slot[0] += call.function.name or ""
                    slot[1] += call.function.arguments or ""
                finish = choice.finish_reason or finish
        tool_calls = [(n, a) for n, a in (calls[i] for i in sorted(calls))]
    else:
        completion = client.chat.completions.create(model=model, messages=MESSAGES, extra_headers=headers)
        message = completion.choices[0].message
        text, reasoning = message.content or "", getattr(message, "reasoning_content", None) or ""
        tool_calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
        finish, usage = completion.choices[0].finish_reason, completion.usage
    assert (text, reasoning) == recorded_text(case.name)
    assert tool_calls == case.tool_calls
    assert finish == case.finish
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (case.input, case.output)
    assert usage.completion_tokens_details.reasoning_tokens == case.reasoning
    assert usage.prompt_tokens_details.cached_tokens == case.cached
    sent = upstream.last("/gemini/")
    method = "streamGenerateContent" if case.stream else "generateContent"
    assert sent.path == f"/gemini/v1beta/models/{case.name}:{method}"
    assert sent.headers["x-goog-api-key"] == "test-key-gemini"
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    [row] = relay.rows(tag=tag)
    check_row(row, case, dialect="openai")


@pytest.mark.parametrize("case", RECORDINGS, ids=lambda c: c.name)
def test_recording_through_ollama_dialect(relay, sdk, case: Recording) -> None:
    tag = new_tag()
    client = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag})
    model = f"gemini/{case.name}"
    if case.stream:
        parts = list(client.chat(model=model, messages=MESSAGES, stream=True))
        text = "".join(p.message.content or "" for p in parts)
        thinking = "".join(p.message.thinking or "" for p in parts)
        calls = [c for p in parts for c in p.message.tool_calls or []]
        final = parts[-1]
    else:
        final = client.chat(model=model, messages=MESSAGES, stream=False)
        text, thinking, calls = final.message.content, final.message.thinking or "", final.message.tool_calls or []
    assert (text, thinking) == recorded_text(case.name)
    assert [(c.function.name, c.function.arguments) for c in calls] == [(n, json.loads(a)) for n, a in case.tool_calls]
    assert final.done is True and final.done_reason == "stop"
    assert (final.prompt_eval_count, final.eval_count) == (case.input, case.output)
    [row] = relay.rows(tag=tag)
    check_row(row, case, dialect="ollama")


def test_tool_round_trip_through_openai_dialect(relay, sdk, upstream) -> None:
    client = sdk.openai(relay.url)
    question = {"role": "user", "content": "Two names for a pet pelican"}
    stream = client.chat.completions.create(
        model="gemini/generateContent_function_call", messages=[question], tools=[PELICAN_TOOL], stream=True
    )
    calls = [c for chunk in stream for choice in chunk.choices for c in choice.delta.tool_calls or []]
    [call] = calls
    assert call.function.name == "pelican_name_generator" and call.function.arguments == "{}"
    assert call.id.endswith("~ts~" + SIGNATURE)
    sent = upstream.last("/gemini/").body
    # additionalProperties is cut: Gemini's Schema refuses it.
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "pelican_name_generator",
                    "description": "Names for a pelican",
                    "parameters": {"type": "object", "properties": {}},
                }
            ]
        }
    ]
    # The answer goes to another recording (and so another model): only the id can carry the
    # signature back this time.
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": "{}"}}
        ],
    }
    result = {"role": "tool", "tool_call_id": call.id, "content": "Pelly"}
    completion = client.chat.completions.create(
        model="gemini/generateContent_basic_thoughts", messages=[question, assistant, result], tools=[PELICAN_TOOL]
    )
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert upstream.last("/gemini/").body["contents"] == [
        {"role": "user", "parts": [{"text": "Two names for a pet pelican"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "pelican_name_generator", "args": {}}, "thoughtSignature": SIGNATURE}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "pelican_name_generator", "response": {"result": "Pelly"}}}],
        },
    ]


def test_tool_round_trip_through_ollama_dialect(relay, sdk, upstream) -> None:
    client = sdk.ollama(relay.url)
    question = {"role": "user", "content": "Two names for a pet pelican (ollama)"}
    model = "gemini/generateContent_function_call"
    parts = list(client.chat(model=model, messages=[question], tools=[PELICAN_TOOL], stream=True))
    [call] = [c for p in parts for c in p.message.tool_calls or []]
    thinking = "".join(p.message.thinking or "" for p in parts)
    assert call.function.name == "pelican_name_generator" and call.function.arguments == {}
    assert "id" not in call.model_dump()  # the ollama SDK keeps no tool call id...
    assistant = {"role": "assistant", "content": "", "thinking": thinking, "tool_calls": [call]}
    result = {"role": "tool", "content": "Pelly", "tool_name": "pelican_name_generator"}
    list(client.chat(model=model, messages=[question, assistant, result], tools=[PELICAN_TOOL], stream=True))
    # ...so the relay remembered the signature for this very conversation.
    assert upstream.last("/gemini/").body["contents"] == [
        {"role": "user", "parts": [{"text": "Two names for a pet pelican (ollama)"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "pelican_name_generator", "args": {}}, "thoughtSignature": SIGNATURE}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "pelican_name_generator", "response": {"result": "Pelly"}}}],
        },
    ]
    # A conversation that did not receive this call gets no signature from the memory.
    stranger = {"role": "user", "content": "someone else"}
    list(client.chat(model=model, messages=[stranger, assistant, result], tools=[PELICAN_TOOL], stream=True))
    assert "thoughtSignature" not in upstream.last("/gemini/").body["contents"][1]["parts"][0]


def test_images_reach_gemini_as_inline_data(relay, sdk, upstream, image_server) -> None:
    inline = {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
    client = sdk.openai(relay.url)
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": f"{image_server}/pixel.png"}},
    ]
    client.chat.completions.create(
        model="gemini/generateContent_basic_thoughts", messages=[{"role": "user", "content": content}]
    )
    assert upstream.last("/gemini/").body["contents"] == [
        {"role": "user", "parts": [{"text": "What is in these?"}, inline, inline]}
    ]
    ollama_client = sdk.ollama(relay.url)
    ollama_client.chat(
        model="gemini/generateContent_basic_thoughts",
        messages=[{"role": "user", "content": "And this?", "images": [PNG_B64]}],
        stream=False,
    )
    assert upstream.last("/gemini/").body["contents"] == [{"role": "user", "parts": [{"text": "And this?"}, inline]}]


def test_unreachable_image_is_a_client_error(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    content = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/nothing.png"}}]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gemini/generateContent_basic_thoughts", messages=[{"role": "user", "content": content}]
        )


EMBEDDINGS = "batchEmbedContents_two_texts_768"


def test_embeddings_through_both_dialects(relay, sdk, upstream) -> None:
    vectors = [e["values"] for e in json.loads((FIXTURES / f"{EMBEDDINGS}.json").read_text())["embeddings"]]
    want_request = json.loads((FIXTURES / f"{EMBEDDINGS}.request.json").read_text())
    for item in want_request["requests"]:  # the recording's model was gemini-embedding-2
        item["model"] = f"models/{EMBEDDINGS}"
    tag = new_tag()
    client = sdk.openai(relay.url)
    result = client.embeddings.create(
        model=f"gemini/{EMBEDDINGS}",
        input=["First text", "Second text"],
        dimensions=768,
        extra_headers={"X-Proxy-Tag": tag},
    )
    sent = upstream.last("/gemini/")
    assert sent.path == f"/gemini/v1beta/models/{EMBEDDINGS}:batchEmbedContents"
    assert sent.body == want_request
    # The SDK asks for base64 (float32), so the values come back at float32 precision.
    assert [d.embedding for d in result.data] == [pytest.approx(v, rel=1e-6) for v in vectors]
    assert len(result.data[0].embedding) == 768
    assert result.usage.prompt_tokens == 4
    plain = client.embeddings.create(model=f"gemini/{EMBEDDINGS}", input="First text", encoding_format="float")
    assert plain.data[0].embedding == vectors[0]
    [row] = relay.rows(tag=tag)
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"], row["usage_reported"]) == (
        "/v1/embeddings",
        4,
        0,
        True,
    )
    tag = new_tag()
    ollama_client = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag})
    embedded = ollama_client.embed(model=f"gemini/{EMBEDDINGS}", input=["First text", "Second text"], dimensions=768)
    assert upstream.last("/gemini/").body == want_request
    assert [list(e) for e in embedded.embeddings] == vectors
    assert embedded.prompt_eval_count == 4
    [row] = relay.rows(tag=tag)
    assert (row["endpoint"], row["dialect"], row["input_tokens"]) == ("/api/embed", "ollama", 4)


def test_upstream_error_keeps_its_status(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gemini/no_such_recording", messages=MESSAGES)
    assert "no recording gemini/no_such_recording" in str(caught.value)


def test_legacy_completion_and_generate(relay, sdk, upstream) -> None:
    tag = new_tag()
    client = sdk.openai(relay.url)
    completion = client.completions.create(
        model="gemini/generateContent_basic_thoughts", prompt="Hello!", extra_headers={"X-Proxy-Tag": tag}
    )
    assert completion.choices[0].text == "Hello! How can I help you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert upstream.last("/gemini/").body["contents"] == [{"role": "user", "parts": [{"text": "Hello!"}]}]
    [row] = relay.rows(tag=tag)
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        "/v1/completions",
        9,
        43,
        34,
    )
    generated = sdk.ollama(relay.url).generate(
        model="gemini/generateContent_basic_thoughts", prompt="Hello!", system="You are a chatbot.", stream=False
    )
    assert generated.response == "Hello! How can I help you today?"
    assert (generated.prompt_eval_count, generated.eval_count) == (9, 43)
    sent = upstream.last("/gemini/").body
    assert sent["systemInstruction"] == {"parts": [{"text": "You are a chatbot."}]}
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello!"}]}]
