"""The internal (OpenAI chat) request as an Anthropic Messages request.

Pure translation: no I/O. The model's catalog entry, when known, supplies the output limit
and says which thinking style and sampling parameters the model accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import BadRequest
from app.formats.anthropic_messages import convert_messages
from app.formats.openai_chat import stop_sequences

# Anthropic requires max_tokens; this is the answer room when neither client nor catalog says.
DEFAULT_MAX_TOKENS = 8192
# Thinking budgets for OpenAI's effort levels, on models that take a token budget.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768, "max": 32768}
MIN_THINKING_BUDGET = 1024
NO_THINKING = ("none", "minimal")
SAMPLING = ("temperature", "top_p", "top_k")
_FORCED_TOOL = ("any", "tool")


def build_request(
    body: dict[str, Any], *, model: str, stream: bool, catalog: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body to POST to ``/v1/messages``. Fields with no Anthropic meaning (seed,
    penalties, logprobs...) are left behind; ``n`` > 1 cannot be honoured, so it is an error."""
    catalog = catalog or {}
    if (body.get("n") or 1) != 1:
        raise BadRequest("Anthropic models return one choice: 'n' must be 1", param="n")
    system, messages = convert_messages(body.get("messages"))
    if not messages:
        raise BadRequest("an Anthropic model needs at least one user or assistant message", param="messages")
    request: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if system:
        request["system"] = system
    stop = stop_sequences(body.get("stop"))
    if stop:
        request["stop_sequences"] = stop
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    if isinstance(body.get("cache_control"), dict):  # Anthropic's automatic prompt caching
        request["cache_control"] = body["cache_control"]
    tools = convert_tools(body.get("tools"))
    if tools:
        request["tools"] = tools
        choice = convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice:
            request["tool_choice"] = choice
    output_config = _output_format(body.get("response_format"))

    max_tokens = _max_tokens(body, catalog)
    thinking, effort = thinking_config(body, catalog)
    if thinking and not _thinking_allowed(request):
        thinking, effort = None, None
    if thinking:
        request["thinking"] = thinking
        max_tokens = _room_for_budget(thinking, max_tokens, catalog.get("max_output_tokens"))
        if effort:
            output_config["effort"] = effort
    if not thinking and catalog.get("supports_sampling_params") is not False:
        # Extended thinking only runs at Anthropic's own sampling settings, and some models
        # take none at all: the request would be refused, so these stay behind.
        request.update(_sampling(body))
    request["max_tokens"] = max_tokens
    if output_config:
        request["output_config"] = output_config
    return request


def _max_tokens(body: dict[str, Any], catalog: Mapping[str, Any]) -> int:
    limit = body.get("max_completion_tokens")
    if limit is None:  # absent or an explicit null: the older name still counts
        limit = body.get("max_tokens")
    if limit is None:
        limit = catalog.get("max_output_tokens") or DEFAULT_MAX_TOKENS
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise BadRequest("'max_tokens' must be a positive integer", param="max_tokens")
    return limit


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    params = {name: body[name] for name in SAMPLING if body.get(name) is not None}
    if "temperature" in params and "top_p" in params:
        # Current Claude models refuse both at once; temperature is the one clients mean.
        del params["top_p"]
    if isinstance(params.get("temperature"), (int, float)) and params["temperature"] > 1:
        params["temperature"] = 1.0  # OpenAI's scale goes to 2, Anthropic's ends at 1
    return params


