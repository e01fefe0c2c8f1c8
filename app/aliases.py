"""Model aliases: a small built-in table of model families, plus the user's own.

A family alias follows the catalog: ``claude-sonnet`` is the newest undated
``claude-sonnet-*`` the catalog lists, so a pricing sync moves it forward.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.catalog import Catalog

# alias -> (provider, pattern of the ids it may point at)
FAMILIES: Mapping[str, tuple[str, str]] = {
    "claude-sonnet": ("anthropic", r"claude-sonnet-\d+(-\d)?"),
    "claude-opus": ("anthropic", r"claude-opus-\d+(-\d)?"),
    "claude-haiku": ("anthropic", r"claude-haiku-\d+(-\d)?"),
    "gpt": ("openai", r"gpt-\d+(\.\d+)?"),
    "gemini-pro": ("gemini", r"gemini-pro-latest"),
    "gemini-flash": ("gemini", r"gemini-flash-latest"),
    "grok": ("xai", r"grok-\d+(\.\d+)?"),
    "mistral-large": ("mistral", r"mistral-large-latest"),
}


def _version(model_id: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", model_id))


def builtin_aliases(catalog: Catalog) -> dict[str, str]:
    """alias -> provider/model for each family the catalog has a member of."""
    out = {}
    for alias, (provider, pattern) in FAMILIES.items():
        members = [e.id for e in catalog.models(provider) if re.fullmatch(pattern, e.id)]
        if members:
            out[alias] = f"{provider}/{max(members, key=_version)}"
    return out
