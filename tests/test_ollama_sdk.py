"""The ollama SDK against the relay: every recorded OpenAI-compatible response through
/api/chat, the recorded Ollama traffic through both dialects, and the listing endpoints."""

from __future__ import annotations

import json
import uuid

import httpx
import ollama
import pytest

from tests.cases import CHAT_CASES, Case
from tests.recordings import body, expected_body, expected_stream

MESSAGES = [{"role": "user", "content": "hello"}]


def tagged_client(relay, sdk) -> tuple[ollama.Client, str]:
    tag = f"t-{uuid.uuid4().hex[:12]}"
    return sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag}), tag


@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda c: c.id)
def test_chat_through_ollama_dialect(relay, case: Case, sdk) -> None:
    client, tag = tagged_client(relay, sdk)
    model = f"{case.provider}/{case.name}"
    want = expected_stream(case.provider, case.name) if case.stream else expected_body(case.provider, case.name)
    text, thinking, calls, final = "", "", [], None
    if case.stream:
        for part in client.chat(model=model, messages=MESSAGES, stream=True):
            text += part.message.content or ""
            thinking += part.message.thinking or ""
            calls += part.message.tool_calls or []
            final = part
    else:
        final = client.chat(model=model, messages=MESSAGES, stream=False)
        text, thinking, calls = final.message.content, final.message.thinking or "", final.message.tool_calls or []
    assert text == want.text
    assert thinking == want.reasoning
    assert [(c.function.name, c.function.arguments) for c in calls] == [(n, json.loads(a)) for n, a in want.tool_calls]
    assert final.done is True
    assert final.done_reason == ("length" if want.finish == "length" else "stop")
    assert (final.prompt_eval_count, final.eval_count) == (case.input, case.output)
    assert final.total_duration and final.total_duration > 0
    row = relay.rows(tag=tag)[0]
    assert (row["dialect"], row["endpoint"], row["outcome"]) == ("ollama", "/api/chat", "ok")
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        case.input,
        case.output,
        case.reasoning,
    )


def test_ollama_stream_through_ollama_dialect(relay, sdk) -> None:
    client, tag = tagged_client(relay, sdk)
    parts = list(client.chat(model="lab/api_chat_stream_truncated", messages=MESSAGES, stream=True))
    assert "".join(p.message.content for p in parts) == "This is test completion response"
    final = parts[-1]
    # Ollama's own counts and timings (ns) pass through unchanged.
    assert (final.prompt_eval_count, final.eval_count) == (10, 239)
    assert (final.total_duration, final.load_duration) == (58123571935, 55561676662)
    assert (final.prompt_eval_duration, final.eval_duration) == (34847000, 2381751000)
    row = relay.rows(tag=tag)[0]
    assert (row["provider"], row["resolved_model"], row["cost_nanousd"]) == ("lab", "lab/api_chat_stream_truncated", 0)
    assert (row["input_tokens"], row["output_tokens"]) == (10, 239)


def test_ollama_tool_calls_through_both_dialects(relay, sdk) -> None:
    client, tag = tagged_client(relay, sdk)
    reply = client.chat(model="lab/api_chat_nonstream_tool_calls", messages=MESSAGES, stream=False)
    names = [c.function.name for c in reply.message.tool_calls]
    assert names == [
        "MyPlugin_GetCurrentWeather",
        "MyPlugin_FunctionWithException",
        "MyPlugin_NonExistentFunction",
        "MyPlugin_InvalidArguments",
        "MyPlugin_IntArguments",
    ]
    assert reply.message.tool_calls[0].function.arguments == {"location": "Boston, MA"}
    assert reply.message.tool_calls[3].function.arguments == {}  # recorded without arguments
    oa = sdk.openai(relay.url)
    completion = oa.chat.completions.create(model="lab/api_chat_nonstream_tool_calls", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls] == names
    assert json.loads(choice.message.tool_calls[4].function.arguments) == {"age": "36"}
    assert completion.usage.prompt_tokens == 152 and completion.usage.completion_tokens == 22
    row = relay.rows(tag=tag)[0]
    assert (row["dialect"], row["input_tokens"], row["output_tokens"]) == ("ollama", 152, 22)


