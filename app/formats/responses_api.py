"""OpenAI's Responses format (``POST /v1/responses``) to and from the internal chat format.

Only what the Responses specification itself defines lives here: chat messages as ``input``
items plus ``instructions``, function tools, the ``output`` items of a whole response, the
typed stream events, finish reasons and the token counts of ``usage``. Providers that speak
the format with additions of their own (Perplexity's Agent API) handle those on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import BadRequest
from app.formats import openai_chat
from app.internal import Usage, token_count

INSTRUCTION_ROLES = ("system", "developer")
TERMINAL_EVENTS = ("response.completed", "response.incomplete")
FAILURE_EVENTS = ("response.failed", "response.cancelled", "error")
_TEXT_DELTAS = ("response.output_text.delta",)
_REASONING_DELTAS = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")


def _plain_text(content: Any, where: str) -> str:
    """A message content that may hold only text (system, developer, assistant, tool)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    texts: list[str] = []
    for index, part in enumerate(content):
        if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
            raise BadRequest(f"{where}.content[{index}] must be a text part", param=f"{where}.content[{index}]")
        texts.append(part["text"])
    return "\n".join(texts)


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"type": "input_text", "text": content or ""}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise BadRequest(f"{where}.content[{index}] has no image URL", param=f"{where}.content[{index}]")
            converted = {"type": "input_image", "image_url": url}
            if isinstance(image, dict) and image.get("detail"):
                converted["detail"] = image["detail"]
            parts.append(converted)
        else:
            raise BadRequest(
                f"{where}.content[{index}]: content part {kind!r} cannot be sent to this model",
                param=f"{where}.content[{index}]",
            )
    return parts


