"""What the Providers & models pages and their JSON API share: input errors, numbers written
the way people write prices, links to a model, and keeping secrets out of what is shown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import falcon
import falcon.asgi

from app.pricing.rates import as_decimal

PER_MILLION = Decimal(1_000_000)


class Invalid(Exception):
    """Input an admin has to correct: field -> message ("" for the whole form)."""

    def __init__(self, errors: Mapping[str, str], status: int = 400) -> None:
        self.errors = dict(errors)
        self.status = status
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        return "; ".join(f"{field}: {message}" if field else message for field, message in self.errors.items())

    def payload(self) -> dict[str, Any]:
        title = "conflict" if self.status == 409 else "invalid input"
        return {"error": title, "detail": self.summary, "errors": self.errors}


def plain(value: Decimal | int | None) -> str | None:
    """A decimal as people write it: no exponent, no trailing zeros."""
    if value is None:
        return None
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def per_million(rate: Any) -> str | None:
    """A catalog rate per token as USD per million tokens."""
    value = rate if isinstance(rate, Decimal) else as_decimal(rate)
    return None if value is None else plain(value * PER_MILLION)


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, (int, float)) else value
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def model_path(provider: str, model: str) -> str:
    """The detail page of a model (ids may hold '/', ':' and the like)."""
    return f"/providers/models/{quote(provider, safe='')}/{quote(model, safe='/:@')}"


def custom_path(name: str) -> str:
    return f"/providers/custom/{quote(name, safe='')}"


def redact(message: str | None, secret: str | None) -> str | None:
    """Never let a key through, even when a provider echoes it in an error."""
    if message is None or not secret:
        return message
    return message.replace(secret, "[redacted]")


def safe_url(url: str) -> str:
    """A base URL without credentials or query (which may carry a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def read_json(req: falcon.asgi.Request) -> dict[str, Any]:
    body = await req.get_media(default_when_empty=None)
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="expected a JSON object")
    return body
