"""Images travel as data URLs in OpenAI messages and as bare base64 in Ollama's."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.errors import BadRequest

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),
)


def image_url(part: dict[str, Any]) -> str:
    """The URL of an ``image_url`` content part."""
    image = part.get("image_url")
    return str(image.get("url", "") if isinstance(image, dict) else image or "")


def image_urls(messages: Any) -> list[str]:
    """Every image URL in the messages, once each, so an adapter can fetch them before translating."""
    urls: list[str] = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            url = image_url(part) if isinstance(part, dict) and part.get("type") == "image_url" else None
            if url and url not in urls:
                urls.append(url)
    return urls


def sniff_mime(b64: str) -> str:
    try:
        head = base64.b64decode(b64[:24] + "=" * (-len(b64[:24]) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise BadRequest("an image is not valid base64") from None
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    return "image/png"


def data_url(b64: str) -> str:
    return f"data:{sniff_mime(b64)};base64,{b64}"


def base64_of(url: str) -> str:
    """The base64 payload of a data URL; remote URLs can't reach a server that wants bytes."""
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if sep and header.endswith(";base64"):
            return payload
        raise BadRequest("image data URLs must be base64-encoded")
    raise BadRequest("this model's server accepts inline images only: send the image as a base64 data URL")
