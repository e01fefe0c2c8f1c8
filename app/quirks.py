"""The quirk rule set: data-driven request rewrites per provider and model.

Rules come from ``app/data/quirks.yaml`` (shipped) and from per-model overrides in the
database (edited in the admin UI), which apply after the file's rules and so win. The book is
swapped whole when overrides change, so a request always sees one consistent rule set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from app.pipeline.core import Exchange

ACTIONS = frozenset({"stream_usage", "rename", "drop", "system", "defaults"})


class QuirkError(ValueError):
    """A rule that can't be applied as written."""


@dataclass(frozen=True)
class QuirkRule:
    name: str
    provider: str | None = None
    family: str | None = None
    model: re.Pattern[str] | None = None
    kind: str | None = None  # builtin | ollama | custom
    stream_usage: bool | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    fold_system: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, provider: str, family: str, model: str, kind: str = "builtin") -> bool:
        return (
            (self.provider is None or self.provider == provider)
            and (self.family is None or self.family == family)
            and (self.kind is None or self.kind == kind)
            and (self.model is None or self.model.search(model) is not None)
        )


def rule_from_dict(raw: Mapping[str, Any]) -> QuirkRule:
    name = str(raw.get("name") or "unnamed rule")
    match = raw.get("match") or {}
    unknown = set(raw) - ACTIONS - {"name", "match"}
    if unknown or not isinstance(match, dict) or set(match) - {"provider", "family", "model", "kind"}:
        raise QuirkError(f"quirk rule {name!r}: unknown keys {sorted(unknown or set(match))}")
    try:
        pattern = re.compile(match["model"]) if match.get("model") else None
    except re.error as exc:
        raise QuirkError(f"quirk rule {name!r}: bad model pattern: {exc}") from None
    system = raw.get("system")
    if system not in (None, "fold"):
        raise QuirkError(f"quirk rule {name!r}: system must be 'fold'")
    return QuirkRule(
        name=name,
        provider=match.get("provider"),
        family=match.get("family"),
        model=pattern,
        kind=match.get("kind"),
        stream_usage=raw.get("stream_usage"),
        rename=dict(raw.get("rename") or {}),
        drop=tuple(raw.get("drop") or ()),
        fold_system=system == "fold",
        defaults=dict(raw.get("defaults") or {}),
    )


def load_file_rules(text: str | None = None) -> list[QuirkRule]:
    if text is None:
        text = resources.files("app").joinpath("data/quirks.yaml").read_text()
    data = yaml.safe_load(text) or {}
    return [rule_from_dict(raw) for raw in data.get("rules") or ()]


class QuirkBook:
    def __init__(self, file_rules: list[QuirkRule], overrides: Iterable[QuirkRule] = ()) -> None:
        self.file_rules = file_rules
        self.overrides = list(overrides)
        # The book never changes (it is swapped whole), so neither do a model's rules: matched
        # once per model instead of every rule's pattern on every request.
        self._matched: dict[tuple[str, str, str, str], tuple[QuirkRule, ...]] = {}

    def with_overrides(self, overrides: Iterable[QuirkRule]) -> QuirkBook:
        return QuirkBook(self.file_rules, overrides)

    def rules_for(self, provider: str, family: str, model: str, kind: str = "builtin") -> tuple[QuirkRule, ...]:
        key = (provider, family, model, kind)
        found = self._matched.get(key)
        if found is None:
            rules = (*self.file_rules, *self.overrides)
            found = tuple(r for r in rules if r.matches(provider, family, model, kind))
            if len(self._matched) >= 10_000:  # model names come from callers: bounded
                self._matched.clear()
            self._matched[key] = found
        return found

    def apply(self, ex: Exchange) -> list[str]:
        """Rewrite ``ex.body`` for its target; returns the parameters dropped."""
        target = ex.target
        if target is None:
            return []
        dropped: list[str] = []
        stream_usage: bool | None = None
        provider = target.provider
        for rule in self.rules_for(provider.name, provider.family, target.model, provider.kind):
            if rule.stream_usage is not None:
                stream_usage = rule.stream_usage
            for old, new in rule.rename.items():
                if old in ex.body and new not in ex.body:
                    ex.body[new] = ex.body.pop(old)
            for name in rule.drop:
                if ex.body.pop(name, None) is not None:
                    dropped.append(name)
            if rule.fold_system:
                fold_system(ex.body)
            for name, value in rule.defaults.items():
                if ex.body.get(name) is None:
                    resolved = _default(value, target.catalog_entry)
                    if resolved is not None:
                        ex.body[name] = resolved
        _stream_options(ex, stream_usage)
        return dropped


def _default(value: Any, catalog: Mapping[str, Any] | None) -> Any:
    if isinstance(value, str) and value.startswith("catalog:"):
        return (catalog or {}).get(value.removeprefix("catalog:"))
    return value


def _stream_options(ex: Exchange, stream_usage: bool | None) -> None:
    if not ex.stream or stream_usage is False:
        ex.body.pop("stream_options", None)  # refused on non-streaming calls and by some providers
    elif stream_usage:
        options = ex.body.get("stream_options")
        ex.body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}


def fold_system(body: dict[str, Any]) -> None:
    """Move system/developer messages into the first user turn, keeping their text."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    system = [m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    if not system:
        return
    rest = [m for m in messages if m not in system]
    preamble = "\n\n".join(_text(m.get("content")) for m in system)
    for message in rest:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                message["content"] = [{"type": "text", "text": preamble}, *content]
            else:
                message["content"] = f"{preamble}\n\n{content or ''}"
            break
    else:
        rest.insert(0, {"role": "user", "content": preamble})
    body["messages"] = rest


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")
