"""Anthropic Messages replies as internal (OpenAI chat) replies: usage, stop reasons, errors,
and whole ``message`` bodies. The streamed form is in :mod:`app.formats.anthropic_stream`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.formats import openai_chat
from app.formats.openai_chat import details
from app.internal import Usage, token_count

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server tool loop paused: what came so far is a whole answer
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic's error types, for errors that arrive inside a 200 stream with no status.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,  # what Anthropic answers with as an HTTP status, too
}


# The counts that add up across a request's sampling iterations.
_ITERATION_COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def billed(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The usage a request is billed for. With server-side compaction a request samples more
    than once, and the top-level counts cover only the last iteration; ``iterations`` lists
    them all (the compaction's summary included), so their sum is what counts."""
    iterations = [i for i in raw.get("iterations") or () if isinstance(i, dict)]
    if not iterations:
        return raw
    summed: dict[str, Any] = {**raw}
    for name in _ITERATION_COUNTS:
        summed[name] = sum(token_count(i.get(name)) for i in iterations)
    if any("cache_creation" in i for i in iterations):
        one_hour = (details(i, "cache_creation").get("ephemeral_1h_input_tokens") for i in iterations)
        summed["cache_creation"] = {"ephemeral_1h_input_tokens": sum(map(token_count, one_hour))}
    return summed


def usage_from_anthropic(raw: Mapping[str, Any]) -> Usage:
    """Anthropic's ``input_tokens`` leaves out the cached prompt, which it reports as cache
    reads and writes beside it: the same split :class:`Usage` keeps."""
    raw = billed(raw)
    output = token_count(raw.get("output_tokens"))
    cache_write = token_count(raw.get("cache_creation_input_tokens"))
    return Usage(
        input=token_count(raw.get("input_tokens")),
        output=output,
        reasoning=min(token_count(details(raw, "output_tokens_details").get("thinking_tokens")), output),
        cache_read=token_count(raw.get("cache_read_input_tokens")),
        cache_write=cache_write,
        cache_write_1h=min(token_count(details(raw, "cache_creation").get("ephemeral_1h_input_tokens")), cache_write),
        web_search_requests=token_count(details(raw, "server_tool_use").get("web_search_requests")),
        service_tier=raw.get("service_tier") if isinstance(raw.get("service_tier"), str) else None,
        reported=True,
    )


def merge_usage(start: Mapping[str, Any], final: Mapping[str, Any]) -> dict[str, Any]:
    """message_delta's usage is cumulative but may leave out fields message_start had."""
    return {**start, **{k: v for k, v in final.items() if v is not None}}


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object, with the cache writes Anthropic bills apart beside the reads."""
    body = openai_chat.usage_body(usage)
    body["prompt_tokens_details"]["cache_write_tokens"] = usage.cache_write
    return body


def finish_reason(stop_reason: Any, saw_tool_calls: bool) -> str:
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not saw_tool_calls:
        return "stop"  # only server tools ran: the client has no call to answer
    return reason


def error_status(payload: Any) -> int:
    error = details(payload, "error") if isinstance(payload, dict) else {}
    return ERROR_STATUS.get(str(error.get("type")), 502)


def thinking_block(thinking: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    arguments = block.get("input")
    arguments = orjson.dumps(arguments if isinstance(arguments, dict) else {}).decode()
    return openai_chat.tool_call(str(block.get("id") or ""), str(block.get("name") or ""), arguments)


def add_sources(sources: dict[str, str], items: Any) -> bool:
    """Pages a web search found (a web_search_tool_result's content) or an answer cited (a
    text block's citations), kept as url -> title in first-seen order; whether any was new."""
    new = False
    for item in items if isinstance(items, list) else ():
        url = item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str) and url not in sources:
            sources[url] = str(item.get("title") or "")
            new = True
    return new


def chat_body(data: Mapping[str, Any], *, created: int) -> tuple[dict[str, Any], Usage | None]:
    """A whole Anthropic ``message`` as a ``chat.completion`` body, and its usage."""
    text: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    for block in data.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text") or ""))
            add_sources(sources, block.get("citations"))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            thinking.append(thinking_block(str(block.get("thinking") or ""), str(block.get("signature") or "")))
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "tool_use":
            calls.append(tool_call(block))
        elif kind == "web_search_tool_result":
            add_sources(sources, block.get("content"))
        # Anything else (server_tool_use, code execution results...) is work the provider did
        # itself; the text blocks already tell what came of it.
    message = openai_chat.assistant_message("".join(text) if text else None, "".join(reasoning), calls, thinking)
    raw_usage = data.get("usage")
    usage = usage_from_anthropic(raw_usage) if isinstance(raw_usage, dict) else None
    choice = {"index": 0, "message": message, "finish_reason": finish_reason(data.get("stop_reason"), bool(calls))}
    body = openai_chat.envelope(data.get("id"), "chat.completion", created, data.get("model", ""), [choice])
    body.update(openai_chat.source_fields(sources))
    if usage is not None:
        body["usage"] = usage_body(usage)
    return body, usage
