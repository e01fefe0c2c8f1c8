"""Parts of the internal form (OpenAI's chat format) that several providers' translations share:
reading a request's limits, JSON format and tool call arguments, and a reply's nested objects;
building a reply's envelope, tool calls, usage object, web sources and embedding lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.errors import BadRequest
from app.internal import Usage


def generation_fields(body: Mapping[str, Any], names: Mapping[str, str], limit: str, stop: str) -> dict[str, Any]:
    """The sampling fields that are set (renamed by ``names``), the output limit as ``limit`` and
    the stop sequences, always a list, as ``stop``: a provider's names for them."""
    out = {provider: body[name] for name, provider in names.items() if body.get(name) is not None}
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:  # absent or an explicit null: the older name still counts
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        out[limit] = max_tokens
    sequences = stop_sequences(body.get("stop"))
    if sequences:
        out[stop] = sequences
    return out


def stop_sequences(value: Any) -> list[str]:
    """``stop`` as a list: one string or a list of strings (the spec's two forms), else a 400."""
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise BadRequest("'stop' must be a string or a list of strings", param="stop")


def json_format(response_format: Any) -> Any:
    """What a ``response_format`` asks for, in one value as Ollama's ``format`` has it: None (free
    text), ``"json"`` (any JSON) or the JSON schema the answer must follow."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else "json"
    return None


def call_arguments(function: Mapping[str, Any], name: Any) -> Any:
    """A tool call's arguments as data: a JSON string parsed, an object as it is, none as ``{}``."""
    raw = function.get("arguments")
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"tool call arguments of {name!r} are not valid JSON") from None


def details(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object of a provider's reply (``prompt_tokens_details``, ``error`` and the like);
    a null (or worse) counts as none."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def envelope(reply_id: Any, obj: str, created: Any, model: Any, choices: list[Any]) -> dict[str, Any]:
    """A reply or chunk around its choices, with its keys in the order OpenAI sends them."""
    return {"id": reply_id, "object": obj, "created": created, "model": model, "choices": choices}


def assistant_message(
    content: Any, reasoning: Any = None, tool_calls: Any = None, thinking: Any = None
) -> dict[str, Any]:
    """An assistant message or delta; reasoning, thinking blocks and tool calls only when there are some."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    if thinking:
        message["thinking_blocks"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def tool_call(call_id: Any, name: Any, arguments: str) -> dict[str, Any]:
    """A whole function call as a message's (or, with an ``index`` in front, a delta's) tool call."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object: its prompt counts every prompt token, cached ones included."""
    prompt = usage.prompt_total
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input + usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def source_fields(sources: dict[str, str]) -> dict[str, Any]:
    """Web pages (url -> title, first seen first) as the top-level ``citations`` and
    ``search_results``; nothing when there are none."""
    if not sources:
        return {}
    return {
        "citations": list(sources),
        "search_results": [{"title": title, "url": url} for url, title in sources.items()],
    }


def embedding_list(vectors: list[Any], model: Any, prompt_tokens: int) -> dict[str, Any]:
    """An embeddings reply: one ``embedding`` object per input, in order."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
