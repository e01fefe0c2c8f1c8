"""Model resolution rules, against the real catalog snapshot and configured providers."""

from __future__ import annotations

import httpx
import pytest

from app.catalog import ModelEntry
from app.errors import BadRequest, ModelNotFound
from app.main import Factories, build_services
from app.settings import Settings


def services(**changes):
    settings = Settings(
        provider_keys={"openai": "k", "groq": "k", "openrouter": "k"},
        ollama_instances="lab=http://127.0.0.1:9/lab,den=http://127.0.0.1:9/den",
    ).with_changes(**changes)
    built = build_services(settings, Factories())
    for instance, models in (("lab", ["llama3.2:latest", "qwen3:8b"]), ("den", ["llama3.2:latest", "phi3:mini"])):
        built.catalog.set_discovered(instance, [ModelEntry(instance, m, "chat", {}, discovered=True) for m in models])
    return built


def resolve(name: str, **changes):
    target = services(**changes).resolver.resolve(name)
    return target.label, target.via


def test_explicit_provider_and_model() -> None:
    assert resolve("openai/gpt-4o") == ("openai/gpt-4o", "direct")
    assert resolve("OpenAI/GPT-4o") == ("openai/gpt-4o", "direct")


def test_explicit_provider_reaches_models_the_catalog_does_not_know() -> None:
    assert resolve("openai/gpt-9-preview") == ("openai/gpt-9-preview", "direct")
    target = services().resolver.resolve("openai/gpt-9-preview")
    assert target.catalog_entry is None  # unpriced


def test_provider_model_with_slashes() -> None:
    assert resolve("groq/openai/gpt-oss-120b") == ("groq/openai/gpt-oss-120b", "direct")
    assert resolve("openrouter/anthropic/claude-sonnet-4.5") == ("openrouter/anthropic/claude-sonnet-4.5", "direct")


def test_ollama_namespacing_latest_and_case() -> None:
    assert resolve("lab/llama3.2") == ("lab/llama3.2:latest", "direct")
    assert resolve("LAB/Llama3.2:LATEST") == ("lab/llama3.2:latest", "direct")
    assert resolve("den/phi3:mini") == ("den/phi3:mini", "direct")


def test_the_ollama_tag_latest_is_dropped_for_other_providers() -> None:
    """Ollama clients (Open WebUI, llm-ollama) add ":latest" to every name they list."""
    assert resolve("openai/gpt-4o:latest") == ("openai/gpt-4o", "direct")
    assert resolve("groq/openai/gpt-oss-120b:LATEST") == ("groq/openai/gpt-oss-120b", "direct")
    assert resolve("openai/gpt-9-preview:latest") == ("openai/gpt-9-preview", "direct")  # unknown ones too
    # Other tags are a provider's own (OpenRouter's ":free" models), and Ollama keeps its own.
    assert resolve("openrouter/meta-llama/llama-3.3-70b-instruct:free")[0].endswith(":free")
    assert resolve("lab/llama3.2:latest") == ("lab/llama3.2:latest", "direct")


def test_dashed_instance_form() -> None:
    assert resolve("lab-qwen3:8b") == ("lab/qwen3:8b", "direct")
    assert resolve("den-llama3.2") == ("den/llama3.2:latest", "direct")


def test_bare_ids_when_unambiguous() -> None:
    assert resolve("gpt-4o") == ("openai/gpt-4o", "direct")
    assert resolve("qwen3:8b") == ("lab/qwen3:8b", "direct")
    assert resolve("openai/gpt-oss-120b") == ("groq/openai/gpt-oss-120b", "direct")


def test_ambiguous_bare_id_names_the_choices() -> None:
    with pytest.raises(BadRequest) as caught:
        services().resolver.resolve("llama3.2")
    assert "den/llama3.2:latest" in caught.value.message and "lab/llama3.2:latest" in caught.value.message


def test_user_aliases_win() -> None:
    assert resolve("fast", model_aliases="fast=groq/openai/gpt-oss-20b") == ("groq/openai/gpt-oss-20b", "alias")
    assert resolve("gpt-4o", model_aliases="gpt-4o=lab/qwen3:8b") == ("lab/qwen3:8b", "alias")


