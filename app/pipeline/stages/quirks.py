"""Quirk rewriting: adjust the request to what the chosen provider accepts.

Rules are data: each provider family or provider lists the rewrites it needs. Usage is always
requested from streaming upstreams that support it, whatever the client asked (the client's
own choice is kept in ``ex.include_usage`` and honoured on the way back).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from app.pipeline.core import Exchange, Next, Reply
from app.services import Services

Rule = Callable[[Exchange], None]
_OPENAI_REASONING = re.compile(r"^(o\d|gpt-5|gpt-6)")


def stream_usage(ex: Exchange) -> None:
    if ex.stream:
        options = ex.body.get("stream_options")
        ex.body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        ex.body.pop("stream_options", None)  # OpenAI rejects it on non-streaming calls


def no_stream_options(ex: Exchange) -> None:
    ex.body.pop("stream_options", None)


def mistral_seed(ex: Exchange) -> None:
    if "seed" in ex.body and "random_seed" not in ex.body:
        ex.body["random_seed"] = ex.body.pop("seed")


def openai_max_completion_tokens(ex: Exchange) -> None:
    """OpenAI's reasoning models refuse ``max_tokens``; they take ``max_completion_tokens``."""
    model = ex.target.model if ex.target else ""
    if _OPENAI_REASONING.match(model) and "max_tokens" in ex.body:
        ex.body.setdefault("max_completion_tokens", ex.body.pop("max_tokens"))


BY_PROVIDER: dict[str, list[Rule]] = {
    "openai": [stream_usage, openai_max_completion_tokens],
    "mistral": [no_stream_options, mistral_seed],
}
BY_FAMILY: dict[str, list[Rule]] = {
    "openai_compat": [stream_usage],
}


class QuirkStage:
    name: ClassVar[str] = "quirks"

    def __init__(self, services: Services) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        if ex.target is not None and ex.kind in ("chat", "completion"):
            provider = ex.target.provider
            rules = BY_PROVIDER.get(provider.name) or BY_FAMILY.get(provider.family, [])
            for rule in rules:
                rule(ex)
        return await call_next(ex)


def rules_for(provider: str, family: str) -> list[str]:
    """Names of the rules a provider gets (for docs and the admin UI)."""
    rules: list[Any] = BY_PROVIDER.get(provider) or BY_FAMILY.get(family, [])
    return [r.__name__ for r in rules]
