"""Codex CLI itself (npm ``@openai/codex``, pinned in tests/agents/package.json) completes a
task through the relay with the relay as a custom model provider (``wire_api = "responses"``),
a tool call round trip each time: the model calls a tool, Codex answers with the tool's result,
and the model then answers. Against an emulated Chat Completions upstream (translated) and an
emulated OpenAI Responses upstream (Codex's body and OpenAI's events passed on as they are)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.recordings import expected_stream
from tests.test_claude_code import AGENTS, install_agents, run_agent

CODEX = AGENTS / "node_modules" / ".bin" / "codex"
CONFIG = """model = "{model}"
model_provider = "relay"
web_search = "disabled"  # a built-in tool only a Responses API model runs

[model_providers.relay]
name = "LLM Relay"
base_url = "{url}/v1"
env_key = "RELAY_KEY"
wire_api = "responses"
"""


@pytest.fixture(scope="session")
def codex() -> Path:
    install_agents(CODEX)
    return CODEX


def run_codex(codex: Path, relay_url: str, model: str, key: str, home: Path) -> list[dict[str, Any]]:
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(CONFIG.format(model=model, url=relay_url))
    work = home / "work"
    work.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "CODEX_HOME": str(home / ".codex"), "RELAY_KEY": key}
    stdout = run_agent(
        [str(codex), "exec", "--json", "--skip-git-repo-check", "What is the weather in Paris?"], env, work
    )
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _answer(events: list[dict[str, Any]]) -> str:
    messages = [
        e["item"] for e in events if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]
    assert messages, events
    return str(messages[-1]["text"])


def test_codex_round_trip_through_a_chat_completions_upstream(make_relay, emulator, codex, tmp_path) -> None:
    # xAI's provider pointed at the recorded OpenAI chat replies: a Chat Completions API that
    # the relay translates to (only OpenAI's own API takes Responses requests as they are).
    upstream, url = emulator
    relay = make_relay(provider_base_urls={"xai": f"{url}/openai/v1"})
    tag = f"cx-{uuid.uuid4().hex[:10]}"
    model = "xai/chat_stream_tool_call_include_usage~chat_stream_text_short"
    before = len(upstream.requests)
    events = run_codex(codex, relay.url, model, tag, tmp_path)
    assert _answer(events).strip() == expected_stream("openai", "chat_stream_text_short").text.strip()
    chats = [r for r in upstream.requests[before:] if r.path == "/openai/v1/chat/completions"]
    assert len(chats) >= 2  # the call, then the answer to its result
    results = [m for m in chats[-1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["call_ZR5UUuTt3pf61kjwAJIYdVMj"]  # the recorded call's id
    rows = relay.rows(tag=tag)
    assert len(rows) == len(chats) and all(r["dialect"] == "responses" and r["outcome"] == "ok" for r in rows)
    assert {t["function"]["name"] for t in chats[0].body["tools"]} >= {"exec_command", "multi_agent_v1__spawn_agent"}


def test_codex_round_trip_through_an_openai_responses_upstream(relay, upstream, codex, tmp_path) -> None:
    """The first reply calls exec_command (a stream composed from OpenAI's OpenAPI document: no
    recording holds a plain function call); Codex runs it and sends its output, which the
    recorded shell answer then follows. Both requests go to OpenAI as Codex wrote them."""
    tag = f"cx-{uuid.uuid4().hex[:10]}"
    answer = "responses_stream_shell_local_multiturn"
    model = f"openai/responses_stream_function_call_spec~{answer}"
    before = len(upstream.requests)
    events = run_codex(codex, relay.url, model, tag, tmp_path)
    recorded = (Path(__file__).parent / "fixtures" / "openai-responses" / f"{answer}.sse").read_text()
    assert _answer(events) and _answer(events) in recorded
    sent = [r for r in upstream.requests[before:] if r.path == "/openai/v1/responses"]
    assert len(sent) >= 2
    assert all(r.body["store"] is False and r.body["include"] == ["reasoning.encrypted_content"] for r in sent)
    outputs = [i for i in sent[-1].body["input"] if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == ["call_relayspec0000000000000"]
    rows = relay.rows(tag=tag)
    assert len(rows) == len(sent) and all(r["dialect"] == "responses" and r["outcome"] == "ok" for r in rows)
