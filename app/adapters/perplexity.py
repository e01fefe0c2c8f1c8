"""Perplexity's Agent API (``POST /v1/responses``, OpenAI's Responses format), which replaced
the Sonar chat completions API (retired 2026-09-27).

What the Responses spec defines is translated by :mod:`app.formats.responses_api`; this module
adds Perplexity's own parts: presets in place of models (Sonar names map to them), Sonar's
search options as the ``web_search`` tool, ``search_results`` output items and stream events
as the internal ``search_results``/``citations``, and usage with cache writes, billed searches
and the provider's own cost. The Agent API refuses unknown fields, so every chat parameter is
translated, or refused here with a 400 that names it (unless it is at a value that changes nothing).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Any

import orjson

from app.adapters.base import (
    Adapter,
    Call,
    error_from_body,
    error_from_payload,
    iter_body,
    load_json,
    open_stream,
    upstream_errors,
)
from app.adapters.wire import iter_sse
from app.errors import BadRequest, NotSupported, UpstreamProtocolError, UpstreamStatusError
from app.formats.responses_api import (
    FAILURE_EVENTS,
    TERMINAL_EVENTS,
    ChunkMaker,
    chat_body,
    chat_usage,
    function_names,
    input_from_messages,
    read_output,
    token_count,
    tools_from_chat,
    usage_from_responses,
)
from app.pipeline.core import Reply, StreamItem, Usage

# Sonar model -> the preset Perplexity names as its replacement: the closest match in
# perplexityai/api-platform-developers skills/migrate-sonar-to-agent-api/references/
# models-and-presets.md, the guide linked from https://docs.perplexity.ai/docs/agent-api/
# migrate-from-sonar/how-to ("sonar" -> fast; "sonar-pro" -> low, pro-search; "sonar-reasoning"
# and "sonar-reasoning-pro" -> low; "sonar-deep-research" -> medium, deep-research, "the closest
# published equivalent"; high and xhigh are costlier upgrades, not equivalents).
SONAR_PRESETS = {
    "sonar": "fast",
    "sonar-pro": "low",
    "sonar-reasoning": "low",
    "sonar-reasoning-pro": "low",
    "sonar-deep-research": "medium",
}
# https://docs.perplexity.ai/docs/agent-api/presets; the longer names are the earlier ones.
PRESETS = frozenset(
    {"fast", "low", "medium", "high", "xhigh", "fast-search", "pro-search", "deep-research", "advanced-deep-research"}
)
# Chat fields the Agent API takes under the same name and shape (response_format stays at the
# top level there, unlike OpenAI's text.format), then fields only the Agent API has.
SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "response_format", "metadata", "store")
AGENT_ONLY = ("max_steps", "max_tool_calls", "language_preference", "truncation")
# Sonar's top-level search filters, which now sit in the web_search tool's "filters".
SEARCH_FILTERS = tuple(
    "search_domain_filter search_recency_filter search_language_filter search_after_date_filter"
    " search_before_date_filter last_updated_after_filter last_updated_before_filter".split()
)
HANDLED = frozenset(
    {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "reasoning_effort"}
    | {"tools", "tool_choice", "disable_search", "web_search_options", "num_search_results", *SEARCH_FILTERS}
)
# Parameters the Agent API lacks, harmless at their default value (Ollama clients send some).
NEUTRAL = {"n": 1, "frequency_penalty": 0, "presence_penalty": 0, "logprobs": False}
# reasoning.effort values; there is no "none", and "minimal" is the least reasoning.
EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")
# Billing names of the search tools in usage.tool_calls_details.
SEARCH_TOOLS = ("search_web", "web_search")
_NANOS_PER_USD = Decimal(1_000_000_000)


def agent_request(call: Call) -> dict[str, Any]:
    """The Agent API body for an internal chat request."""
    body = {k: v for k, v in call.body.items() if v is not None}
    for name in sorted(body.keys() - HANDLED - set(SAME_NAME) - set(AGENT_ONLY)):
        if name not in NEUTRAL:
            raise BadRequest(f"Perplexity's Agent API has no '{name}' parameter", param=name)
        if body[name] != NEUTRAL[name]:
            raise BadRequest(f"Perplexity's Agent API does not support '{name}' = {body[name]!r}", param=name)
    preset = SONAR_PRESETS.get(call.model, call.model if call.model in PRESETS else None)
    request: dict[str, Any] = {"preset": preset} if preset else {"model": call.model}
    instructions, request["input"] = input_from_messages(body.get("messages") or [])
    if instructions is not None:
        request["instructions"] = instructions
    request.update({k: body[k] for k in (*SAME_NAME, *AGENT_ONLY) if k in body})
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        request["max_output_tokens"] = limit
    effort = body.get("reasoning_effort")
    if effort is not None:
        effort = "minimal" if effort == "none" else effort
        if effort not in EFFORTS:
            raise BadRequest(f"unknown reasoning_effort {effort!r}", param="reasoning_effort")
        request["reasoning"] = {"effort": effort}
    tools = _tools(body, preset is not None)
    if tools:
        request["tools"] = tools
    if "tool_choice" in body:
        request["tool_choice"] = _tool_choice(body["tool_choice"])
    request["stream"] = call.stream
    return request


def _tools(body: dict[str, Any], preset: bool) -> list[dict[str, Any]]:
    """The client's tools plus web search: always for an explicit model (a bare model does not
    search, Sonar always did); for a preset, which bundles it, only to carry Sonar's options."""
    tools = tools_from_chat(body["tools"]) if "tools" in body else []
    search: dict[str, Any] = {"type": "web_search"}
    filters = {k: body[k] for k in SEARCH_FILTERS if k in body}
    if filters:
        search["filters"] = filters
    options = body.get("web_search_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("'web_search_options' must be an object", param="web_search_options")
    for key, value in options.items():
        if key not in ("search_context_size", "user_location"):
            raise BadRequest(f"Perplexity's Agent API has no web_search_options.{key}", param="web_search_options")
        search[key] = value
    if "num_search_results" in body:
        search["max_results"] = body["num_search_results"]
    if any(t.get("type") == "web_search" for t in tools):
        if len(search) > 1:
            raise BadRequest("give search options on the web_search tool or as Sonar fields, not both", param="tools")
        return tools
    if body.get("disable_search") is True:
        if preset:
            raise BadRequest("a Perplexity preset always searches: use a model for disable_search", param="model")
        if len(search) > 1:
            raise BadRequest("search options were given with disable_search", param="disable_search")
        return tools
    return [*tools, search] if not preset or len(search) > 1 else tools


def _tool_choice(choice: Any) -> Any:
    """Perplexity names a function to force as ``{"name": ...}``."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if not isinstance(name, str):
            raise BadRequest("tool_choice names no function", param="tool_choice")
        return {"name": name}
    return choice


def usage_from_agent(raw: dict[str, Any]) -> Usage:
    """Perplexity's ``input_tokens`` is the whole prompt, cache writes and reads included (the
    recording: 3007 = 3 + 1224 written + 1780 read). Writes are billed apart, so they go
    outside ``input`` as ``cache_write``; reads stay inside it as ``cached_input``."""
    usage = usage_from_responses(raw)
    details = raw.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    written = min(token_count(details.get("cache_creation_input_tokens")), usage.input)
    usage.input -= written
    usage.cache_write = written
    read = token_count(details.get("cache_read_input_tokens")) or usage.cached_input
    usage.cached_input = min(read, usage.input)
    tools = raw.get("tool_calls_details")
    for name, detail in tools.items() if isinstance(tools, dict) else ():
        if name in SEARCH_TOOLS and isinstance(detail, dict):
            usage.web_search_requests += token_count(detail.get("invocation"))
    cost = raw.get("cost")
    total = cost.get("total_cost") if isinstance(cost, dict) and cost.get("currency", "USD") == "USD" else None
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        usage.provider_cost_nanousd = int((Decimal(repr(total)) * _NANOS_PER_USD).to_integral_value())
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
    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if self.provider.api_key:
            headers["authorization"] = f"Bearer {self.provider.api_key}"
        return headers

    async def send(self, call: Call) -> Reply:
        if call.kind != "chat":
            raise NotSupported(f"Perplexity's Agent API serves chat only, not {call.kind}")
        url = self.provider.base_url + "/v1/responses"
        content = orjson.dumps(agent_request(call))
        functions = function_names(call.body.get("tools"))
        if not call.stream:
            with upstream_errors(self.provider):
                response = await self.http.post(url, content=content, headers=self._headers(False))
            if response.status_code >= 400:
                raise error_from_body(self.provider, response.status_code, response.content)
            return self._whole(load_json(self.provider, response.content), functions)
        request = self.http.build_request("POST", url, content=content, headers=self._headers(True))
        response = await open_stream(self.http, self.provider, request)
        return Reply(stream=self._chunks(iter_body(self.provider, response), functions))

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
            body["usage"] = chat_usage(usage)
        return Reply(body=body, usage=usage)

    async def _chunks(
        self, body: AsyncGenerator[bytes, None], functions: frozenset[str]
    ) -> AsyncGenerator[StreamItem, None]:
        maker = ChunkMaker(functions)
        sources = Sources()
        finished = False
        events = iter_sse(body)
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
