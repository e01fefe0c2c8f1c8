"""An Anthropic client's request to Anthropic: the body as the client wrote it (only the model
name is the resolved one), the reply as Anthropic sent it. The relay reads only what it needs:
usage from message_start and message_delta, errors, and whether the message ended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from app.adapters.base import Call
from app.adapters.failures import error_from_payload, load_json
from app.adapters.relayed import relay
from app.adapters.wire import SSEvent
from app.formats.anthropic_reply import error_status, merge_usage, usage_from_anthropic
from app.internal import Reply, Usage

if TYPE_CHECKING:
    from app.adapters.anthropic import AnthropicAdapter

# Messages fields that count_tokens refuses: they shape the answer, not the prompt.
NOT_COUNTED = frozenset({"max_tokens", "stream", "stop_sequences", "temperature", "top_p", "top_k", "metadata"})


async def send(adapter: AnthropicAdapter, call: Call, headers: dict[str, str]) -> Reply:
    assert call.native is not None
    provider = adapter.provider
    content = orjson.dumps({**call.native, "model": call.model, "stream": call.stream})
    url = provider.base_url + "/v1/messages"
    if not call.stream:
        data = load_json(provider, await adapter.http.post(provider, url, content, headers))
        if not isinstance(data, dict) or data.get("type") != "message":
            payload = data if isinstance(data, dict) and "error" in data else {"error": {"message": f"{data!r:.200}"}}
            raise error_from_payload(provider, payload, error_status(payload))
        usage = data.get("usage")
        return Reply(body=data, usage=usage_from_anthropic(usage) if isinstance(usage, dict) else None, native=True)
    opened = await adapter.http.stream(provider, url, content, headers)
    return Reply(stream=relay(provider.name, opened.event_batches(), _Reader(adapter)))


class _Reader:
    """Usage from message_start (counted at once, so a client that leaves mid-stream still has
    its prompt recorded) and message_delta (cumulative, over message_start's)."""

    def __init__(self, adapter: AnthropicAdapter) -> None:
        self.provider = adapter.provider
        self.start: dict[str, Any] = {}
        self.finished = False

    def __call__(self, event: SSEvent) -> tuple[Usage | None, bool]:
        data = event.data.strip()  # real streams pad their data lines with spaces
        payload = load_json(self.provider, data) if data else {}
        if not isinstance(payload, dict):
            return None, False
        kind = payload.get("type")
        if event.event == "error" or kind == "error":
            raise error_from_payload(self.provider, payload, error_status(payload))
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage")
            self.start = usage if isinstance(usage, dict) else {}
            return usage_from_anthropic(self.start), False
        if kind == "message_delta":
            self.finished = True
            final = payload.get("usage")
            return usage_from_anthropic(merge_usage(self.start, final if isinstance(final, dict) else {})), False
        return None, kind == "content_block_delta"
