"""Chat messages and tool calls between OpenAI's shape and Ollama's."""

from __future__ import annotations

from typing import Any

import orjson

from app.errors import BadRequest
from app.formats.images import base64_of, data_url
from app.formats.openai_chat import call_arguments, tool_call


def messages_to_ollama(messages: list[Any]) -> list[dict[str, Any]]:
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        converted: dict[str, Any] = {"role": "system" if role == "developer" else role}
        text, images = _split_content(message.get("content"), index)
        converted["content"] = text
        if images:
            converted["images"] = images
        if message.get("reasoning_content"):
            converted["thinking"] = message["reasoning_content"]
        calls = []
        tool_calls = message.get("tool_calls") or []
        if not isinstance(tool_calls, list) or not all(isinstance(c, dict) for c in tool_calls):
            raise BadRequest(f"messages[{index}].tool_calls must be a list of objects", param=f"messages[{index}]")
        for call in tool_calls:
            function = call.get("function") or {}
            names_by_id[call.get("id", "")] = function.get("name", "")
            name = function.get("name")
            calls.append({"function": {"name": name, "arguments": call_arguments(function, name)}})
            if call.get("id"):
                calls[-1]["id"] = call["id"]
        if calls:
            converted["tool_calls"] = calls
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id:
                converted["tool_call_id"] = call_id
            name = message.get("name") or names_by_id.get(call_id or "")
            if name:
                converted["tool_name"] = name
        out.append(converted)
    return out


def _split_content(content: Any, index: int) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list", param=f"messages[{index}]")
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            images.append(base64_of(str(url)))
        else:
            raise BadRequest(
                f"messages[{index}]: content part {kind!r} cannot be sent to an Ollama model",
                param=f"messages[{index}].content",
            )
    return "\n".join(texts), images


def messages_from_ollama(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a list", param="messages")
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (id, name) of tool calls not yet answered
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{index}] needs a 'role'", param=f"messages[{index}]")
        converted: dict[str, Any] = {"role": message["role"]}
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise BadRequest(f"messages[{index}].content must be a string", param=f"messages[{index}]")
        images = message.get("images") or []
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise BadRequest(f"messages[{index}].images must be a list of base64 strings", param=f"messages[{index}]")
        if images:
            parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
            parts += [{"type": "image_url", "image_url": {"url": data_url(str(img))}} for img in images]
            converted["content"] = parts
        else:
            converted["content"] = content
        if message.get("thinking"):
            converted["reasoning_content"] = message["thinking"]
        # Request messages carry no stream "index" (strict providers reject unknown keys).
        calls = [
            {k: v for k, v in c.items() if k != "index"}
            for c in tool_calls_from_ollama(message.get("tool_calls"), prefix=f"call_{index}_")
        ]
        if calls:
            converted["tool_calls"] = calls
            if not content:
                converted["content"] = None
            pending += [(c["id"], c["function"]["name"]) for c in calls]
        if message["role"] == "tool":
            call_id = message.get("tool_call_id")
            if call_id:  # answered by id: no longer open for a result that names only the tool
                pending[:] = [p for p in pending if p[0] != call_id]
            converted["tool_call_id"] = call_id or _answer(pending, message.get("tool_name"))
        out.append(converted)
    return out


def _answer(pending: list[tuple[str, str]], name: str | None) -> str:
    """Ollama tool results may name only the tool: pair each with the oldest open call."""
    for position, (call_id, call_name) in enumerate(pending):
        if name is None or call_name == name:
            del pending[position]
            return call_id
    return "call_unmatched"


def tool_calls_from_ollama(calls: Any, *, prefix: str, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for offset, call in enumerate(c for c in calls or () if isinstance(c, dict)):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if arguments is None:  # missing, or null (a nil map in Ollama's Go)
            arguments = {}
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        call_id = call.get("id") or f"{prefix}{start + offset}"
        out.append({"index": start + offset, **tool_call(call_id, function.get("name", ""), arguments)})
    return out


def tool_calls_to_ollama(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            parsed = {"_raw": arguments}  # a truncated stream: keep what the model produced
        entry: dict[str, Any] = {"function": {"name": function.get("name", ""), "arguments": parsed}}
        if call.get("id"):
            entry["id"] = call["id"]
        out.append(entry)
    return out
