"""Authentication and tag extraction: who a request is, and who its cost is attributed to.

With ``REQUIRE_API_KEY`` the request must carry a valid relay key (``Authorization: Bearer`` or
``x-api-key``), or it gets a 401 in its own dialect. Tags, by priority: the ``X-Proxy-Tag``
header, then a ``model@tag`` suffix (always stripped from the model name, even when the header
wins), then the relay key's own tags, then (without a relay key) the bearer token itself, or
the ``x-api-key`` Anthropic clients send instead. A comma-separated list gives several tags;
each is trimmed, checked and de-duplicated. A bad tag in the header or the suffix is the
caller's error; a token that isn't a valid tag, or looks like a provider's secret, is simply
not used, so secrets never land in the usage table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from app.errors import AuthenticationError
from app.internal import Reply
from app.keys import PREFIX, KeyInfo
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.services import Services
from app.tagging import bearer_tags, parse_tags, split_model_tag


def presented_key(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip()


def token_header(headers: Mapping[str, str]) -> str:
    """The Authorization header, or Anthropic clients' ``x-api-key`` in its place."""
    if headers.get("authorization") or not headers.get("x-api-key"):
        return headers.get("authorization", "")
    return "Bearer " + headers["x-api-key"].strip()


def authenticate(services: Services, headers: Mapping[str, str]) -> KeyInfo | None:
    """The relay key a request presents, if valid; with REQUIRE_API_KEY, a 401 without one."""
    key = presented_key(headers)
    info = services.keys.check(key) if key.startswith(PREFIX) else None
    if info is None and services.settings.require_api_key:
        # One message for missing, unknown, revoked and expired keys: no oracle for guessing.
        raise AuthenticationError(
            "a valid relay API key is required (Authorization: Bearer rk-... or x-api-key: rk-...)"
        )
    return info


class TagStage:
    name: ClassVar[str] = "tags"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        services = ctx.services
        self.services = services

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        key = authenticate(self.services, ex.headers)
        assign_tags(ex, key)
        if key is not None:
            ex.state["api_key"] = key.id
            ex.state["api_key_name"] = key.name
        return await call_next(ex)


def assign_tags(ex: Exchange, key: KeyInfo | None) -> None:
    """The exchange's tags, by priority; the ``@tag`` suffix leaves the model name, in the body
    sent on and in the row's requested model alike."""
    model = ex.body.get("model")
    suffix = ""
    if isinstance(model, str):
        model, suffix = split_model_tag(model)
        ex.body["model"] = model
        ex.requested_model = model
    header = ex.headers.get("x-proxy-tag", "")
    if header.strip():
        ex.tags = parse_tags(header, source="the X-Proxy-Tag header")
    elif suffix:
        ex.tags = parse_tags(suffix, source="the model name")
    elif key is not None:
        ex.tags = list(key.tags)
    else:
        ex.tags = bearer_tags(token_header(ex.headers))
