"""Token estimates for when the provider reports no usage: a client that hung up before the
final usage event, or a server that never sends one (llama.cpp streams, for instance).

Rows built from estimates say so (``usage_reported`` is false). The output estimate counts the
streamed pieces that carried text, which OpenAI-style servers send one token at a time. The
input estimate is the common four-characters-per-token rule over the prompt's text, plus what a
chat template adds: a few tokens around each message (role and turn markers), the turn that
primes the reply, and the tools' definitions, which templates render into the prompt. Images,
audio and files are not counted: their price depends on the model, and no guess is better.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.internal import Usage

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # role and turn markers around each message
REPLY_PRIMING = 3  # the assistant turn the template opens for the reply
TOOL_OVERHEAD = 8  # the wrapping of each tool's definition
TOOL_CHARS_PER_TOKEN = 6  # JSON's punctuation and repeated keys pack densely into tokens
# Parts of a message that are not text the model reads as text.
_NOT_TEXT = frozenset({"type", "id", "image_url", "input_audio", "file", "cache_control", "signature"})


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(v) for v in value)
    if isinstance(value, dict):
        return sum(_text_length(v) for k, v in value.items() if k not in _NOT_TEXT)
    return 0


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def _message_tokens(message: Any) -> int:
    if not isinstance(message, dict):
        return 0
    text = _text_length(message.get("content")) + _text_length(message.get("name"))
    for call in message.get("tool_calls") or ():  # the calls the model made, rendered back into the prompt
        text += _text_length(call.get("function")) if isinstance(call, dict) else 0
    return MESSAGE_OVERHEAD + _tokens(text)


def prompt_tokens(body: dict[str, Any]) -> int:
    """The input tokens of a request in the internal (OpenAI) form: a chat's messages with
    their template overhead and tools, or a completion's prompt, or an embedding's input."""
    messages = body.get("messages")
    if isinstance(messages, list):
        if not any(_message_tokens(m) > MESSAGE_OVERHEAD for m in messages):
            return 0  # nothing to read: a model load (Ollama's empty prompt), no prompt at all
        total = sum(_message_tokens(m) for m in messages) + REPLY_PRIMING
        tools = body.get("tools")
        if isinstance(tools, list):
            total += sum(-(-len(orjson.dumps(tool)) // TOOL_CHARS_PER_TOKEN) + TOOL_OVERHEAD for tool in tools)
        return total
    return _tokens(_text_length(body.get("prompt")) + _text_length(body.get("input")))


def usage_so_far(usage: Usage, body: dict[str, Any], pieces: int) -> Usage:
    """The provider's report, or without one the estimate (what the usage row will record)."""
    return usage if usage.reported else Usage(input=prompt_tokens(body), output=pieces)