def test_ollama_stream_through_openai_dialect(relay, sdk) -> None:
    oa = sdk.openai(relay.url)
    text, usage, finish = "", None, None
    for chunk in oa.chat.completions.create(
        model="lab/api_chat_stream_truncated", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "This is test completion response"
    assert finish == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 239)


def test_generate_and_load(relay, sdk) -> None:
    client, tag = tagged_client(relay, sdk)
    reply = client.generate(model="lab/llama3.2", prompt="Why is the sky blue?", stream=False)
    assert reply.response == "The sky is blue because it is the color of the sky."
    assert (reply.prompt_eval_count, reply.eval_count) == (26, 290)
    streamed = list(client.generate(model="lab/llama3.2", prompt="Why is the sky blue?", stream=True))
    assert "".join(p.response for p in streamed) == reply.response
    assert streamed[-1].done and streamed[-1].eval_count == 290
    loaded = client.generate(model="lab/llama3.2", prompt="", stream=False)
    assert loaded.done is True
    cloud = httpx.post(relay.url + "/api/generate", json={"model": "openai/gpt-4o", "prompt": "", "keep_alive": 0})
    assert cloud.status_code == 200 and cloud.json()["done_reason"] == "unload"
    rows = relay.rows(tag=tag)
    assert [(r["endpoint"], r["streamed"]) for r in rows][:2] == [("/api/generate", False), ("/api/generate", True)]


def test_generate_from_cloud_model_as_chat(relay, upstream, sdk) -> None:
    client, _ = tagged_client(relay, sdk)
    reply = client.generate(model="openai/chat_nonstream_basic", prompt="hi", system="be brief", stream=False)
    assert reply.response == expected_body("openai", "chat_nonstream_basic").text
    sent = upstream.last("/chat/completions").body
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_listing_endpoints(relay, sdk) -> None:
    client = sdk.ollama(relay.url)
    names = [m.model for m in client.list().models]
    assert "lab/llama3.2:latest" in names and "lab/deepseek-r1:latest" in names
    assert "openai/gpt-4o" in names and "groq/openai/gpt-oss-120b" in names
    lab = next(m for m in client.list().models if m.model == "lab/llama3.2:latest")
    assert lab.size == 2019393189 and lab.details.quantization_level == "Q4_K_M"
    shown = client.show("lab/llama3.2")
    assert shown.modelinfo["llama.context_length"] == 8192
    cloud = client.show("openai/gpt-4o")
    assert cloud.modelinfo["openai.context_length"] == 128000
    assert {"completion", "tools", "vision"} <= set(cloud.capabilities)
    running = client.ps()
    assert [m.model for m in running.models] == ["lab/mistral:latest"]
    version = httpx.get(relay.url + "/api/version").json()["version"]
    assert all(part.isdigit() for part in version.split("."))
    root = httpx.get(relay.url + "/")
    assert root.text == "Ollama is running"


def test_every_listed_model_has_a_digest_of_its_own_and_no_provider_address(relay, sdk) -> None:
    """llm-ollama groups models by digest: an empty or shared one made every relay model an
    alias of one, served and billed by another provider."""
    tags = httpx.get(relay.url + "/api/tags").json()["models"]
    digests = [m["digest"] for m in tags]
    assert all(len(d) == 64 for d in digests) and len(set(digests)) == len(digests)
    again = {m["model"]: m["digest"] for m in httpx.get(relay.url + "/api/tags").json()["models"]}
    assert again == {m["model"]: m["digest"] for m in tags}  # stable
    lab = next(m for m in tags if m["model"] == "lab/llama3.2:latest")
    assert lab["digest"].startswith("a80c4f17")  # the instance's own digest is kept
    shown = httpx.post(relay.url + "/api/show", json={"model": "openai/gpt-4o"}).json()
    assert "remote_host" not in shown and all("remote_host" not in m for m in tags)


def test_embeddings_both_dialects(relay, sdk) -> None:
    client, tag = tagged_client(relay, sdk)
    result = client.embed(model="lab/all-minilm", input="The sky is blue")
    assert len(result.embeddings) == 1 and result.embeddings[0][:2] == [0.010071029, -0.0017594862]
    legacy = httpx.post(relay.url + "/api/embeddings", json={"model": "lab/all-minilm", "prompt": "x"}).json()
    assert legacy["embedding"][:1] == [0.010071029]
    oa = sdk.openai(relay.url)
    vectors = oa.embeddings.create(model="lab/all-minilm", input="The sky is blue")
    assert len(vectors.data[0].embedding) == 10 and vectors.usage.prompt_tokens == 8
    row = relay.rows(tag=tag)[0]
    assert (row["endpoint"], row["input_tokens"]) == ("/api/embed", 8)


