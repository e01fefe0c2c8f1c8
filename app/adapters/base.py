"""What every upstream adapter is: a translation between the internal request/reply and one
provider API family, in the spirit of httpx's two-method transports.

Adapters never touch the database or Falcon, and never price anything.
"""

from __future__ import annotations

import abc
import email.utils
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from app.adapters.http1_reply import Headers
from app.adapters.images import ImageLimits
from app.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.internal import Reply
from app.providers import Provider


@dataclass(frozen=True, slots=True)
class Call:
    """One request for an adapter to carry out."""

    model: str  # the provider's own model id
    kind: str  # chat | completion | embedding
    body: dict[str, Any]  # internal (OpenAI) form
    stream: bool
    request_id: str
    native: dict[str, Any] | None = None  # the client's own body, when it spoke Ollama
    native_endpoint: str | None = None  # e.g. /api/generate
    catalog: Mapping[str, Any] | None = None  # the model's catalog entry (limits, capabilities), if known
    passthrough: bool = False  # the client takes OpenAI SSE bytes as the upstream sent them (Frames)


class Adapter(abc.ABC):
    """Carries calls to one provider."""

    def __init__(self, provider: Provider, http: httpx.AsyncClient, images: ImageLimits | None = None) -> None:
        self.provider = provider
        self.http = http
        self.images = images or ImageLimits()

    @abc.abstractmethod
    async def send(self, call: Call) -> Reply:
        """Send a call upstream; return the whole reply or a stream of internal chunks."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook, like httpx's transports)
        """Release what this adapter holds (the shared HTTP client is closed by its owner)."""

    async def list_models(self) -> list[dict[str, Any]]:
        """The provider's own model list, for discovery; adapters without one return []."""
        return []


@contextmanager
def upstream_errors(provider: Provider) -> Iterator[None]:
    """Turn transport failures into the relay's upstream errors, naming the provider."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise upstream_error(provider, exc) from exc


def upstream_error(provider: Provider, exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{provider.name}: timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx.ConnectError, httpx.NetworkError)):
        return UpstreamUnavailable(f"{provider.name}: cannot reach {provider.base_url} ({exc})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return UpstreamProtocolError(f"{provider.name}: broken response ({exc})")
    return UpstreamError(f"{provider.name}: {exc}")


def error_from_body(
    provider: Provider, status: int, body: bytes, headers: Mapping[str, str] | Headers | None = None
) -> UpstreamStatusError:
    """Build the error for a provider's error response, keeping its message, its status and
    how long it asked us to wait (``Retry-After``)."""
    message, type_, code, param = _describe(body)
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
    code = error.get("code")
    type_ = error.get("type")
    param = error.get("param")
    return (
        message,
        type_ if isinstance(type_, str) else None,
        code if isinstance(code, str) else None,
        param if isinstance(param, str) else None,
    )


async def open_stream(http: httpx.AsyncClient, provider: Provider, request: httpx.Request) -> httpx.Response:
    """Send a streaming request; an error status is read whole and raised."""
    with upstream_errors(provider):
        response = await http.send(request, stream=True)
        if response.status_code >= 400:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            raise error_from_body(provider, response.status_code, body, response.headers)
    return response


async def iter_body(provider: Provider, response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The raw bytes of a streamed response; the connection is closed however this ends."""
    try:
        with upstream_errors(provider):
            async for chunk in response.aiter_bytes():
                yield chunk
    finally:
        await response.aclose()


def load_json(provider: Provider, data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        snippet = data[:200] if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        raise UpstreamProtocolError(f"{provider.name}: not JSON: {snippet!r}") from exc


def is_json_response(response: httpx.Response) -> bool:
    return is_json_type(response.headers.get("content-type", ""))


def is_json_type(content_type: str) -> bool:
    return "json" in content_type and "ndjson" not in content_type
