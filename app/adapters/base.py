"""What every upstream adapter is: a translation between the internal request/reply and one
provider API family, in the spirit of httpx's two-method transports.

Adapters never touch the database or Falcon, and never price anything.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from app.adapters.failures import error_from_body, error_from_payload, load_json, upstream_errors
from app.adapters.images import ImageLimits
from app.internal import Reply
from app.providers import Provider

if TYPE_CHECKING:
    from app.adapters.client import UpstreamClient


@dataclass(frozen=True, slots=True)
class Call:
    """One request for an adapter to carry out."""

    model: str  # the provider's own model id
    kind: str  # chat | completion | embedding
    body: dict[str, Any]  # internal (OpenAI) form
    stream: bool
    request_id: str
    native: dict[str, Any] | None = None  # the client's own body, in its own dialect
    native_endpoint: str | None = None  # e.g. /api/generate, /v1/messages
    dialect: str = "openai"  # the client's: openai | ollama | anthropic
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's, lower-case names
    catalog: Mapping[str, Any] | None = None  # the model's catalog entry (limits, capabilities), if known
    passthrough: bool = False  # the client takes its own dialect's bytes as the upstream sent them (Frames)


class Adapter(abc.ABC):
    """Carries calls to one provider."""

    dialect: ClassVar[str | None] = None  # the inbound dialect whose bodies it can send as they are

    def speaks(self, dialect: str) -> bool:
        """Whether this provider takes a client's body of that dialect as it is (see Call.native)."""
        return dialect == self.dialect

    def __init__(self, provider: Provider, http: UpstreamClient, images: ImageLimits | None = None) -> None:
        self.provider = provider
        self.http = http
        self.images = images or ImageLimits()

    @abc.abstractmethod
    async def send(self, call: Call) -> Reply:
        """Send a call upstream; return the whole reply or a stream of internal chunks."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook, like httpx's transports)
        """Release what this adapter holds (the shared HTTP client is closed by its owner)."""

    async def count_tokens(self, call: Call) -> dict[str, Any] | None:
        """The provider's own count of a request's input tokens, where its API has one."""
        return None

    async def list_models(self) -> list[dict[str, Any]]:
        """The provider's own model list, for discovery; adapters without one return []."""
        return []

    def _json_headers(self, stream: bool, own: Mapping[str, str]) -> dict[str, str]:
        """A JSON request's headers: the provider's own (its key, its version) and, for a stream, SSE."""
        headers = {"content-type": "application/json", **own}
        if stream:
            headers["accept"] = "text/event-stream"
        return headers

    async def _objects(self, payloads: AsyncGenerator[bytes, None]) -> AsyncGenerator[dict[str, Any], None]:
        """The JSON objects of a stream's payloads (anything else is skipped); an object with an
        ``error`` is raised."""
        try:
            async for raw in payloads:
                data = load_json(self.provider, raw)
                if not isinstance(data, dict):
                    continue
                if "error" in data:
                    raise error_from_payload(self.provider, data)
                yield data
        finally:
            await payloads.aclose()

    async def _control(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A low-volume call (discovery, the admin's) on the httpx client; an error status is raised."""
        with upstream_errors(self.provider):
            response = await self.http.control.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise error_from_body(self.provider, response.status_code, response.content, response.headers)
        return response


def is_json_type(content_type: str) -> bool:
    return "json" in content_type and "ndjson" not in content_type
