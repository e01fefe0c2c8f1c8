"""A Responses API client's request to a provider that speaks the Responses API (OpenAI): the
body as the client wrote it (only the model name is the resolved one), the reply as the
provider sent it. The relay reads only the usage of the final response and the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from app.adapters.base import Adapter, Call
from app.adapters.failures import error_from_payload, load_json
from app.adapters.relayed import relay
from app.adapters.wire import SSEvent
from app.formats.responses_api import FAILURE_EVENTS, TERMINAL_EVENTS, usage_from_responses
from app.internal import Reply, Usage

_TOKEN_EVENTS = (
    "response.output_text.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
)


UsageOf = Callable[[Any], Usage | None]


def openai_usage(response: Any) -> Usage | None:
    """A final response's usage, with the web searches its output shows (each one is billed)."""
    raw = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(raw, dict):
        return None
    usage = usage_from_responses(raw)
    output = response.get("output") if isinstance(response.get("output"), list) else []
    usage.web_search_requests = sum(1 for i in output if isinstance(i, dict) and i.get("type") == "web_search_call")
    return usage


async def send(adapter: Adapter, call: Call, headers: dict[str, str], url: str, usage_of: UsageOf) -> Reply:
    assert call.native is not None
    provider = adapter.provider
    content = orjson.dumps({**call.native, "model": call.model, "stream": call.stream})
    if not call.stream:
        data = load_json(provider, await adapter.http.post(provider, url, content, headers))
        if not isinstance(data, dict) or data.get("object") != "response":
            payload = data if isinstance(data, dict) and "error" in data else {"error": {"message": f"{data!r:.200}"}}
            raise error_from_payload(provider, payload)
        return Reply(body=data, usage=usage_of(data), native=True)
    opened = await adapter.http.stream(provider, url, content, headers)
    return Reply(stream=relay(provider.name, opened.event_batches(), _Reader(adapter, usage_of)))


class _Reader:
    """Usage from the final response (completed or incomplete); failures raise."""

    def __init__(self, adapter: Adapter, usage_of: UsageOf) -> None:
        self.provider = adapter.provider
        self.usage_of = usage_of
        self.finished = False

    def __call__(self, event: SSEvent) -> tuple[Usage | None, bool]:
        data = event.data.strip()
        payload = load_json(self.provider, data) if data and data != "[DONE]" else {}  # Perplexity ends with [DONE]
        if not isinstance(payload, dict):
            return None, False
        kind = payload.get("type")
        if kind == "error":  # {"type": "error", "error": {"type", "code", "message", "param"}}
            raise error_from_payload(self.provider, {"error": payload.get("error") or payload})
        if kind in FAILURE_EVENTS:  # response.failed and response.cancelled carry the response's error
            failed = payload.get("response")
            raise error_from_payload(self.provider, {"error": (failed or {}).get("error") or payload})
        if kind in TERMINAL_EVENTS:
            self.finished = True
            return self.usage_of(payload.get("response")), False
        return None, kind in _TOKEN_EVENTS
