"""A provider's failures as the relay's upstream errors: error replies, errors inside a stream,
failures of the aiohttp and httpx clients, replies that are not JSON or too large. Every text
taken from a provider loses the provider's key on the way (:func:`redact`).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import orjson

from app.errors import (
    UpstreamError,
    UpstreamLimitExceeded,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers import Provider


def redact(provider: Provider, text: str) -> str:
    """The text without the provider's key: some servers echo the key they were sent in an error."""
    if provider.api_key and provider.api_key in text:
        return text.replace(provider.api_key, "[redacted]")
    return text


def error_from_body(
    provider: Provider, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> UpstreamStatusError:
    """Build the error for a provider's error response, keeping its message (without the
    provider's key), its status and how long it asked us to wait (``Retry-After``)."""
    message, type_, code, param = (redact(provider, part) if part else part for part in _describe(body))
    error = UpstreamStatusError(
        f"{provider.name}: {message}" if message else f"{provider.name}: HTTP {status}",
        status=status,
        type=type_,
        code=code,
        param=param,
    )
    error.retry_after = retry_after(headers.get("retry-after") if headers else None)
    return error


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def error_from_payload(provider: Provider, payload: Any, status: int = 502) -> UpstreamStatusError:
    """An error object found inside a 200 stream (Groq, OpenRouter, Ollama do this)."""
    return error_from_body(provider, _status_of(payload, status), orjson.dumps(payload))


def _status_of(payload: Any, default: int) -> int:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        for key in ("status_code", "code", "status"):
            value = error.get(key)
            if isinstance(value, int) and 400 <= value <= 599:
                return value
    return default


def _describe(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:2000], None, None, None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, dict):
        return str(error)[:2000], None, None, None
    message = str(error.get("message") or error.get("detail") or "")
    raw = (error.get("metadata") or {}).get("raw") if isinstance(error.get("metadata"), dict) else None
    if raw:
        message = f"{message} ({raw})"
    type_, code, param = (value if isinstance(value := error.get(k), str) else None for k in ("type", "code", "param"))
    return message, type_, code, param


def load_json(provider: Provider, data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        snippet = data[:200] if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        raise UpstreamProtocolError(f"{provider.name}: not JSON: {redact(provider, snippet)!r}") from exc


def too_large(provider: Provider, size: int, limit: int) -> UpstreamLimitExceeded:
    return UpstreamLimitExceeded(
        f"{provider.name}: the reply is larger than {limit} bytes ({size} so far; UPSTREAM_MAX_BODY_BYTES)"
    )


@contextmanager
def upstream_errors(provider: Provider) -> Iterator[None]:
    """Failures of the aiohttp client (model calls) and of the httpx one (discovery, pulls) as
    the relay's upstream errors."""
    try:
        yield
    except (aiohttp.ClientError, httpx.HTTPError, TimeoutError) as exc:
        raise transport_error(provider, exc) from exc


def transport_error(provider: Provider, exc: BaseException) -> UpstreamError:
    detail = redact(provider, str(exc) or type(exc).__name__)
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):  # aiohttp's timeouts are TimeoutErrors
        return UpstreamTimeout(f"{provider.name}: timed out ({type(exc).__name__})")
    if isinstance(exc, (aiohttp.ClientConnectorError, httpx.NetworkError)):  # httpx's ConnectError is one
        return UpstreamUnavailable(f"{provider.name}: cannot reach {provider.base_url} ({detail})")
    if isinstance(exc, aiohttp.ClientResponseError) and ("Got more than" in detail or "Too many" in detail):
        return UpstreamLimitExceeded(
            f"{provider.name}: the reply's headers are too large or too many "
            f"(UPSTREAM_MAX_HEADER_BYTES, UPSTREAM_MAX_HEADERS): {detail}"
        )
    broken = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)
    if isinstance(exc, (*broken, httpx.RemoteProtocolError)):
        return UpstreamProtocolError(f"{provider.name}: broken response ({detail})")
    if isinstance(exc, aiohttp.ClientOSError):
        return UpstreamUnavailable(f"{provider.name}: connection failed ({detail})")
    return UpstreamError(f"{provider.name}: {detail}")
