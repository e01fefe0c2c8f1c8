"""The OpenAI Agents SDK's default Runner (Responses API models) through the relay: a function
tool round trip against a Chat Completions upstream, streamed and not, and an answer from an
OpenAI Responses upstream, whose own reply is relayed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.recordings import expected_body, expected_stream

RESPONSES = Path(__file__).parent / "fixtures" / "openai-responses"


@pytest.fixture
def chat_relay(make_relay, emulator):
    # xAI's provider pointed at the recorded OpenAI chat replies: translated, not passed on.
    return make_relay(provider_base_urls={"xai": f"{emulator[1]}/openai/v1"})


def _agent(relay, model: str, tools: list) -> Agent:
    """An agent on the SDK's Responses API model, with the relay's model name as it is (the
    SDK's default provider would read ``xai/`` as a prefix of its own)."""
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=relay.url + "/v1", api_key="agents")
    model_object = OpenAIResponsesModel(model=model, openai_client=client)
    return Agent(name="helper", instructions="Answer briefly.", tools=tools, model=model_object)


def test_runner_calls_a_function_tool_and_answers(chat_relay, emulator) -> None:
    asked: list[str] = []

    @function_tool
    def get_user_country() -> str:
        """The user's country."""
        asked.append("country")
        return "France"

    agent = _agent(chat_relay, "xai/chat_nonstream_tool_calls~chat_nonstream_basic", [get_user_country])
    result = Runner.run_sync(agent, "Where am I?")
    assert asked == ["country"]  # the relay's function_call item ran the tool
    assert result.final_output == expected_body("openai", "chat_nonstream_basic").text
    sent = emulator[0].last("/openai/v1/chat/completions").body
    assert [m for m in sent["messages"] if m["role"] == "tool"] == [
        {"role": "tool", "tool_call_id": "call_iXFttys57ap0o16JSlC8yhYo", "content": "France"}
    ]
    rows = chat_relay.rows()
    assert [r["dialect"] for r in rows[-2:]] == ["responses", "responses"]


def test_streamed_runner_round_trip(chat_relay) -> None:
    asked: list[str] = []

    @function_tool
    def get_capital(country: str) -> str:
        """The capital of a country."""
        asked.append(country)
        return "London"

    agent = _agent(chat_relay, "xai/chat_stream_tool_call_include_usage~chat_stream_text_short", [get_capital])

    async def run() -> str:
        streamed = Runner.run_streamed(agent, "Capital of the UK?")
        async for _ in streamed.stream_events():
            pass
        return str(streamed.final_output)

    assert asyncio.run(run()) == expected_stream("openai", "chat_stream_text_short").text
    assert asked == ["UK"]


def test_runner_against_openai_responses(relay) -> None:
    name = "responses_nonstream_shell_local_multiturn"
    result = Runner.run_sync(_agent(relay, f"openai/{name}", []), "Which architecture?")
    recorded = json.loads((RESPONSES / f"{name}.json").read_text())
    texts = [c["text"] for o in recorded["output"] if o["type"] == "message" for c in o["content"]]
    assert result.final_output == "".join(texts)
