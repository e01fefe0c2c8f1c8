"""Custom OpenAI- and Anthropic-compatible providers declared in PROVIDERS_FILE."""

from __future__ import annotations

import os

import httpx
import pytest

from app.custom_providers import load_custom_providers
from app.settings import Settings, SettingsError
from app.upstreams import providers_from_settings

MESSAGES = [{"role": "user", "content": "hi"}]


def write(tmp_path, text: str) -> str:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def providers_file(tmp_path, emulator) -> str:
    key_file = tmp_path / "claude.key"
    key_file.write_text("sk-ant-from-file\n")
    return write(
        tmp_path,
        f"""
providers:
  - name: compat
    api: openai
    base_url: {emulator[1]}/openai/v1
    api_key_env: COMPAT_TEST_KEY
    models: [chat_nonstream_basic, chat_stream_text_short]
  - name: claude-like
    api: anthropic
    base_url: {emulator[1]}/anthropic
    api_key_file: {key_file}
    models: [messages_nonstream_thinking]
  - name: found
    api: openai
    base_url: {emulator[1]}/deepseek/v1
""",
    )


def test_declared_and_discovered_models(make_relay, providers_file, upstream, sdk, monkeypatch) -> None:
    monkeypatch.setenv("COMPAT_TEST_KEY", "compat-secret")
    relay = make_relay(providers_file=providers_file)
    client = sdk.openai(relay.url)
    ids = {m.id for m in client.models.list()}
    assert {"compat/chat_nonstream_basic", "claude-like/messages_nonstream_thinking"} <= ids
    assert {"found/chat_nonstream_cache_hit_reasoning", "found/chat_stream_reasoner"} <= ids  # from GET /models

    reply = client.chat.completions.create(model="compat/chat_nonstream_basic", messages=MESSAGES)
    assert reply.usage.prompt_tokens == 16
    assert upstream.last("/openai/v1/chat/completions").headers["authorization"] == "Bearer compat-secret"

    thinking = client.chat.completions.create(model="claude-like/messages_nonstream_thinking", messages=MESSAGES)
    assert thinking.choices[0].message.content
    assert upstream.last("/anthropic/v1/messages").headers["x-api-key"] == "sk-ant-from-file"

    streamed = list(sdk.ollama(relay.url).chat(model="found/chat_stream_reasoner", messages=MESSAGES, stream=True))
    assert streamed[-1].done and streamed[-1].eval_count == 212
    row = relay.rows()[-1]
    assert (row["provider"], row["resolved_model"]) == ("found", "found/chat_stream_reasoner")
    # Not in the catalog: nothing rules tools or images out (clients such as llm-ollama check).
    assert sdk.ollama(relay.url).show("found/chat_stream_reasoner").capabilities == ["completion", "tools", "vision"]
    assert row["cost_nanousd"] is None  # a custom provider's prices are unknown until set


def test_models_endpoint_and_status_show_discovery(make_relay, providers_file, monkeypatch) -> None:
    monkeypatch.setenv("COMPAT_TEST_KEY", "k")
    relay = make_relay(providers_file=providers_file)
    status = relay.app.discovery.status
    assert set(status) == {"lab", "found"}  # declared providers are not polled
    assert status["found"].ok and status["found"].models == 2
    tags = {m["model"] for m in httpx.get(relay.url + "/api/tags").json()["models"]}
    assert "compat/chat_stream_text_short" in tags


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: {}", "needs a 'providers' list"),
        ("providers: [{name: x, api: grpc, base_url: 'http://h'}]", "api must be one of"),
        ("providers: [{name: X Y, api: openai, base_url: 'http://h'}]", "must be lower-case"),
        ("providers: [{name: x, api: openai, base_url: 'ftp://h'}]", "http(s) URL"),
        ("providers: [{name: x, api: openai, base_url: 'http://h', key: k}]", "unknown keys ['key']"),
        ("providers: [{name: x, api: openai, base_url: 'http://h', api_key_env: NOPE_UNSET}]", "NOPE_UNSET is not set"),
        ("providers: [{name: x, api: openai, base_url: 'http://h', models: [1]}]", "list of model ids"),
        ("providers: [", "not valid YAML"),
    ],
)
def test_bad_provider_files_are_clear_errors(tmp_path, text: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_custom_providers(write(tmp_path, text), env={})
    assert message in str(caught.value)


def test_custom_provider_cannot_take_a_builtin_name(tmp_path) -> None:
    path = write(tmp_path, "providers: [{name: openai, api: openai, base_url: 'http://h'}]")
    with pytest.raises(SettingsError, match="built-in provider"):
        providers_from_settings(Settings(providers_file=path))


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_custom_providers(os.devnull + "-missing")


def test_custom_openai_servers_get_max_tokens(make_relay, providers_file, upstream, sdk, monkeypatch) -> None:
    """llama.cpp and other OpenAI-compatible servers know only max_tokens: the cap LangChain and
    pydantic-ai send as max_completion_tokens reaches them under that name; OpenAI's own keeps it."""
    monkeypatch.setenv("COMPAT_TEST_KEY", "compat-secret")
    relay = make_relay(providers_file=providers_file)
    client = sdk.openai(relay.url)
    client.chat.completions.create(model="compat/chat_nonstream_basic", messages=MESSAGES, max_completion_tokens=7)
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["max_tokens"] == 7 and "max_completion_tokens" not in sent
    client.chat.completions.create(model="openai/chat_nonstream_basic", messages=MESSAGES, max_completion_tokens=7)
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["max_completion_tokens"] == 7 and "max_tokens" not in sent
