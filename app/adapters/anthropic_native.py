"""An Anthropic client's request to Anthropic: the body as the client wrote it (only the model
name is the resolved one), the reply as Anthropic sent it. The relay reads only what it needs:
usage from message_start and message_delta, errors, and whether the message ended."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from app.adapters.base import Call
from app.adapters.failures import error_from_payload, load_json
from app.adapters.wire import SSEvent, parse_block
from app.errors import UpstreamError, UpstreamProtocolError
from app.formats.anthropic_reply import error_status, merge_usage, usage_from_anthropic
from app.internal import Frames, Reply, StreamItem

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
    return Reply(stream=_frames(adapter, opened.event_batches()))


def _payload(adapter: AnthropicAdapter, event: SSEvent) -> dict[str, Any]:
    data = event.data.strip()  # real streams pad their data lines with spaces
    payload = load_json(adapter.provider, data) if data else {}
    if not isinstance(payload, dict):
        return {}
    if event.event == "error" or payload.get("type") == "error":
        raise error_from_payload(adapter.provider, payload, error_status(payload))
    return payload


async def _frames(
    adapter: AnthropicAdapter, batches: AsyncGenerator[list[bytes | SSEvent], None]
) -> AsyncGenerator[StreamItem, None]:
    start: dict[str, Any] = {}
    finished = False
    try:
        async for batch in batches:
            relayed: list[bytes] = []
            tokens = 0
            for block in batch:
                events = parse_block(block) if isinstance(block, bytes) else [block]
                for event in events:
                    try:
                        payload = _payload(adapter, event)
                    except UpstreamError:
                        if relayed:  # what came before the error goes first
                            yield Frames(b"".join(relayed), tokens)
                        raise
                    kind = payload.get("type")
                    if kind == "message_start":
                        usage = (payload.get("message") or {}).get("usage")
                        start = usage if isinstance(usage, dict) else {}
                        # Counted now, so a client that leaves mid-stream still has its prompt recorded.
                        yield usage_from_anthropic(start)
                    elif kind == "message_delta":
                        finished = True
                        final = payload.get("usage")
                        yield usage_from_anthropic(merge_usage(start, final if isinstance(final, dict) else {}))
                    tokens += kind == "content_block_delta"
                relayed.append(block + b"\n\n" if isinstance(block, bytes) else _framed(block))
            yield Frames(b"".join(relayed), tokens)
        if not finished:
            raise UpstreamProtocolError(f"{adapter.provider.name}: the stream ended before the message did")
    finally:
        await batches.aclose()


def _framed(event: SSEvent) -> bytes:
    head = f"event: {event.event}\n" if event.event else ""
    return (head + "".join(f"data: {line}\n" for line in event.data.split("\n")) + "\n").encode()
