"""The types every stage shares: the Exchange it reads and changes, the Reply, the Pipeline.

A stage is one async call, ``await stage(ex, call_next)``. Stages listed before the dispatch
stage prepare the request and pass it on; stages listed after it see the reply on its way
back and may wrap its stream. The pipeline nests them so that a later stage is an outer
layer: the cost stage sees every end of a request (finished, failed before or after the
first byte, or abandoned by the client), including errors raised by earlier stages.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from app.errors import RelayError
from app.internal import Reply, Target, Usage
from app.pipeline.hookspecs import hook


@dataclass(eq=False)
class Exchange:
    """One inference request on its way through the pipeline."""

    request_id: str
    dialect: str  # openai | ollama | anthropic | responses
    endpoint: str  # the inbound path, e.g. /v1/chat/completions
    kind: str  # chat | completion | embedding
    body: dict[str, Any]  # the request in internal (OpenAI) form; stages may rewrite it
    stream: bool
    headers: Mapping[str, str]  # lower-case names
    client: str
    requested_model: str
    native: dict[str, Any] | None = None  # the body as the client sent it, for same-dialect upstreams
    # What of ``native`` the internal form has no place for: only a same-dialect upstream,
    # taking ``native`` as it is, may serve the request; any other answers with this error.
    untranslatable: RelayError | None = None
    # UTC, as it is stored: astimezone() would look the local zone up on every request.
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    tags: list[str] = field(default_factory=list)
    target: Target | None = None
    usage: Usage = field(default_factory=Usage)
    outcome: str | None = None  # ok | client_error | upstream_error | client_closed | shutdown | overloaded | error
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

    The optional members a stage may define are listed in :mod:`app.pipeline.hookspecs`.
    """

    name: ClassVar[str]

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply: ...


class PipelineError(ValueError):
    """The configured pipeline cannot run."""


class Pipeline:
    """Stages in data-flow order; exactly one of them is terminal (it talks to the provider)."""

    def __init__(self, stages: list[Stage]) -> None:
        terminal = [i for i, s in enumerate(stages) if hook(s, "terminal")]
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
        self.passthrough = all(hook(s, "passthrough_safe") for s in stages)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    async def start(self) -> None:
        for stage in self.stages:
            start = hook(stage, "start")
            if start is not None:
                await start()

    async def stop(self) -> None:
        for stage in reversed(self.stages):
            stop = hook(stage, "stop")
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
