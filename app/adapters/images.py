"""Images for upstreams that want bytes: data URLs are decoded, http(s) URLs are fetched
(only then, with a size cap and a deadline, and by default only from public addresses: the
URL comes from the caller, and the bytes go to a model that can be asked to read them back;
see :mod:`app.adapters.pinning`)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import aiohttp

from app.adapters.pinning import NonPublicAddress, check_public
from app.errors import BadRequest
from app.formats.images import sniff_mime

if TYPE_CHECKING:
    from app.adapters.client import UpstreamClient


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 10.0
    private_networks: bool = False  # fetch from loopback, private and link-local addresses too


MAX_REDIRECTS = 5


def parse_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,...`` -> (mime type, base64 payload)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise BadRequest("image data URLs must look like data:<mime>;base64,<data>")
    mime = header[5:].removesuffix(";base64") or sniff_mime(payload)
    return mime, payload


async def image_base64(http: UpstreamClient, url: str, limits: ImageLimits) -> tuple[str, str]:
    """(mime type, base64) of an image given as a data URL or an http(s) URL."""
    if url.startswith("data:"):
        return parse_data_url(url)
    try:
        async with asyncio.timeout(limits.timeout):  # for the whole download, redirects included
            data, mime = await _fetch(http, url, limits)
    except TimeoutError:
        raise BadRequest(f"fetching image {url[:120]} failed: not done within {limits.timeout:g} s") from None
    encoded = base64.b64encode(data).decode()
    if not mime.startswith("image/"):
        mime = sniff_mime(encoded)
    return mime, encoded


async def _fetch(http: UpstreamClient, url: str, limits: ImageLimits) -> tuple[bytes, str]:
    """The body and content type at ``url``; redirects are followed here, each hop checked."""
    for _ in range(MAX_REDIRECTS + 1):
        if not url.startswith(("http://", "https://")):
            raise BadRequest(f"unsupported image URL {url[:60]!r}: use https:// or a base64 data URL")
        proxy = http.proxy_for(url)
        # Through a proxy the proxy resolves the name: only the direct path can be pinned.
        pinned = not limits.private_networks and proxy is None
        session = http.pinned_session if pinned else http.session
        try:
            if pinned:
                _refuse_private_literal(url, http)
            async with session.get(url, headers={"accept": "image/*"}, proxy=proxy, allow_redirects=False) as reply:
                location = reply.headers.get("location")
                if reply.status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                if reply.status >= 400:
                    raise BadRequest(f"fetching image {url[:120]} failed: HTTP {reply.status}")
                if (reply.content_length or 0) > limits.max_bytes:
                    raise _too_large(url, limits)
                data = bytearray()
                async for chunk in reply.content.iter_any():
                    data += chunk
                    if len(data) > limits.max_bytes:
                        raise _too_large(url, limits)
                return bytes(data), (reply.headers.get("content-type") or "").split(";")[0].strip()
        except (aiohttp.ClientError, NonPublicAddress) as exc:
            cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
            if isinstance(cause, NonPublicAddress):
                raise BadRequest(
                    f"image URL {url[:120]} points to a non-public address ({cause}); the relay fetches images "
                    "from public addresses only (IMAGE_FETCH_PRIVATE=true allows the others)"
                ) from None
            raise BadRequest(f"fetching image {url[:120]} failed: {type(exc).__name__}") from exc
    raise BadRequest(f"fetching image {url[:120]} failed: more than {MAX_REDIRECTS} redirects")


def _refuse_private_literal(url: str, http: UpstreamClient) -> None:
    """An address written into the URL is never looked up, so the resolver cannot check it."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    check_public(host, host, http.public)


def _too_large(url: str, limits: ImageLimits) -> BadRequest:
    return BadRequest(f"image {url[:120]} is larger than {limits.max_bytes} bytes")
