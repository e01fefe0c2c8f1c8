"""An Anthropic Messages request as the internal (OpenAI chat) request, for any upstream that
is not Anthropic itself (Anthropic gets the client's own body, see the adapter).

System blocks become one system message, content blocks become content parts, ``tool_use``
blocks become the assistant turn's ``tool_calls`` and each ``tool_result`` block a ``tool``
message (its content a string or a list of blocks), thinking becomes ``reasoning_effort``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.errors import BadRequest, Untranslatable

# Thinking budgets as OpenAI's effort levels: the least level whose budget covers it.
EFFORT_BY_BUDGET = ((2048, "low"), (8192, "medium"))
# Anthropic's effort levels as the ones OpenAI-style APIs all take.
ADAPTIVE_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
SAMPLING_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop_sequences": "stop"}


def _fail(message: str, param: str | None = None) -> BadRequest:
    return BadRequest(message, param=param)


@dataclass(slots=True)
class Translated:
    body: dict[str, Any]  # the internal request
    stream: bool
    untranslatable: Untranslatable | None = None  # the first part no other API could take


def counted_request(body: Any) -> Translated:
    """A count_tokens body (a Messages body without max_tokens) checked and translated."""
    return internal_request(body, counting=True)


def _kept(items: list[Any], convert: Any, problems: list[Untranslatable]) -> list[Any]:
    """``convert(item, index)`` of each item, leaving out (and noting) what only Anthropic takes."""
    out: list[Any] = []
    for index, item in enumerate(items):
        try:
            out.append(convert(item, index))
        except Untranslatable as problem:
            problems.append(problem)
    return out


def internal_request(body: Any, *, counting: bool = False) -> Translated:
    """The internal chat request for a Messages body. Malformed input is a BadRequest at once;
    what only Anthropic can take is left out and noted in ``untranslatable``."""
    if not isinstance(body, dict):
        raise _fail("the request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise _fail("model: field required", "model")
    if not isinstance(model, str) or not model.strip():
        raise _fail("model: must be a model's name", "model")
    max_tokens = body.get("max_tokens", 1 if counting else None)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _fail("max_tokens: a positive integer is required", "max_tokens")
    stream = False if body.get("stream") is None else body["stream"]
    if not isinstance(stream, bool):
        raise _fail("stream: must be true or false", "stream")
    stream = stream and not counting
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("messages: a non-empty list is required", "messages")
    internal: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": []}
    system = system_text(body.get("system"))
    if system:
        internal["messages"].append({"role": "system", "content": system})
    problems: list[Untranslatable] = []
    for turned in _kept(messages, turn, problems):
        internal["messages"] += turned
    for name, target in SAMPLING_FIELDS.items():
        if body.get(name) is not None:
            internal[target] = body[name]
    tools = _kept(_list(body.get("tools"), "tools"), function_tool, problems)
    if tools:
        internal["tools"] = tools
    internal.update(tool_choice(body.get("tool_choice")))
    effort = effort_of(body.get("thinking"), body.get("output_config"))
    if effort:
        internal["reasoning_effort"] = effort
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user, str) and user:
        internal["user"] = user
    if stream:
        internal["stream"] = True
        internal["stream_options"] = {"include_usage": True}  # message_delta reports usage
    return Translated(internal, stream, problems[0] if problems else None)


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{name}: must be a list", name)
    return value


def system_text(system: Any) -> str:
    """The system prompt: a string, or text blocks joined (cache breakpoints mean nothing elsewhere)."""
    if system is None or isinstance(system, str):
        return system or ""
    blocks = _list(system, "system")
    if not all(isinstance(b, dict) and b.get("type") == "text" for b in blocks):
        raise _fail("system: only text blocks are allowed", "system")
    return "\n\n".join(str(b.get("text") or "") for b in blocks)


def turn(message: Any, index: int) -> list[dict[str, Any]]:
    """One Messages turn as one or more internal messages: a user turn's tool results come
    first, each as a ``tool`` message, then what else the user said. A system turn (Claude Code
    sends them mid-conversation) stays where it is."""
    where = f"messages.{index}"
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
        raise _fail(f"{where}: each message needs a role of user, assistant or system", where)
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "system":
        return [{"role": "system", "content": system_text(content)}]
    blocks = _list(content, f"{where}.content")
    if role == "assistant":
        return [assistant_message(blocks, where)]
    results = [tool_message(b, where) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    parts = [content_part(b, where) for b in blocks if not (isinstance(b, dict) and b.get("type") == "tool_result")]
    parts = [p for p in parts if p is not None]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def content_part(block: Any, where: str) -> dict[str, Any] | None:
    """A user content block as an internal content part."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return {"type": "text", "text": str(block.get("text") or "")}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _source_url(block, where)}}
    if kind == "document":
        source = block["source"] if isinstance(block.get("source"), dict) else {}
        if source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data") or "")}
        return {"type": "file", "file": {"file_data": _source_url(block, where)}}
    if kind in ("thinking", "redacted_thinking"):
        return None  # only an assistant's own turn carries thinking
    raise Untranslatable(f"{where}: content blocks of type {kind!r} can only be sent to Anthropic models", param=where)


