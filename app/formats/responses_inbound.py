"""A Responses API request (``POST /v1/responses``) as the internal (OpenAI chat) request, for
any upstream that does not speak the Responses API itself (those get the client's own body).

``instructions`` and system/developer messages become system messages, ``function_call`` and
``custom_tool_call`` items the assistant turn's ``tool_calls``, their outputs ``tool`` messages.
Custom (freeform) tools become function tools taking one string, ``input``; tools grouped in a
namespace become functions named ``<namespace>__<name>``. Built-in tools, stored state and items
no chat API has (``previous_response_id``, ``item_reference``, a web search call) are left out
and noted: such a request can go only to a provider that speaks the Responses API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import BadRequest, Untranslatable

NAMESPACE_SEPARATOR = "__"
CUSTOM_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
# Fields with the same meaning in Chat Completions. prompt_cache_key stays behind: a caching hint
# that only OpenAI's own chat API knows, and the rest may refuse.
PASSED_ON = ("temperature", "top_p", "user", "service_tier", "parallel_tool_calls")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


@dataclass(slots=True)
class Translated:
    body: dict[str, Any]  # the internal request
    stream: bool
    untranslatable: Untranslatable | None = None
    custom_tools: frozenset[str] = frozenset()  # function names that stand for custom tools
    namespaces: frozenset[str] = frozenset()
    problems: list[Untranslatable] = field(default_factory=list)


def internal_request(body: Any) -> Translated:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise BadRequest("'model' is required", param="model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a model's name", param="model")
    stream = body.get("stream")
    if stream is None:  # the spec's default, and null means it too
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    out = Translated({"model": model, "messages": []}, stream)
    if body.get("previous_response_id"):
        out.problems.append(
            Untranslatable(
                "previous_response_id: the relay does not store conversations; send the whole input "
                "(with store: false) to this model",
                param="previous_response_id",
            )
        )
    if body.get("instructions"):
        out.body["messages"].append({"role": "system", "content": _text_of(body["instructions"], "instructions")})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadRequest("'input' must be a string or a non-empty list of items", param="input")
    out.body["tools"] = _tools(body.get("tools"), out)
    if not out.body["tools"]:
        del out.body["tools"]
    for index, item in enumerate(items):
        try:
            _item(item, f"input[{index}]", out)
        except Untranslatable as problem:
            out.problems.append(problem)
    _options(body, out)
    out.untranslatable = out.problems[0] if out.problems else None
    return out


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    raise BadRequest(f"{where} must be a string or a list of text parts", param=where)


def _parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    """A message's content as internal content: text stays a string, parts become parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of parts", param=where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file" and isinstance(part.get("file_data"), str):
            parts.append({"type": "file", "file": {"file_data": part["file_data"], "filename": part.get("filename")}})
        else:
            raise Untranslatable(f"{where}.content[{index}]: a {kind} part can only go to a Responses API model")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _assistant(out: Translated) -> dict[str, Any]:
    """The assistant turn that tool calls join: the last message if it is one, else a new one."""
    messages = out.body["messages"]
    if messages and messages[-1]["role"] == "assistant" and "tool_call_id" not in messages[-1]:
        return messages[-1]  # type: ignore[no-any-return]
    messages.append({"role": "assistant", "content": None})
    return messages[-1]  # type: ignore[no-any-return]


def _item(item: Any, where: str, out: Translated) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an object", param=where)
    kind = item.get("type", "message")
    messages = out.body["messages"]
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise BadRequest(f"{where}: role must be user, assistant, system or developer", param=where)
        content = _parts(item.get("content"), where)
        messages.append({"role": "system" if role == "developer" else role, "content": content})
    elif kind in ("function_call", "custom_tool_call"):
        name = str(item.get("name") or "")
        if item.get("namespace"):
            name = f"{item['namespace']}{NAMESPACE_SEPARATOR}{name}"
        if kind == "function_call":
            arguments = str(item.get("arguments") or "{}")
        else:
            arguments = orjson.dumps({"input": item.get("input")}).decode()
        call = {
            "id": str(item.get("call_id") or ""),
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        _assistant(out).setdefault("tool_calls", []).append(call)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        content = _parts(output, where) if isinstance(output, list) else str(output or "")
        messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": content})
    elif kind == "reasoning":
        return  # the model's own notes: only a Responses API model can read them back
    else:
        raise Untranslatable(f"{where}: {kind} items can only go to a Responses API model", param=where)


def _function(tool: dict[str, Any], out: Translated, prefix: str = "") -> dict[str, Any]:
    name = prefix + str(tool.get("name") or "")
    if tool.get("type") == "custom":
        out.custom_tools = out.custom_tools | {name}
        parameters: Any = CUSTOM_PARAMETERS
    else:
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None and tool.get("type") != "custom":
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tools(tools: Any, out: Translated) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    converted: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("function", "custom"):
            converted.append(_function(tool, out))
        elif kind == "namespace" and isinstance(tool.get("tools"), list):
            out.namespaces = out.namespaces | {str(tool.get("name"))}
            prefix = f"{tool.get('name')}{NAMESPACE_SEPARATOR}"
            converted += [_function(t, out, prefix) for t in tool["tools"] if isinstance(t, dict)]
        else:
            message = f"tools[{index}]: the built-in tool {kind!r} runs only on a Responses API model"
            out.problems.append(Untranslatable(message, param=f"tools[{index}]"))
    return converted


def _options(body: dict[str, Any], out: Translated) -> None:
    internal = out.body
    for name in PASSED_ON:
        if body.get(name) is not None:
            internal[name] = body[name]
    if isinstance(body.get("max_output_tokens"), int):
        internal["max_tokens"] = body["max_output_tokens"]  # the name every chat API takes (quirks rename it)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        internal["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice in ("auto", "none", "required"):
        internal["tool_choice"] = choice
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") in EFFORTS:
        internal["reasoning_effort"] = reasoning["effort"]
    text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(text_format, dict) and text_format.get("type") == "json_schema":
        schema = {k: text_format[k] for k in ("name", "schema", "strict", "description") if k in text_format}
        internal["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(text_format, dict) and text_format.get("type") == "json_object":
        internal["response_format"] = {"type": "json_object"}
    if out.stream:
        internal["stream"] = True
        internal["stream_options"] = {"include_usage": True}  # response.completed reports usage
