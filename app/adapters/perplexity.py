"""Perplexity's Agent API (``POST /v1/responses``, OpenAI's Responses format), which replaced
the Sonar chat completions API (retired 2026-09-27).

What the Responses spec defines is translated by :mod:`app.formats.responses_api`, and the
request (presets in place of models, Sonar's search options as the ``web_search`` tool, every
chat parameter translated or refused with a 400 that names it) by
:mod:`app.adapters.perplexity_request`. This module adds Perplexity's replies: ``search_results``
output items and stream events as the internal ``search_results``/``citations``, and usage
with cache writes, billed searches and the provider's own cost.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app.adapters import responses_native
from app.adapters.base import Adapter, Call
from app.adapters.client import Opened
from app.adapters.failures import error_from_payload, load_json
from app.adapters.perplexity_request import agent_request
from app.errors import BadRequest, UpstreamProtocolError, UpstreamStatusError
from app.formats.openai_chat import details, usage_body
from app.formats.responses_api import (
    FAILURE_EVENTS,
    TERMINAL_EVENTS,
    ChunkMaker,
    chat_body,
    function_names,
    read_output,
    usage_from_responses,
)
from app.internal import Reply, StreamItem, Usage, nanousd_of_reported, token_count

# Billing names of the search tools in usage.tool_calls_details.
SEARCH_TOOLS = ("search_web", "web_search")


def usage_from_agent(raw: dict[str, Any]) -> Usage:
    """Perplexity's ``input_tokens`` is the whole prompt, cache writes and reads included (the
    recording: 3007 = 3 + 1224 written + 1780 read). Writes are billed apart, so they go
    outside ``input`` as ``cache_write``; reads stay inside it as ``cached_input``."""
    usage = usage_from_responses(raw)
    prompt_details = details(raw, "input_tokens_details")
    written = min(token_count(prompt_details.get("cache_creation_input_tokens")), usage.input)
    usage.input -= written
    usage.cache_write = written
    read = token_count(prompt_details.get("cache_read_input_tokens")) or usage.cached_input
    usage.cached_input = min(read, usage.input)
    tools = raw.get("tool_calls_details")
    for name, detail in tools.items() if isinstance(tools, dict) else ():
        if name in SEARCH_TOOLS and isinstance(detail, dict):
            usage.web_search_requests += token_count(detail.get("invocation"))
    cost = raw.get("cost")
    total = cost.get("total_cost") if isinstance(cost, dict) and cost.get("currency", "USD") == "USD" else None
    usage.provider_cost_nanousd = nanousd_of_reported(total)
    return usage


def _usage_of(response: Any) -> Usage | None:
    raw = response.get("usage") if isinstance(response, dict) else None
    return usage_from_agent(raw) if isinstance(raw, dict) else None


class Sources:
    """Search results as the internal ``search_results`` and ``citations`` (their URLs, in
    order, so that an answer's ``[n]`` is ``citations[n-1]``)."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.cited: list[str] = []

    def add(self, results: Any) -> bool:
        """Take results; whether any was new (streams send each batch twice)."""
        seen = {(r.get("id"), r["url"]) for r in self.results}
        fresh = [r for r in results or () if isinstance(r, dict) and isinstance(r.get("url"), str)]
        fresh = [r for r in fresh if (r.get("id"), r["url"]) not in seen]
        self.results += fresh
        return bool(fresh)

    def fields(self) -> dict[str, Any]:
        urls = [r["url"] for r in self.results]
        urls += [u for u in self.cited if u not in urls]
        return {"search_results": list(self.results), "citations": urls} if urls else {}


def _search_results(event: dict[str, Any]) -> list[Any]:
    """The results in a stream event, a ``search_results`` output item or a whole response."""
    if event.get("type") == "response.reasoning.search_results":
        return list(event.get("results") or ())
    response = event.get("response")
    items = [event.get("item"), *(response.get("output") or () if isinstance(response, dict) else ())]
    return [
        r for i in items if isinstance(i, dict) and i.get("type") == "search_results" for r in i.get("results") or ()
    ]


class PerplexityAdapter(Adapter):
    dialect = "responses"  # the Agent API is a Responses API: its clients' bodies go as written

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if self.provider.api_key:
            headers["authorization"] = f"Bearer {self.provider.api_key}"
        return headers

    async def send(self, call: Call) -> Reply:
        if call.kind != "chat":
            # The Agent API has neither embeddings nor a bare-prompt completion endpoint: the
            # request is the caller's to change (400), not something this relay lacks (5xx).
            raise BadRequest(f"{self.provider.name}: Perplexity's Agent API serves chat only, not {call.kind}")
        url = self.provider.base_url + "/v1/responses"
        if call.dialect == "responses" and call.passthrough and call.native is not None:
            return await responses_native.send(self, call, self._headers(call.stream), url, _usage_of)
        content = orjson.dumps(agent_request(call))
        functions = function_names(call.body.get("tools"))
        if not call.stream:
            data = await self.http.post(self.provider, url, content, self._headers(False))
            return self._whole(load_json(self.provider, data), functions)
        opened = await self.http.stream(self.provider, url, content, self._headers(True))
        return Reply(stream=self._chunks(opened, functions))

    def _failure(self, payload: dict[str, Any]) -> UpstreamStatusError:
        """A failed or cancelled response (HTTP 200 with an ``error``), or an ``error`` event."""
        response = payload.get("response")
        error = response.get("error") if isinstance(response, dict) else payload.get("error")
        if not isinstance(error, dict):
            error = {k: payload[k] for k in ("message", "code", "type", "param") if k in payload}
        status = response.get("status") if isinstance(response, dict) else None
        error.setdefault("message", f"the response {status or 'failed'}")
        return error_from_payload(self.provider, {"error": error})

    def _whole(self, data: Any, functions: frozenset[str]) -> Reply:
        if not isinstance(data, dict) or not isinstance(data.get("output"), list):
            raise error_from_payload(self.provider, {"error": {"message": f"unexpected reply {data!r:.200}"}})
        if data.get("status") in ("failed", "cancelled"):
            raise self._failure({"response": data})
        out = read_output(data["output"], functions)
        body = chat_body(data, out)
        sources = Sources()
        sources.add(_search_results({"response": data}))
        sources.cited = out.cited_urls
        body.update(sources.fields())
        usage = _usage_of(data)
        if usage is not None:
            body["usage"] = usage_body(usage)
        return Reply(body=body, usage=usage)

    async def _chunks(self, opened: Opened, functions: frozenset[str]) -> AsyncGenerator[StreamItem, None]:
        maker = ChunkMaker(functions)
        sources = Sources()
        finished = False
        events = opened.sse()
        try:
            async for event in events:
                data = event.data.strip()
                if data == "[DONE]":
                    break
                payload = load_json(self.provider, data)
                if not isinstance(payload, dict):
                    continue
                kind = payload.get("type")
                usage = _usage_of(payload.get("response"))
                if kind in FAILURE_EVENTS or event.event == "error":
                    if usage is not None:
                        yield usage
                    raise self._failure(payload)
                chunks = maker.feed(payload)
                if sources.add(_search_results(payload)) and kind not in TERMINAL_EVENTS:
                    chunks.append(maker.chunk({}, **sources.fields()))
                finished = kind in TERMINAL_EVENTS
                if finished and chunks:  # the last chunk carries every source too
                    chunks[-1].update(sources.fields())
                for chunk in chunks:
                    yield chunk
                if finished:
                    if usage is not None:
                        yield usage
                    break
        finally:
            await events.aclose()
        if not finished:
            raise UpstreamProtocolError(f"{self.provider.name}: the stream ended before the response completed")