def test_builtin_family_aliases_follow_the_catalog() -> None:
    label, via = resolve("claude-sonnet", provider_keys={"anthropic": "k"})
    assert (label, via) == ("anthropic/claude-sonnet-5-5", "alias")
    assert resolve("gpt") == ("openai/gpt-5.6", "alias")


def test_family_alias_for_an_unconfigured_provider_says_what_to_set() -> None:
    with pytest.raises(ModelNotFound) as caught:
        services().resolver.resolve("claude-sonnet")
    assert "ANTHROPIC_API_KEY" in caught.value.message


def test_unconfigured_provider_prefix_says_what_to_set() -> None:
    with pytest.raises(ModelNotFound) as caught:
        services().resolver.resolve("anthropic/claude-sonnet-4-5")
    assert "ANTHROPIC_API_KEY" in caught.value.message


def test_unknown_model_is_not_rerouted_without_a_default() -> None:
    with pytest.raises(ModelNotFound) as caught:
        services().resolver.resolve("no-such-model")
    assert caught.value.status == 404 and "no-such-model" in caught.value.message


def test_default_model_catches_unknown_names() -> None:
    assert resolve("no-such-model", default_model="lab/qwen3:8b") == ("lab/qwen3:8b", "default")
    assert resolve("gpt-4o", default_model="lab/qwen3:8b") == ("openai/gpt-4o", "direct")


def test_default_model_is_visible_in_response_headers(make_relay) -> None:
    relay = make_relay(default_model="openai/chat_nonstream_basic")
    reply = httpx.post(
        relay.url + "/v1/chat/completions", json={"model": "mystery", "messages": [{"role": "user", "content": "x"}]}
    )
    assert reply.status_code == 200
    assert (reply.headers["x-relay-model"], reply.headers["x-relay-route"]) == (
        "openai/chat_nonstream_basic",
        "default",
    )
    row = relay.row(reply.headers["x-request-id"])
    assert (row["requested_model"], row["resolved_model"], row["route"]) == (
        "mystery",
        "openai/chat_nonstream_basic",
        "default",
    )


def test_unknown_model_is_a_404_in_each_dialect(relay) -> None:
    openai_reply = httpx.post(
        relay.url + "/v1/chat/completions", json={"model": "mystery", "messages": [{"role": "user", "content": "x"}]}
    )
    assert openai_reply.status_code == 404
    assert openai_reply.json()["error"]["code"] == "model_not_found"
    assert "mystery" in openai_reply.json()["error"]["message"]
    ollama_reply = httpx.post(
        relay.url + "/api/chat", json={"model": "mystery", "messages": [{"role": "user", "content": "x"}]}
    )
    assert ollama_reply.status_code == 404
    assert "mystery" in ollama_reply.json()["error"]
    row = relay.row(ollama_reply.headers["x-request-id"])
    assert (row["outcome"], row["status"], row["provider"]) == ("client_error", 404, None)


def test_models_endpoint_lists_and_describes(relay, sdk) -> None:
    client = sdk.openai(relay.url)
    ids = {m.id for m in client.models.list()}
    assert {"openai/gpt-4o", "lab/llama3.2:latest", "groq/openai/gpt-oss-120b"} <= ids
    assert "gpt" in ids  # a family alias the configured providers can serve
    assert "anthropic/claude-sonnet-4-5" in ids and "claude-sonnet" in ids
    assert client.models.retrieve("openai/gpt-4o").owned_by == "openai"
    assert client.models.retrieve("lab/llama3.2").id == "lab/llama3.2"
    missing = httpx.get(relay.url + "/v1/models/nope/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_family_alias_moves_when_the_catalog_changes() -> None:
    built = services(provider_keys={"anthropic": "k"})
    assert built.resolver.resolve("claude-sonnet").label == "anthropic/claude-sonnet-5-5"
    newer = ModelEntry("anthropic", "claude-sonnet-6", "chat", {}, discovered=True)
    built.catalog.set_discovered("anthropic", [newer])
    assert built.resolver.resolve("claude-sonnet").label == "anthropic/claude-sonnet-6"
