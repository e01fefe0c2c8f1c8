"""Images for upstreams that want bytes: data URLs are decoded, http(s) URLs are fetched
(only then, with a size cap and a timeout, and by default only from public addresses: the
URL comes from the caller, and the bytes go to a model that can be asked to read them back).
The host is looked up once and the connection made to the address that was checked, so a
name that resolves elsewhere a moment later (DNS rebinding) changes nothing."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from app.adapters.transport import UpstreamClient
from app.errors import BadRequest
from app.formats.images import sniff_mime


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


async def image_base64(http: httpx.AsyncClient, url: str, limits: ImageLimits) -> tuple[str, str]:
    """(mime type, base64) of an image given as a data URL or an http(s) URL."""
    if url.startswith("data:"):
        return parse_data_url(url)
    data, mime = await _fetch(http, url, limits)
    encoded = base64.b64encode(bytes(data)).decode()
    if not mime.startswith("image/"):
        mime = sniff_mime(encoded)
    return mime, encoded


async def _fetch(http: httpx.AsyncClient, url: str, limits: ImageLimits) -> tuple[bytearray, str]:
    """The body and content type at ``url``; redirects are followed here, each hop checked."""
    for _ in range(MAX_REDIRECTS + 1):
        if not url.startswith(("http://", "https://")):
            raise BadRequest(f"unsupported image URL {url[:60]!r}: use https:// or a base64 data URL")
        address = None if limits.private_networks else await _public_address(url)
        try:
            if isinstance(http, UpstreamClient) and http.proxy_for(url) is None:
                # Connected to the address just checked: a second lookup could give another (DNS rebinding).
                timeouts: dict[str, float | None] = dict.fromkeys(("connect", "read", "pool"), limits.timeout)
                reply = await http.pool.request(
                    "GET", url, {"accept": "image/*"}, timeouts=timeouts, connect_to=address
                )
                chunks = reply.iter_chunks()
                try:
                    found = await _hop(url, reply.status, reply.headers.get, chunks, limits)
                finally:
                    await chunks.aclose()
            else:  # another client (tests) or through a proxy: the proxy resolves the host itself
                async with http.stream("GET", url, timeout=limits.timeout, follow_redirects=False) as response:
                    found = await _hop(url, response.status_code, response.headers.get, response.aiter_bytes(), limits)
        except httpx.HTTPError as exc:
            raise BadRequest(f"fetching image {url[:120]} failed: {type(exc).__name__}") from exc
        if not isinstance(found, str):
            return found
        url = found  # a redirect
    raise BadRequest(f"fetching image {url[:120]} failed: more than {MAX_REDIRECTS} redirects")


async def _hop(
    url: str, status: int, header: Callable[[str], str | None], chunks: AsyncIterator[bytes], limits: ImageLimits
) -> tuple[bytearray, str] | str:
    """One reply: the body and content type, or the URL a redirect points to."""
    location = header("location")
    if status in (301, 302, 303, 307, 308) and location:
        return urljoin(url, location)
    if status >= 400:
        raise BadRequest(f"fetching image {url[:120]} failed: HTTP {status}")
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limits.max_bytes:
            raise BadRequest(f"image {url[:120]} is larger than {limits.max_bytes} bytes")
    return data, (header("content-type") or "").split(";")[0].strip()


async def _public_address(url: str) -> str:
    """One of the addresses the URL's host resolves to, after a 400 unless every one of them
    is public (loopback, private, link-local and reserved ranges are the relay's own network)."""
    host = urlsplit(url).hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BadRequest(f"fetching image {url[:120]} failed: its host does not resolve") from None
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not ip.is_global:
            raise BadRequest(
                f"image URL {url[:120]} points to a non-public address ({ip}); the relay fetches images "
                "from public addresses only (IMAGE_FETCH_PRIVATE=true allows the others)"
            )
    if not found:
        raise BadRequest(f"fetching image {url[:120]} failed: its host does not resolve")
    return str(found[0][4][0])


def decoded_size(b64: str) -> int:
    try:
        return len(base64.b64decode(b64, validate=False))
    except (binascii.Error, ValueError):
        raise BadRequest("an image is not valid base64") from None
