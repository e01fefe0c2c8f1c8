"""The types every stage shares: the Exchange it reads and changes, the Reply, the Pipeline.

A stage is one async call, ``await stage(ex, call_next)``. Stages listed before the dispatch
stage prepare the request and pass it on; stages listed after it see the reply on its way
back and may wrap its stream. The pipeline nests them so that a later stage is an outer
layer: the cost stage sees every end of a request (finished, failed before or after the
first byte, or abandoned by the client), including errors raised by earlier stages.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable

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
    """Upstream SSE events relayed as they arrived, already framed for an OpenAI-dialect client
    (the adapter parses only the events it must: usage, errors, provider quirks). ``tokens``
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


@dataclass(eq=False)
class Exchange:
    """One inference request on its way through the pipeline."""

    request_id: str
    dialect: str  # openai | ollama
    endpoint: str  # the inbound path, e.g. /v1/chat/completions
    kind: str  # chat | completion | embedding
    body: dict[str, Any]  # the request in internal (OpenAI) form; stages may rewrite it
    stream: bool
    headers: Mapping[str, str]  # lower-case names
    client: str
    requested_model: str
    native: dict[str, Any] | None = None  # the body as the client sent it, for same-dialect upstreams
    # UTC, as it is stored: astimezone() would look the local zone up on every request.
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    tags: list[str] = field(default_factory=list)
    target: Target | None = None
    usage: Usage = field(default_factory=Usage)
    outcome: str | None = None  # ok | client_error | upstream_error | client_closed | error
    status: int = 200
    error: str | None = None
    first_token_at: float | None = None
    pieces: int = 0  # streamed chunks that carried tokens, for estimates when usage is missing
    ended_at: float | None = None
    cost_nanousd: int | None = None  # charged; the cost stage also keeps its Charge in state["charge"]
    # Set by the cost stage: the current charge for the usage seen so far, for dialects that
    # show the caller its cost (OpenAI's usage.cost). Called with the exchange: a pricer that
    # held it would make every exchange a reference cycle, freed only by the garbage collector.
    pricer: Callable[[Exchange], int | None] | None = None
    include_usage: bool = False  # the client asked for a final usage chunk
    passthrough: bool = False  # the client takes upstream SSE bytes as they are (see Frames)
    state: dict[str, Any] = field(default_factory=dict)  # room for custom stages

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def latency_ms(self) -> int | None:
        return None if self.ended_at is None else round((self.ended_at - self.started) * 1000)

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return round((self.first_token_at - self.started) * 1000)


Next = Callable[[Exchange], Awaitable[Reply]]


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline: ``await stage(ex, call_next)`` returns the reply.

    Optional members, looked up with ``getattr``: ``passthrough_safe`` (the stage copes with
    :class:`Frames`), ``async start()`` and ``async stop()`` (run when the relay starts and stops)
    and ``status()`` (a JSON-able dict the admin UI shows on the Pipeline page).
    """

    name: ClassVar[str]

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply: ...


class PipelineError(ValueError):
    """The configured pipeline cannot run."""


class Pipeline:
    """Stages in data-flow order; exactly one of them is terminal (it talks to the provider)."""

    def __init__(self, stages: list[Stage]) -> None:
        terminal = [i for i, s in enumerate(stages) if getattr(s, "terminal", False)]
        if len(terminal) != 1:
            names = [s.name for s in stages]
            raise PipelineError(f"the pipeline needs exactly one dispatch stage, got {names}")
        self.stages = list(stages)
        self.info: list[Any] = []  # the loader's StageInfo per stage, for the admin UI
        index = terminal[0]
        before, dispatch, after = stages[:index], stages[index], stages[index + 1 :]
        # Outermost first: the last response stage, ..., the first response stage, then the
        # request stages in order, then dispatch at the core. The links are built once, so a
        # request allocates no closures on its way through.
        chain: Next = _no_next
        for stage in reversed([*reversed(after), *before, dispatch]):
            chain = _Link(stage, chain)
        self._chain = chain
        # Upstream bytes may skip the dict form only when every stage says it copes with Frames.
        self.passthrough = all(getattr(s, "passthrough_safe", False) for s in stages)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    async def start(self) -> None:
        for stage in self.stages:
            start = getattr(stage, "start", None)
            if start is not None:
                await start()

    async def stop(self) -> None:
        for stage in reversed(self.stages):
            stop = getattr(stage, "stop", None)
            if stop is not None:
                await stop()

    def run(self, ex: Exchange) -> Awaitable[Reply]:
        return self._chain(ex)


class _Link:
    __slots__ = ("call_next", "stage")

    def __init__(self, stage: Stage, call_next: Next) -> None:
        self.stage = stage
        self.call_next = call_next

    def __call__(self, ex: Exchange) -> Awaitable[Reply]:
        return self.stage(ex, self.call_next)


async def _no_next(ex: Exchange) -> Reply:
    raise PipelineError("the dispatch stage must not call the next stage")