def input_from_messages(messages: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """Chat messages as ``(instructions, input items)``: system and developer turns become the
    instructions; the reasoning text the relay emitted on earlier turns has no input form."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        role = message.get("role")
        content = message.get("content")
        if role in INSTRUCTION_ROLES:
            instructions.append(_plain_text(content, where))
        elif role == "user":
            items.append({"type": "message", "role": "user", "content": _user_parts(content, where)})
        elif role == "assistant":
            text = _plain_text(content, where)
            if text:
                items.append(
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
                )
            items.extend(_function_call_item(call, where) for call in message.get("tool_calls") or ())
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where} needs a 'tool_call_id'", param=f"{where}.tool_call_id")
            items.append({"type": "function_call_output", "call_id": call_id, "output": _plain_text(content, where)})
        else:
            raise BadRequest(f"{where}: role {role!r} cannot be sent to this model", param=f"{where}.role")
    return ("\n\n".join(instructions) if instructions else None), items


def _function_call_item(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise BadRequest(f"{where}.tool_calls entries need an id and a function name", param=f"{where}.tool_calls")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
    return {"type": "function_call", "call_id": call["id"], "name": function["name"], "arguments": arguments}


def tools_from_chat(tools: Any) -> list[dict[str, Any]]:
    """Chat function tools (``{"type": "function", "function": {...}}``) in the Responses shape,
    which lifts name, description, parameters and strict to the top; built-in tools pass as sent."""
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    out: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise BadRequest(f"tools[{index}] must be an object with a 'type'", param=f"tools[{index}]")
        if tool["type"] != "function":
            out.append(dict(tool))
            continue
        function = tool.get("function")
        if not isinstance(function, dict) or not function.get("name"):
            raise BadRequest(f"tools[{index}] needs a function name", param=f"tools[{index}].function")
        converted = {"type": "function", "name": function["name"]}
        converted.update({k: function[k] for k in ("description", "parameters", "strict") if k in function})
        out.append(converted)
    return out


def function_names(tools: Any) -> frozenset[str]:
    """The names of the client's own functions: only calls to these go back as tool calls."""
    names = set()
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


@dataclass
class Output:
    """What a response's ``output`` items say, in internal terms."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cited_urls: list[str] = field(default_factory=list)  # url_citation annotations


def read_output(items: Any, functions: frozenset[str]) -> Output:
    out = Output()
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    out.text += str(part.get("text") or "")
                    for note in part.get("annotations") or ():
                        url = note.get("url") if isinstance(note, dict) and note.get("type") == "url_citation" else None
                        if isinstance(url, str) and url not in out.cited_urls:
                            out.cited_urls.append(url)
        elif kind == "reasoning":
            out.reasoning += reasoning_text(item)
        elif kind == "function_call" and item.get("name") in functions:
            out.tool_calls.append(tool_call(item))
    return out


def reasoning_text(item: dict[str, Any]) -> str:
    """A reasoning item's own text, else its summary."""
    for key, part_type in (("content", "reasoning_text"), ("summary", "summary_text")):
        texts = [
            str(p.get("text") or "") for p in item.get(key) or () if isinstance(p, dict) and p.get("type") == part_type
        ]
        if texts:
            return "\n\n".join(texts)
    return ""


def tool_call(item: dict[str, Any]) -> dict[str, Any]:
    arguments = item.get("arguments")
    return openai_chat.tool_call(
        item.get("call_id") or item.get("id"), item.get("name"), arguments if isinstance(arguments, str) else "{}"
    )


def finish_reason(response: dict[str, Any], saw_tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"  # max_output_tokens
    return "tool_calls" if saw_tool_calls else "stop"


def chat_body(response: dict[str, Any], out: Output) -> dict[str, Any]:
    """A whole response as a ``chat.completion`` body (without usage or sources)."""
    content = out.text if out.text or not out.tool_calls else None
    message = openai_chat.assistant_message(content, out.reasoning, out.tool_calls)
    choice = {"index": 0, "message": message, "finish_reason": finish_reason(response, bool(out.tool_calls))}
    return openai_chat.envelope(
        response.get("id"), "chat.completion", response.get("created_at"), response.get("model"), [choice]
    )


def usage_from_responses(raw: dict[str, Any]) -> Usage:
    """The spec's token counts: ``input_tokens`` is the whole prompt, ``cached_tokens`` a part
    of it; ``output_tokens`` includes ``reasoning_tokens``."""
    prompt = token_count(raw.get("input_tokens"))
    output = token_count(raw.get("output_tokens"))
    cached = token_count(openai_chat.details(raw, "input_tokens_details").get("cached_tokens"))
    reasoning = token_count(openai_chat.details(raw, "output_tokens_details").get("reasoning_tokens"))
    return Usage(
        input=prompt,
        output=output,
        reasoning=min(reasoning, output),
        cached_input=min(cached, prompt),
        reported=True,
    )


class ChunkMaker:
    """Turns the spec's stream events into ``chat.completion.chunk`` dicts: a role chunk when
    the response is created, text and reasoning deltas, whole tool calls, and a last chunk
    with the finish reason on ``response.completed`` / ``response.incomplete``."""

    def __init__(self, functions: frozenset[str]) -> None:
        self.functions = functions
        self.meta: dict[str, Any] = {"id": None, "created": None, "model": None}
        self.started = False
        self.calls: dict[str, int] = {}  # call id -> tool call index

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**self.meta, "object": "chat.completion.chunk", "choices": [choice], **extra}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        response = event.get("response")
        chunks: list[dict[str, Any]] = []
        if isinstance(response, dict):
            self.meta = {
                "id": response.get("id") or self.meta["id"],
                "created": response.get("created_at") or self.meta["created"],
                "model": response.get("model") or self.meta["model"],
            }
        if not self.started:
            self.started = True
            chunks.append(self.chunk({"role": "assistant", "content": ""}))
        delta = event.get("delta")
        if kind in _TEXT_DELTAS and isinstance(delta, str) and delta:
            chunks.append(self.chunk({"content": delta}))
        elif kind in _REASONING_DELTAS and isinstance(delta, str) and delta:
            chunks.append(self.chunk({"reasoning_content": delta}))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            chunks.extend(self._call(event.get("item"), done=kind.endswith(".done")))
        elif kind in TERMINAL_EVENTS and isinstance(response, dict):
            chunks.append(self.chunk({}, finish_reason(response, bool(self.calls))))
        return chunks

    def _call(self, item: Any, *, done: bool) -> list[dict[str, Any]]:
        """A client function call, sent whole once its arguments are complete."""
        if not isinstance(item, dict) or item.get("type") != "function_call" or item.get("name") not in self.functions:
            return []
        call = tool_call(item)
        if call["id"] in self.calls or not (done or item.get("status") == "completed"):
            return []
        self.calls[call["id"]] = index = len(self.calls)
        return [self.chunk({"tool_calls": [{"index": index, **call}]})]
