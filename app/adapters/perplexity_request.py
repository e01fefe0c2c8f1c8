"""Chat requests as bodies for Perplexity's Agent API (``POST /v1/responses``): Sonar model
names mapped to presets, Sonar's search options moved into the ``web_search`` tool, and every
chat parameter translated or refused with a 400 that names it."""

from __future__ import annotations

from typing import Any

from app.adapters.base import Call
from app.errors import BadRequest
from app.formats.responses_api import input_from_messages, tools_from_chat

# Sonar model -> the preset Perplexity names as its replacement: the closest match in
# perplexityai/api-platform-developers skills/migrate-sonar-to-agent-api/references/
# models-and-presets.md, the guide linked from https://docs.perplexity.ai/docs/agent-api/
# migrate-from-sonar/how-to ("sonar" -> fast; "sonar-pro" -> low, pro-search; "sonar-reasoning"
# and "sonar-reasoning-pro" -> low; "sonar-deep-research" -> medium, deep-research, "the closest
# published equivalent"; high and xhigh are costlier upgrades, not equivalents).
SONAR_PRESETS = {
    "sonar": "fast",
    "sonar-pro": "low",
    "sonar-reasoning": "low",
    "sonar-reasoning-pro": "low",
    "sonar-deep-research": "medium",
}
# https://docs.perplexity.ai/docs/agent-api/presets; the longer names are the earlier ones.
PRESETS = frozenset(
    {"fast", "low", "medium", "high", "xhigh", "fast-search", "pro-search", "deep-research", "advanced-deep-research"}
)
# Chat fields the Agent API takes under the same name and shape (response_format stays at the
# top level there, unlike OpenAI's text.format), then fields only the Agent API has.
SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "response_format", "metadata", "store")
AGENT_ONLY = ("max_steps", "max_tool_calls", "language_preference", "truncation")
# Sonar's top-level search filters, which now sit in the web_search tool's "filters".
SEARCH_FILTERS = tuple(
    "search_domain_filter search_recency_filter search_language_filter search_after_date_filter"
    " search_before_date_filter last_updated_after_filter last_updated_before_filter".split()
)
HANDLED = frozenset(
    {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "reasoning_effort"}
    | {"tools", "tool_choice", "disable_search", "web_search_options", "num_search_results", *SEARCH_FILTERS}
)
# Parameters the Agent API lacks, harmless at their default value (Ollama clients send some).
NEUTRAL = {"n": 1, "frequency_penalty": 0, "presence_penalty": 0, "logprobs": False}
# reasoning.effort values; there is no "none", and "minimal" is the least reasoning.
EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")


def agent_request(call: Call) -> dict[str, Any]:
    """The Agent API body for an internal chat request."""
    body = {k: v for k, v in call.body.items() if v is not None}
    for name in sorted(body.keys() - HANDLED - set(SAME_NAME) - set(AGENT_ONLY)):
        if name not in NEUTRAL:
            raise BadRequest(f"Perplexity's Agent API has no '{name}' parameter", param=name)
        if body[name] != NEUTRAL[name]:
            raise BadRequest(f"Perplexity's Agent API does not support '{name}' = {body[name]!r}", param=name)
    preset = SONAR_PRESETS.get(call.model, call.model if call.model in PRESETS else None)
    request: dict[str, Any] = {"preset": preset} if preset else {"model": call.model}
    instructions, request["input"] = input_from_messages(body.get("messages") or [])
    if instructions is not None:
        request["instructions"] = instructions
    request.update({k: body[k] for k in (*SAME_NAME, *AGENT_ONLY) if k in body})
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        request["max_output_tokens"] = limit
    effort = body.get("reasoning_effort")
    if effort is not None:
        effort = "minimal" if effort == "none" else effort
        if effort not in EFFORTS:
            raise BadRequest(f"unknown reasoning_effort {effort!r}", param="reasoning_effort")
        request["reasoning"] = {"effort": effort}
    tools = _tools(body, preset is not None)
    if tools:
        request["tools"] = tools
    if "tool_choice" in body:
        request["tool_choice"] = _tool_choice(body["tool_choice"])
    request["stream"] = call.stream
    return request


def _tools(body: dict[str, Any], preset: bool) -> list[dict[str, Any]]:
    """The client's tools plus web search: always for an explicit model (a bare model does not
    search, Sonar always did); for a preset, which bundles it, only to carry Sonar's options."""
    tools = tools_from_chat(body["tools"]) if "tools" in body else []
    search: dict[str, Any] = {"type": "web_search"}
    filters = {k: body[k] for k in SEARCH_FILTERS if k in body}
    if filters:
        search["filters"] = filters
    options = body.get("web_search_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("'web_search_options' must be an object", param="web_search_options")
    for key, value in options.items():
        if key not in ("search_context_size", "user_location"):
            raise BadRequest(f"Perplexity's Agent API has no web_search_options.{key}", param="web_search_options")
        search[key] = value
    if "num_search_results" in body:
        search["max_results"] = body["num_search_results"]
    if any(t.get("type") == "web_search" for t in tools):
        if len(search) > 1:
            raise BadRequest("give search options on the web_search tool or as Sonar fields, not both", param="tools")
        return tools
    if body.get("disable_search") is True:
        if preset:
            raise BadRequest("a Perplexity preset always searches: use a model for disable_search", param="model")
        if len(search) > 1:
            raise BadRequest("search options were given with disable_search", param="disable_search")
        return tools
    return [*tools, search] if not preset or len(search) > 1 else tools


def _tool_choice(choice: Any) -> Any:
    """Perplexity names a function to force as ``{"name": ...}``."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if not isinstance(name, str):
            raise BadRequest("tool_choice names no function", param="tool_choice")
        return {"name": name}
    return choice
