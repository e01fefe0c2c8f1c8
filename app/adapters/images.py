"""Images for upstreams that want bytes: data URLs are decoded, http(s) URLs are fetched
(only then, with a size cap and a timeout)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import httpx

from app.errors import BadRequest
from app.formats.images import sniff_mime


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 10.0


def parse_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,...`` -> (mime type, base64 payload)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise BadRequest("image data URLs must look like data:<mime>;base64,<data>")
    mime = header[5:].removesuffix(";base64") or sniff_mime(payload)
    return mime, payload


async def image_base64(http: httpx.AsyncClient, url: str, limits: ImageLimits) -> tuple[str, str]:
    """(mime type, base64) of an image given as a data URL or an http(s) URL."""
    if url.startswith("data:"):
        return parse_data_url(url)
    if not url.startswith(("http://", "https://")):
        raise BadRequest(f"unsupported image URL {url[:60]!r}: use https:// or a base64 data URL")
    try:
        async with http.stream("GET", url, timeout=limits.timeout, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise BadRequest(f"fetching image {url[:120]} failed: HTTP {response.status_code}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limits.max_bytes:
                    raise BadRequest(f"image {url[:120]} is larger than {limits.max_bytes} bytes")
            mime = response.headers.get("content-type", "").split(";")[0].strip()
    except httpx.HTTPError as exc:
        raise BadRequest(f"fetching image {url[:120]} failed: {type(exc).__name__}") from exc
    encoded = base64.b64encode(bytes(data)).decode()
    if not mime.startswith("image/"):
        mime = sniff_mime(encoded)
    return mime, encoded


def decoded_size(b64: str) -> int:
    try:
        return len(base64.b64decode(b64, validate=False))
    except (binascii.Error, ValueError):
        raise BadRequest("an image is not valid base64") from None
