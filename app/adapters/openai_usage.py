"""Reading the many dialects of OpenAI-style ``usage`` into one :class:`Usage`.

Providers that speak OpenAI's format still count differently: DeepSeek reports cache hits as
``prompt_cache_hit_tokens``, Groq hides stream usage in ``x_groq.usage``, xAI leaves reasoning
tokens out of ``completion_tokens`` (its ``total_tokens`` gives it away), OpenRouter and
Perplexity report their own cost and xAI reports it in ticks of 1e-10 USD.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.formats.openai_chat import details
from app.internal import Usage, nanousd, nanousd_of_reported, token_count


def find_usage(payload: dict[str, Any]) -> dict[str, Any] | None:
    usage = payload.get("usage")
    if isinstance(usage, dict):
        return usage
    groq = payload.get("x_groq")
    inner = groq.get("usage") if isinstance(groq, dict) else None
    return inner if isinstance(inner, dict) else None


def usage_from_openai(raw: dict[str, Any]) -> Usage:
    prompt = token_count(raw.get("prompt_tokens"))
    completion = token_count(raw.get("completion_tokens"))
    total = token_count(raw.get("total_tokens"))
    prompt_details = details(raw, "prompt_tokens_details")
    completion_details = details(raw, "completion_tokens_details")
    cached = token_count(prompt_details.get("cached_tokens")) or token_count(raw.get("prompt_cache_hit_tokens"))
    cache_write = token_count(prompt_details.get("cache_write_tokens"))
    reasoning = token_count(completion_details.get("reasoning_tokens"))
    output = completion
    if reasoning and total == prompt + completion + reasoning:
        output = completion + reasoning  # xAI: reasoning is billed but not in completion_tokens
    size = raw.get("search_context_size")  # Sonar bills each request's search by its context size
    return Usage(
        search_context_size=size if isinstance(size, str) else None,
        web_search_requests=1 if isinstance(size, str) else 0,
        input=max(prompt - cache_write, 0),
        output=output,
        reasoning=min(reasoning, output),
        cached_input=min(cached, prompt),
        cache_write=cache_write,
        reported=True,
        provider_cost_nanousd=_provider_cost(raw),
    )


def _provider_cost(raw: dict[str, Any]) -> int | None:
    cost = raw.get("cost")
    if isinstance(cost, dict):  # Perplexity: {"total_cost": ...}
        cost = cost.get("total_cost")
    if cost is not None:
        return nanousd_of_reported(cost)
    ticks = raw.get("cost_in_usd_ticks")  # xAI: 1 tick = 1e-10 USD
    if isinstance(ticks, int) and not isinstance(ticks, bool):
        return nanousd(Decimal(ticks) / 10_000_000_000)
    return None
