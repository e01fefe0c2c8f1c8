"""Token estimates for when the provider reports no usage: a client that hung up before the
final usage event, or a server that never sends one (llama.cpp streams, for instance).

Rows built from estimates say so (``usage_reported`` is false). The output estimate counts the
streamed pieces that carried text, which OpenAI-style servers send one token at a time; the
input estimate is the common four-characters-per-token rule over the prompt's text.
"""

from __future__ import annotations

from typing import Any

from app.internal import Usage


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(v) for v in value)
    if isinstance(value, dict):
        return sum(_text_length(v) for k, v in value.items() if k in ("content", "text", "prompt", "input"))
    return 0


def prompt_tokens(body: dict[str, Any]) -> int:
    chars = _text_length(body.get("messages")) + _text_length(body.get("prompt")) + _text_length(body.get("input"))
    return (chars + 3) // 4


def usage_so_far(usage: Usage, body: dict[str, Any], pieces: int) -> Usage:
    """The provider's report, or without one the estimate (what the usage row will record)."""
    return usage if usage.reported else Usage(input=prompt_tokens(body), output=pieces)
