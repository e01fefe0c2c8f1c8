"""OpenAI-style stream chunks from providers that stray from the spec: what a chunk asks of the
relay (inspect_chunk, for relaying events without re-encoding them) and how it is brought to what
OpenAI clients read (normalize_chunk, normalize_message). The two must agree: whatever
normalisation rewrites, inspection flags as ACT."""

from __future__ import annotations

from typing import Any

import orjson

# What one walk over a parsed event finds (see inspect_chunk).
ACT, TOKEN, FINISH = 1, 2, 4


def one_object(event: bytes) -> bool:
    """One ``data:`` line holding a JSON object: an event that can be relayed as it is."""
    return event.startswith(b"data: {") and event.endswith(b"}") and b"\n" not in event


def inspect_chunk(chunk: Any) -> int:
    """What a parsed event asks of the relay, in one walk: ACT when the relay must act on it
    (a usage report, an error, Groq's x_groq, or what normalize_chunk rewrites: Perplexity's
    done object, content arrays, ``reasoning``, tool calls), TOKEN when it carries generated
    output (as carries_token counts it) and FINISH when a choice finishes: one walk over the
    choices for every event, instead of one for each question; tests/test_sse_passthrough.py
    holds the three to the same answers."""
    if not isinstance(chunk, dict):
        return ACT
    flags = 0
    if (
        chunk.get("usage") is not None  # "usage": null is inert
        or "error" in chunk
        or "x_groq" in chunk
        or chunk.get("object") == "chat.completion.done"
    ):
        flags = ACT
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            return ACT
        if choice.get("finish_reason"):
            flags |= FINISH
        delta = choice.get("delta")
        if isinstance(delta, dict) and (
            "reasoning" in delta or "tool_calls" in delta or isinstance(delta.get("content"), list)
        ):
            flags |= ACT
        body = delta or choice
        if isinstance(body, dict) and (
            body.get("content") or body.get("text") or body.get("reasoning_content") or body.get("tool_calls")
        ):
            flags |= TOKEN
    return flags


def finishes(item: Any) -> bool:
    return isinstance(item, dict) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in item.get("choices") or ()
    )


def normalize_chunk(chunk: dict[str, Any], raw_usage: dict[str, Any] | None) -> None:
    if chunk.get("object") == "chat.completion.done":
        chunk["object"] = "chat.completion.chunk"
    if raw_usage is not None and "usage" not in chunk:
        chunk["usage"] = raw_usage
    for choice in chunk.get("choices") or ():
        normalize_message(choice.get("delta"))


def normalize_message(message: Any) -> None:
    """Bring a message or delta to the fields OpenAI clients read."""
    if not isinstance(message, dict):
        return
    content = message.get("content")
    if isinstance(content, list):
        text, thinking = _flatten(content)
        message["content"] = text
        if thinking and not message.get("reasoning_content"):
            message["reasoning_content"] = thinking
    reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning and not message.get("reasoning_content"):
        message["reasoning_content"] = reasoning
    for tool_call in message.get("tool_calls") or ():
        if isinstance(tool_call, dict) and tool_call.get("id") and not tool_call.get("type"):
            tool_call["type"] = "function"
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), dict):
            function["arguments"] = orjson.dumps(function["arguments"]).decode()


def _flatten(parts: list[Any]) -> tuple[str, str]:
    """Mistral's content arrays: text parts, and thinking parts holding text parts."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking.extend(p["text"] for p in inner if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "".join(text), "".join(thinking)
