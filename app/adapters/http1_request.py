"""What :mod:`app.adapters.http1` writes: where a URL's request goes, and its request line and
headers."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterable
from typing import Any

import httpx

from app import __version__

USER_AGENT = f"llm-relay/{__version__}"
Origin = tuple[str, str, int]  # scheme, host, port


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[Origin, str, str]:
    """(origin, Host header, request target) of an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = host if port == default else f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), host_header, target


def request_head(method: str, target: str, host: str, headers: Any, body: bytes, decode: bool) -> bytes:
    """The request line and headers. Headers the caller gives win; a header that would end the
    line early (CR or LF in a name or value: a key pasted with its newline) is refused."""
    items: Iterable[tuple[str, str]] = headers.items() if hasattr(headers, "items") else headers
    lines = [f"{name}: {value}\r\n" for name, value in items]
    given = "".join(lines)
    if given.count("\n") != len(lines) or given.count("\r") != len(lines):
        raise httpx.LocalProtocolError("a header name or value contains a line break")
    lower = given.lower()
    extra = ""
    if not lower.startswith("host:") and "\nhost:" not in lower:
        extra += f"host: {host}\r\n"
    if (body or method in ("POST", "PUT", "PATCH")) and "content-length:" not in lower:
        extra += f"content-length: {len(body)}\r\n"
    if "user-agent:" not in lower:
        extra += f"user-agent: {USER_AGENT}\r\n"
    if decode and "accept-encoding:" not in lower:
        extra += "accept-encoding: gzip, deflate\r\n"
    return f"{method} {target} HTTP/1.1\r\n{extra}{given}\r\n".encode()
