"""Every recorded OpenAI-compatible chat response, with the usage the provider reported in it,
written out by hand from the recording (input includes cached input; output includes reasoning
that the provider bills as output)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    provider: str
    name: str
    input: int
    output: int
    reasoning: int = 0
    cached: int = 0
    cost_nanousd: int | None = None

    @property
    def stream(self) -> bool:
        return "_stream_" in self.name

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"


CHAT_CASES = [
    Case("openai", "chat_stream_text_short", 13, 11),
    Case("openai", "chat_stream_tool_call_include_usage", 53, 15),
    Case("openai", "chat_nonstream_basic", 16, 363),
    Case("openai", "chat_nonstream_search_preview", 12, 293),
    Case("openai", "chat_nonstream_tool_calls", 68, 12),
    Case("groq", "chat_nonstream_basic", 45, 607),
    Case("groq", "chat_stream_reasoning_x_groq_usage", 21, 988),
    Case("groq", "chat_stream_web_search_usage_breakdown", 5003, 359),
    Case("mistral", "chat_nonstream_prompt_cache", 268, 5, cached=224),
    Case("mistral", "chat_nonstream_thinking_content_array", 664, 747),
    Case("mistral", "chat_nonstream_tool_call", 124, 22),
    Case("deepseek", "chat_nonstream_cache_hit_reasoning", 563, 116, reasoning=60, cached=512),
    Case("deepseek", "chat_stream_reasoner", 6, 212, reasoning=198),
    # xAI leaves reasoning out of completion_tokens: 2 + 320 and 2 + 340; 1 tick = 1e-10 USD.
    Case("xai", "chat_nonstream_reasoning", 12, 322, reasoning=320, cached=2, cost_nanousd=164150),
    Case("xai", "chat_stream_reasoning", 12, 342, reasoning=340, cached=11, cost_nanousd=172125),
    Case("openrouter", "chat_nonstream_usage_cost", 17, 2177, reasoning=960, cost_nanousd=4358250),
    Case("openrouter", "chat_stream_reasoning_cost", 43, 36, reasoning=13, cost_nanousd=669000),
]

# Served through a relay whose "openai" provider points at these recordings: Perplexity's
# (retired) Sonar chat completions and Ollama's own OpenAI-compatible /v1 endpoint.
OTHER_COMPATIBLE = [
    Case("perplexity", "chat_nonstream_citations", 10, 251),
    Case("perplexity", "chat_nonstream_usage_cost", 6, 1, cost_nanousd=5010000),
    Case("perplexity", "chat_stream_citations", 10, 336),
    Case("perplexity", "chat_stream_text", 11, 434),
    Case("ollama", "v1_chat_completions_json_schema", 136, 15),
]
