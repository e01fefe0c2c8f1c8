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

from tests.recordings import expected_body, expected_stream, openai_dialect_says

RESPONSES = Path(__file__).parent / "fixtures" / "openai-responses"


@pytest.fixture
def chat_relay(make_relay, emulator):
    # xAI's provider pointed at the recorded OpenAI chat replies: translated, not passed on.
    return make_relay(provider_base_urls={"xai": f"{emulator[1]}/openai/v1"})


def run(relay, model: str, tools: list, question: str, *, streamed: bool = False) -> str:
    """The agent's final output, on the SDK's Responses API model with the relay's model name as
    it is (the SDK's default provider would read ``xai/`` as a prefix of its own). The client
    lives and is closed inside the run's own event loop."""
    set_tracing_disabled(True)

    async def go() -> str:
        async with AsyncOpenAI(base_url=relay.url + "/v1", api_key="agents") as client:
            model_object = OpenAIResponsesModel(model=model, openai_client=client)
            agent = Agent(name="helper", instructions="Answer briefly.", tools=tools, model=model_object)
            if not streamed:
                return str((await Runner.run(agent, question)).final_output)
            result = Runner.run_streamed(agent, question)
            async for _ in result.stream_events():
                pass
            return str(result.final_output)

    return asyncio.run(go())


def test_runner_calls_a_function_tool_and_answers(chat_relay, emulator) -> None:
    asked: list[str] = []

    @function_tool
    def get_user_country() -> str:
        """The user's country."""
        asked.append("country")
        return "France"

    answer = run(chat_relay, "xai/chat_nonstream_tool_calls~chat_nonstream_basic", [get_user_country], "Where am I?")
    assert asked == ["country"]  # the relay's function_call item ran the tool
    assert answer == expected_body("openai", "chat_nonstream_basic").text
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

    model = "xai/chat_stream_tool_call_include_usage~chat_stream_text_short"
    answer = run(chat_relay, model, [get_capital], "Capital of the UK?", streamed=True)
    assert answer == expected_stream("openai", "chat_stream_text_short").text
    assert asked == ["UK"]


def test_runner_against_openai_responses(relay) -> None:
    name = "responses_nonstream_shell_local_multiturn"
    answer = run(relay, f"openai/{name}", [], "Which architecture?")
    recorded = json.loads((RESPONSES / f"{name}.json").read_text())
    texts = [c["text"] for o in recorded["output"] if o["type"] == "message" for c in o["content"]]
    assert answer == "".join(texts)


@pytest.mark.parametrize(
    ("model", "streamed"),
    [
        ("anthropic/messages_nonstream_thinking", False),
        ("anthropic/messages_stream_text_simple", True),
        ("gemini/generateContent_basic_thoughts", False),
        ("gemini/streamGenerateContent_sse_basic", True),
        ("lab/api_chat_stream_truncated", True),
        ("groq/chat_nonstream_basic", False),
    ],
)
def test_runner_on_anthropic_gemini_ollama_and_chat_models(relay, sdk, model: str, streamed: bool) -> None:
    """The Runner's answer is the text the OpenAI dialect gives for the same recording."""
    text = openai_dialect_says(sdk.openai(relay.url), model, stream=streamed).text
    assert text and run(relay, model, [], "hello", streamed=streamed) == text
