"""The internal form: what flows between the dialects, the pipeline, the adapters and pricing.

Requests and replies are OpenAI-shaped dicts; beside them travel the :class:`Usage` a provider
reported, the :class:`Target` a request was resolved to, relayed :class:`Frames`, and the
:class:`Reply` the dispatch stage returns. This module sits below every layer that uses it and
imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.providers import Provider

# No real request comes near these. They keep every count and cost an upstream reports, and
# their sums, inside the database's 64-bit integers: one absurd report must neither fail the
# request nor the usage batch it lands in.
MAX_TOKENS = 10**12
MAX_NANOUSD = 10**15  # a million dollars
_NANOS_PER_USD = Decimal(1_000_000_000)


def token_count(value: Any) -> int:
    """A provider's count as the relay uses it: a positive int (not a bool), at most
    MAX_TOKENS; anything else is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value if value < MAX_TOKENS else MAX_TOKENS
    return 0


def bounded_nanousd(value: int) -> int:
    """A cost kept within +-MAX_NANOUSD."""
    return max(-MAX_NANOUSD, min(value, MAX_NANOUSD))


def nanousd(usd: Decimal) -> int:
    """Dollars as whole nano-dollars, within +-MAX_NANOUSD."""
    return bounded_nanousd(int((usd * _NANOS_PER_USD).to_integral_value()))


def nanousd_of_reported(usd: Any) -> int | None:
    """A provider's own cost figure in dollars (a JSON number), or None if it is not a finite one."""
    if isinstance(usd, bool) or not isinstance(usd, (int, float)):
        return None
    if isinstance(usd, float) and not math.isfinite(usd):
        return None
    return nanousd(Decimal(repr(usd)))


@dataclass(slots=True)
class Usage:
    """Token counts of one request, as the provider reports them.

    Invariants: the whole prompt is ``input + cache_read + cache_write``;
    ``cached_input`` is the part of ``input`` served from a provider cache (OpenAI, DeepSeek,
    Gemini style, counted inside the prompt); ``cache_read``/``cache_write`` are Anthropic
    style, outside ``input``; ``cache_write_1h`` is the part of ``cache_write`` written at the
    one-hour rate; ``output`` counts every generated token billed as output, ``reasoning``
    included; ``tool_prompt`` is the part of ``input`` a provider added for its own tools
    (Gemini's ``toolUsePromptTokenCount``); ``web_search_requests`` counts billed searches.
    """

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cached_input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    tool_prompt: int = 0
    web_search_requests: int = 0
    search_context_size: str | None = None  # low | medium | high, where search is billed by it
    service_tier: str | None = None  # batch | flex | priority | default, as the provider reports it
    reported: bool = False
    provider_cost_nanousd: int | None = None
    # Ollama's timings (nanoseconds), kept so the Ollama dialect can report real ones.
    durations: dict[str, int] | None = None

    def merge(self, other: Usage) -> None:
        """Take a later (cumulative) report: it replaces the counts it carries."""
        self.input = other.input
        self.output = other.output
        self.reasoning = other.reasoning
        self.cached_input = other.cached_input
        self.cache_read = other.cache_read
        self.cache_write = other.cache_write
        self.cache_write_1h = other.cache_write_1h
        self.tool_prompt = other.tool_prompt
        self.web_search_requests = other.web_search_requests
        self.search_context_size = other.search_context_size or self.search_context_size
        self.service_tier = other.service_tier or self.service_tier
        self.reported = self.reported or other.reported
        if other.provider_cost_nanousd is not None:
            self.provider_cost_nanousd = other.provider_cost_nanousd
        if other.durations:
            self.durations = other.durations

    @property
    def prompt_total(self) -> int:
        return self.input + self.cache_read + self.cache_write


@dataclass(frozen=True, slots=True)
class Target:
    """Where model resolution decided to send a request."""

    provider: Provider
    model: str
    via: str = "direct"  # direct | alias | default
    catalog_entry: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


@dataclass(frozen=True, slots=True)
class Frames:
    """Upstream SSE events relayed as they arrived, already framed for the client's dialect (an
    OpenAI client's from an OpenAI-compatible provider, an Anthropic client's from Anthropic;
    the adapter parses only the events it must: usage, errors, provider quirks). ``tokens``
    counts the events that carried a token, for metering."""

    data: bytes
    tokens: int


StreamItem = dict[str, Any] | Usage | Frames


def carries_token(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries generated output (text, reasoning or a tool call): what the
    meter counts as a streamed piece, for estimates when a provider reports no usage."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or choice
        if delta.get("content") or delta.get("text") or delta.get("reasoning_content") or delta.get("tool_calls"):
            return True
    return False


@dataclass(slots=True)
class Reply:
    """What the dispatch stage returns: a whole body, or a stream of chunks.

    Bodies and chunks are in the internal form, OpenAI's chat/completion/embedding shapes;
    a stream also carries :class:`Usage` items, which the meter stage consumes.
    """

    body: dict[str, Any] | None = None
    stream: AsyncGenerator[StreamItem, None] | None = None
    usage: Usage | None = None
    # The body is in the client's own dialect: a provider of the same API family answered it
    # (only when every stage is passthrough_safe, as for Frames).
    native: bool = False
    # Response headers a stage adds (e.g. a rate limit's); the relay's own headers win on a clash.
    headers: dict[str, str] = field(default_factory=dict)