def _source_url(block: dict[str, Any], where: str) -> str:
    source: dict[str, Any] = block["source"] if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return f"data:{source.get('media_type') or 'application/octet-stream'};base64,{source['data']}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise _fail(f"{where}: a {block.get('type')} needs a base64 or url source", where)


def assistant_message(blocks: list[Any], where: str) -> dict[str, Any]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {"name": str(block.get("name") or ""), "arguments": orjson.dumps(arguments).decode()},
                }
            )
        elif kind not in ("thinking", "redacted_thinking"):  # only Anthropic takes its thinking back
            raise Untranslatable(
                f"{where}: assistant blocks of type {kind!r} can only be sent to Anthropic models", param=where
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def tool_message(block: dict[str, Any], where: str) -> dict[str, Any]:
    """A tool_result block; its content is a string or a list of text (and image) blocks."""
    content = block.get("content")
    if isinstance(content, list):
        parts = [content_part(b, where) for b in content]
        texts = [p["text"] for p in parts if p is not None and p["type"] == "text"]
        content = "\n".join(texts) if len(texts) == len(parts) else [p for p in parts if p is not None]
    text = content if isinstance(content, (str, list)) else ""
    if block.get("is_error") and isinstance(text, str):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}


def function_tool(tool: Any, index: int) -> dict[str, Any]:
    where = f"tools.{index}"
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise _fail(f"{where}: each tool needs a name", where)
    if tool.get("type") not in (None, "custom"):
        raise Untranslatable(f"{where}: the server tool {tool['type']!r} runs only on Anthropic models", param=where)
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def tool_choice(choice: Any) -> dict[str, Any]:
    if choice is None:
        return {}
    kind = choice.get("type") if isinstance(choice, dict) else None
    mapped: dict[str, Any]
    if kind in ("auto", "none"):
        mapped = {"tool_choice": kind}
    elif kind == "any":
        mapped = {"tool_choice": "required"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        mapped = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise _fail("tool_choice: must be auto, any, none or a named tool", "tool_choice")
    if choice.get("disable_parallel_tool_use") is True:
        mapped["parallel_tool_calls"] = False
    return mapped


def effort_of(thinking: Any, output_config: Any = None) -> str | None:
    """Extended thinking as a reasoning effort: ``enabled`` by its budget; ``adaptive`` at the
    effort ``output_config`` names (medium if none)."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    if kind == "adaptive":
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        return ADAPTIVE_EFFORTS.get(effort, "medium") if isinstance(effort, str) else "medium"
    budget = thinking.get("budget_tokens") if kind == "enabled" else None
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _fail("thinking: type enabled with an integer budget_tokens, adaptive or disabled", "thinking")
    return next((effort for limit, effort in EFFORT_BY_BUDGET if budget <= limit), "high")
