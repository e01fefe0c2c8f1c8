"""Chat messages from OpenAI's shape to the conversation of Anthropic's Messages API.

Anthropic keeps system text out of the conversation, wants content as typed blocks, carries
tool calls as ``tool_use`` blocks of the assistant turn and their results as ``tool_result``
blocks at the head of the next user turn, and rejects empty turns and empty text blocks.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.errors import BadRequest
from app.formats.images import sniff_mime

# Anthropic accepts only these image types; anything else is labelled by its magic bytes.
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# tool_use ids must match ^[a-zA-Z0-9_-]+$; ids minted by other providers may not.
_NOT_ID = re.compile(r"[^a-zA-Z0-9_-]")
# Blocks Anthropic wants at the head of a turn: thinking before the answer it led to, tool
# results before anything the user adds after them.
_LEADING = frozenset({"thinking", "redacted_thinking", "tool_result"})


def convert_messages(messages: Any) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The top-level ``system`` and the alternating user/assistant turns of an OpenAI chat."""
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a list", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system += content_blocks(message.get("content"), index, text_only=True)
            continue
        if role == "user":
            blocks = content_blocks(message.get("content"), index)
        elif role == "assistant":
            blocks = assistant_blocks(message, index)
        elif role == "tool":
            blocks, role = [tool_result(message, index)], "user"
        else:
            raise BadRequest(
                f"messages[{index}]: role {role!r} cannot be sent to an Anthropic model", param=f"messages[{index}]"
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            # OpenAI sends one message per tool result; Anthropic wants them in one user turn.
            merged = turns[-1]["content"] + blocks
            turns[-1]["content"] = sorted(merged, key=lambda b: b.get("type") not in _LEADING)
        else:
            turns.append({"role": role, "content": blocks})
    _trim_prefill(turns)
    return _system_value(system), turns


def _system_value(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    """Several system messages are joined, never dropped; blocks stay apart only when one
    carries a cache breakpoint, which a joined string could not hold."""
    if not blocks:
        return None
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


def _trim_prefill(turns: list[dict[str, Any]]) -> None:
    """A final assistant turn is a prefill, which Anthropic refuses to end in whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    if blocks and blocks[-1].get("type") == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1] = {**blocks[-1], "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


def content_blocks(content: Any, index: int, *, text_only: bool = False) -> list[dict[str, Any]]:
    """OpenAI content (a string or a list of parts) as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list", param=f"messages[{index}]")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            block: dict[str, Any] = {"type": "text", "text": str(part.get(kind) or "")}
        elif kind == "image_url" and not text_only:
            image = part.get("image_url")
            block = image_block(str(image.get("url") if isinstance(image, dict) else image))
        elif kind == "file" and not text_only:
            block = document_block(part.get("file"), index)
        else:
            raise BadRequest(
                f"messages[{index}]: content part {kind!r} cannot be sent to an Anthropic model here",
                param=f"messages[{index}].content",
            )
        if block["type"] == "text" and not block["text"].strip():
            continue
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def image_block(url: str) -> dict[str, Any]:
    """Inline images travel as base64; URLs go as URLs, which Anthropic fetches itself."""
    if url.startswith("data:"):
        media_type, data = _data_url(url)
        if media_type == "image/jpg":
            media_type = "image/jpeg"
        if media_type not in _IMAGE_TYPES:
            media_type = sniff_mime(data)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"unsupported image URL {url[:60]!r}: use https:// or a base64 data URL")


def document_block(file: Any, index: int) -> dict[str, Any]:
    """OpenAI's inline ``file`` part; Anthropic reads PDFs, and knows nothing of OpenAI file ids."""
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data:
        raise BadRequest(
            f"messages[{index}]: Anthropic models take files inline (file_data), not by file id",
            param=f"messages[{index}].content",
        )
    media_type, payload = _data_url(data) if data.startswith("data:") else ("application/pdf", data)
    if media_type != "application/pdf":
        raise BadRequest(f"messages[{index}]: Anthropic models read PDF files, not {media_type}")
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": payload}}


def _data_url(url: str) -> tuple[str, str]:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise BadRequest("data URLs must look like data:<mime>;base64,<data>")
    return header[5:].removesuffix(";base64").lower(), payload


def assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """Thinking first (Anthropic checks it was the model's own, by signature), then the text,
    then the tool calls."""
    blocks = [b for b in map(_thinking_block, message.get("thinking_blocks") or ()) if b]
    blocks += content_blocks(message.get("content"), index, text_only=True)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise BadRequest(f"messages[{index}]: a tool call needs a function name", param=f"messages[{index}]")
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id(call.get("id"), index),
                "name": function["name"],
                "input": _arguments(function, index),
            }
        )
    return blocks


def _thinking_block(block: Any) -> dict[str, Any] | None:
    """Only what Anthropic itself produced can go back: signed thinking, or redacted data."""
    if not isinstance(block, dict):
        return None
    if block.get("type") == "thinking" and block.get("signature"):
        return {"type": "thinking", "thinking": str(block.get("thinking") or ""), "signature": block["signature"]}
    if block.get("type") == "redacted_thinking" and block.get("data"):
        return {"type": "redacted_thinking", "data": block["data"]}
    return None


def _arguments(function: dict[str, Any], index: int) -> dict[str, Any]:
    raw = function.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BadRequest(
            f"messages[{index}]: the arguments of tool call {function.get('name')!r} must be a JSON object",
            param=f"messages[{index}]",
        )
    return parsed


def tool_result(message: dict[str, Any], index: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(message.get("tool_call_id"), index)}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = content_blocks(content, index)
        if parts:
            block["content"] = parts
    return block


def tool_id(value: Any, index: int) -> str:
    """The same id on both ends of a call, made acceptable to Anthropic the same way."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"messages[{index}]: a tool call or tool result needs its id", param=f"messages[{index}]")
    return _NOT_ID.sub("_", value)
