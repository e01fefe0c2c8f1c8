"""Parts of the internal form (OpenAI's chat format) that every provider's reply is built from:
the envelope of a reply or chunk, tool calls, the usage object, web sources and embedding lists."""

from __future__ import annotations

from typing import Any

from app.internal import Usage


def envelope(reply_id: Any, obj: str, created: Any, model: Any, choices: list[Any]) -> dict[str, Any]:
    """A reply or chunk around its choices, with its keys in the order OpenAI sends them."""
    return {"id": reply_id, "object": obj, "created": created, "model": model, "choices": choices}


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