def thinking_config(body: dict[str, Any], catalog: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the ``thinking`` object, an ``output_config.effort``) the client asked for, if any."""
    given = body.get("thinking")
    if given is not None:
        if not isinstance(given, dict):
            raise BadRequest("'thinking' must be an object", param="thinking")
        return (None, None) if given.get("type") == "disabled" else (dict(given), None)
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise BadRequest("'reasoning_effort' must be a string", param="reasoning_effort")
    if effort is None or effort in NO_THINKING:
        return None, None
    if effort not in THINKING_BUDGETS:
        raise BadRequest(
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh", param="reasoning_effort"
        )
    if catalog.get("supports_adaptive_thinking"):
        # Newer models decide their own thinking depth (and the newest refuse a fixed
        # budget); effort is how much they may spend.
        return {"type": "adaptive"}, _adaptive_effort(str(effort), catalog)
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}, None


def _adaptive_effort(effort: str, catalog: Mapping[str, Any]) -> str:
    if effort == "xhigh" and not catalog.get("supports_xhigh_reasoning_effort"):
        return "high"
    if effort == "max" and not catalog.get("supports_max_reasoning_effort"):
        return "high"
    return effort


def _thinking_allowed(request: dict[str, Any]) -> bool:
    """Anthropic refuses thinking when a tool call is forced, when the answer is prefilled,
    and when the last assistant turn called tools without its thinking block (clients that
    drop ``thinking_blocks``, or a conversation begun on another model). Answering without
    thinking beats failing."""
    if request.get("tool_choice", {}).get("type") in _FORCED_TOOL:
        return False
    if request["messages"][-1]["role"] == "assistant":
        return False
    last = next((t["content"] for t in reversed(request["messages"]) if t["role"] == "assistant"), None)
    if last and any(b["type"] == "tool_use" for b in last):
        return bool(last[0]["type"] in ("thinking", "redacted_thinking"))
    return True


def _room_for_budget(thinking: dict[str, Any], max_tokens: int, cap: Any) -> int:
    """Thinking counts inside max_tokens and must leave room for the answer, so the budget
    goes on top of the answer room the client asked for (within the model's output limit)."""
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < max_tokens:
        return max_tokens
    total = budget + max_tokens
    if isinstance(cap, int) and cap > MIN_THINKING_BUDGET and total > cap:
        total = cap
        if budget >= total:
            thinking["budget_tokens"] = max(MIN_THINKING_BUDGET, total // 2)
    return total


def convert_tools(tools: Any) -> list[dict[str, Any]]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{index}] must be an object", param=f"tools[{index}]")
        if tool.get("type") != "function":
            out.append(tool)  # Anthropic's own tools (web search, code execution) go as given
            continue
        function = tool.get("function")
        if not isinstance(function, dict) or not function.get("name"):
            raise BadRequest(f"tools[{index}] needs a function object with a name", param=f"tools[{index}]")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest(
                f"tools[{index}].function.parameters must be a JSON schema object", param=f"tools[{index}]"
            )
        schema = dict(parameters or {"properties": {}})
        schema.setdefault("type", "object")
        converted: dict[str, Any] = {"name": function["name"], "input_schema": schema}
        if function.get("description") is not None:
            converted["description"] = function["description"]
        if isinstance(tool.get("cache_control"), dict):
            converted["cache_control"] = tool["cache_control"]
        out.append(converted)
    return out


def convert_tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    converted: dict[str, Any] | None
    if choice is None:
        converted = None
    elif choice in ("auto", "none"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise BadRequest("'tool_choice' names no function", param="tool_choice")
        converted = {"type": "tool", "name": name}
    elif isinstance(choice, dict) and choice.get("type") in ("auto", "any", "tool", "none"):
        converted = dict(choice)  # already Anthropic's shape
    else:
        raise BadRequest("'tool_choice' must be auto, none, required or a function", param="tool_choice")
    if parallel is False and (converted or {}).get("type") != "none":
        converted = {**(converted or {"type": "auto"}), "disable_parallel_tool_use": True}
    return converted


def _output_format(response_format: Any) -> dict[str, Any]:
    """A JSON schema becomes Anthropic's structured output; bare JSON mode has no equivalent
    there (the prompt has to ask for JSON), so it is left behind."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise BadRequest("'response_format.json_schema.schema' must be an object", param="response_format")
    return {"format": {"type": "json_schema", "schema": schema}}