def test_sources_are_appended_for_ollama_clients(make_relay, emulator, sdk) -> None:
    relay = make_relay(provider_base_urls={"openai": f"{emulator[1]}/perplexity/v1"})
    client = sdk.ollama(relay.url)
    want = expected_body("perplexity", "chat_nonstream_citations").text
    citations = body("perplexity", "chat_nonstream_citations")["citations"]
    reply = client.chat(model="openai/chat_nonstream_citations", messages=MESSAGES, stream=False)
    assert reply.message.content.startswith(want)
    listed = reply.message.content[len(want) :]
    assert listed.startswith("\n\nSources:\n1. ")
    assert [line.split(". ", 1)[1] for line in listed.strip().splitlines()[1:]] == citations
    parts = list(client.chat(model="openai/chat_stream_citations", messages=MESSAGES, stream=True))
    streamed = "".join(p.message.content for p in parts)
    assert streamed.startswith(expected_stream("perplexity", "chat_stream_citations").text)
    assert streamed.count("\n\nSources:\n") == 1 and parts[-1].done


def test_a_whole_reply_from_another_provider_reports_durations_that_add_up(relay, sdk) -> None:
    """Its time is generation time: Open WebUI showed 134,516 tokens/s when the moment the whole
    body arrived was taken for the first token."""
    reply = sdk.ollama(relay.url).chat(model="openai/chat_nonstream_basic", messages=MESSAGES, stream=False)
    assert reply.load_duration + reply.prompt_eval_duration + reply.eval_duration == reply.total_duration
    assert reply.eval_duration == reply.total_duration and reply.eval_count == 363


@pytest.mark.parametrize("generate", [True, False])
@pytest.mark.parametrize("keep_alive", [None, 0])
def test_loading_and_unloading_a_model_passes_the_servers_reason_on(relay, upstream, sdk, generate, keep_alive) -> None:
    """An empty prompt (or conversation) loads an Ollama model, with ``keep_alive: 0`` unloads
    it: the request reaches the server as sent and its answer (docs/api.md's load and unload
    objects) comes back with its own reason, no counts and a row of no tokens."""
    client, tag = tagged_client(relay, sdk)
    extra = {} if keep_alive is None else {"keep_alive": keep_alive}
    if generate:
        reply = client.generate(model="lab/llama3.2", prompt="", stream=False, **extra)
        sent = upstream.last("/api/generate").body
    else:
        reply = client.chat(model="lab/llama3.2", messages=[], stream=False, **extra)
        sent = upstream.last("/api/chat").body
    expected = "unload" if keep_alive == 0 else "load"
    assert (reply.done, reply.done_reason) == (True, expected)
    assert reply.prompt_eval_count is None and reply.eval_count is None  # as Ollama answers a load
    assert sent.get("keep_alive") == keep_alive and not sent.get("prompt") and not sent.get("messages")
    row = relay.rows(tag=tag)[0]
    assert (row["outcome"], row["input_tokens"], row["output_tokens"]) == ("ok", 0, 0)
    cloud = httpx.post(
        relay.url + ("/api/generate" if generate else "/api/chat"),
        json={"model": "openai/gpt-4o", **({"prompt": ""} if generate else {"messages": []}), **extra},
    )
    assert cloud.status_code == 200 and cloud.json()["done_reason"] == expected  # nothing to load there
    assert "prompt_eval_count" not in cloud.json()


def test_show_reports_capabilities_from_the_catalog(relay, sdk) -> None:
    """Clients register a model by what /api/show says it can do: embedding models as such."""
    client = sdk.ollama(relay.url)
    assert client.show("openai/text-embedding-3-small").capabilities == ["embedding"]
    reasoner = client.show("deepseek/deepseek-reasoner").capabilities
    assert "thinking" in reasoner and "completion" in reasoner and "tools" not in reasoner
    assert {"completion", "tools", "vision", "thinking"} <= set(client.show("openai/o3").capabilities)
