"""Rows for inference requests refused before the pipeline ran: a body that is not JSON (415),
one the dialect cannot read (400), one over the size limit (413), one whose body would pass
MAX_INFLIGHT_BODY_BYTES (503). The pipeline's cost stage files a row for everything after that
point; this files one, outcome ``client_error`` (``overloaded`` for the 503), for what never
reached it (or a bug before it, outcome ``error``), so every inference request leaves exactly
one row."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from app.errors import RelayError
from app.pipeline.core import Exchange
from app.pipeline.stages.cost import file_row, row_of
from app.pipeline.stages.tags import assign_tags, authenticate
from app.services import Services
from app.stores.rate_cards import RateCards


class Refusals:
    """Files the row of an inference request refused before the pipeline saw it."""

    def __init__(self, services: Services, inference: Mapping[str, tuple[str, str]]) -> None:
        self.services = services
        self.inference = (
            inference  # path -> (dialect, kind) of the endpoints that run the pipeline; no other files a row
        )
        self.cards = RateCards()

    def record(
        self,
        *,
        path: str,
        request_id: str,
        headers: Mapping[str, str],
        client: str,
        body: Any,
        error: RelayError,
    ) -> bool:
        """Whether a row was filed: only an inference request has one."""
        endpoint = self.inference.get(path.rstrip("/") or "/")
        if endpoint is None or not request_id:
            return False
        dialect, kind = endpoint
        model = body.get("model") if isinstance(body, dict) else None
        ex = Exchange(
            request_id=request_id,
            dialect=dialect,
            endpoint=path,
            kind=kind,
            body={"model": model} if isinstance(model, str) else {},
            stream=bool(body.get("stream")) if isinstance(body, dict) else False,
            headers=headers,
            client=client,
            requested_model=model if isinstance(model, str) else "",
        )
        self._tag(ex)
        ex.outcome = error.outcome
        ex.status = error.status
        ex.error = error.message
        ex.ended_at = ex.started
        file_row(self.services, row_of(ex, None, self.cards))
        return True

    def unread(self, scope: MutableMapping[str, Any], request_id: str, error: RelayError) -> bool:
        """The row of a request refused before its body was read (app/http/asgi.py), before Falcon saw it."""
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        client = scope.get("client") or ("", 0)
        return self.record(
            path=scope.get("path", ""), request_id=request_id, headers=headers, client=client[0], body=None, error=error
        )

    def _tag(self, ex: Exchange) -> None:
        """Tags as the tag stage reads them, when they can be read: a caller whose key is
        refused, or whose tags are malformed, gets a row without tags."""
        try:
            key = authenticate(self.services, ex.headers)
            assign_tags(ex, key)
        except RelayError:
            ex.tags = []
