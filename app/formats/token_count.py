"""An estimate of a request's input tokens, for ``count_tokens`` (a Messages body) and
``responses/input_tokens`` (a Responses body, counted in the internal chat form) towards
models whose provider has no counting endpoint.

Clients such as Claude Code decide by this count when to compact a conversation: a count too
low lets the prompt outgrow the model and fail, a count too high only compacts a little early.
So every part is counted on the high side: three bytes of UTF-8 per token (English runs nearer
four characters per token, code and other scripts nearer three), a few tokens around each
message and tool, the system prompt a provider adds when tools are offered, each image at the
size Anthropic scales images down to, and each PDF page as text and an image.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD = 4  # role and turn markers around each message
TOOL_OVERHEAD = 8  # the wrapping of each tool's definition
TOOLS_PROMPT = 350  # the system text a provider adds when a request offers tools
IMAGE_TOKENS = 1600  # an image at the largest size Anthropic keeps (about 1.15 megapixels)
PDF_PAGE_TOKENS = 3000  # a page's text plus the page as an image
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def _text(value: str) -> int:
    return -(-len(value.encode()) // BYTES_PER_TOKEN)


def _json(value: Any) -> int:
    return -(-len(orjson.dumps(value)) // BYTES_PER_TOKEN)


def _pdf_pages(data: str) -> int:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return 1
    return max(1, len(_PDF_PAGE.findall(raw)))


def _block(block: Any) -> int:
    if isinstance(block, str):
        return _text(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return _text(str(block.get("text") or ""))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source: dict[str, Any] = block["source"] if isinstance(block.get("source"), dict) else {}
        if source.get("type") == "text":
            return _text(str(source.get("data") or ""))
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return PDF_PAGE_TOKENS * _pdf_pages(source["data"])
        return PDF_PAGE_TOKENS
    if kind == "thinking":
        return _text(str(block.get("thinking") or ""))
    if kind == "tool_use":
        return _text(str(block.get("name") or "")) + _json(block.get("input") or {}) + TOOL_OVERHEAD
    if kind == "tool_result":
        return _content(block.get("content")) + TOOL_OVERHEAD
    return _json(block)  # anything else counts as what it weighs


def _content(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block(b) for b in content)
    return _block(content) if content is not None else 0


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Messages body (system, tools and every message), counted high."""
    total = _content(body.get("system"))
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    if tools:
        total += TOOLS_PROMPT + sum(_json(tool) + TOOL_OVERHEAD for tool in tools)
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += MESSAGE_OVERHEAD + _content(message.get("content"))
    return total


def _chat_part(part: Any) -> int:
    if not isinstance(part, dict):
        return _block(part)
    kind = part.get("type")
    if kind == "image_url":
        return IMAGE_TOKENS
    if kind == "file":
        data = str((part.get("file") or {}).get("file_data") or "") if isinstance(part.get("file"), dict) else ""
        if data.startswith("data:application/pdf;base64,"):
            return PDF_PAGE_TOKENS * _pdf_pages(data.partition(",")[2])
        return PDF_PAGE_TOKENS
    return _block(part)  # text, and anything else by what it weighs


def estimate_chat_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a request in the internal (OpenAI chat) form, counted as high."""
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    total = TOOLS_PROMPT + sum(_json(tool) + TOOL_OVERHEAD for tool in tools) if tools else 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [content] if content is not None else []
        total += MESSAGE_OVERHEAD + sum(_chat_part(part) for part in parts)
        total += sum(_json(call) + TOOL_OVERHEAD for call in message.get("tool_calls") or ())
    return total
