"""Redaction of personal data before a request leaves: every text a provider would read
(messages, prompts, system prompts, embedding inputs, tool-call arguments) has each match of
the configured patterns replaced, in the internal body and in the client's own body alike
(an Ollama upstream is sent the latter). Images, model names, options and the usage row are
never touched. Replies are not redacted.

Options: ``patterns``, the built-in patterns to use (default: all of them); ``custom``, a table
of name = regular expression; ``replacement``, a template where ``{name}`` is the pattern's
name (default ``[REDACTED:{name}]``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from app.internal import Reply
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next, PipelineError

BUILTIN_PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    # 13-19 digits in groups, checked with Luhn below so order numbers stay.
    "card": r"\b\d(?:[ -]?\d){12,18}\b",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    "us_ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "phone": r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}\b",
    "ipv4": r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
}
# Keys whose string values (or lists of strings) are text a provider reads.
TEXT_KEYS = frozenset({"content", "text", "prompt", "input", "system", "suffix", "arguments", "instructions"})


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class RedactStage:
    name: ClassVar[str] = "redact"
    passthrough_safe: ClassVar[bool] = True  # never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        chosen = ctx.option("patterns", list(BUILTIN_PATTERNS), kind=list)
        unknown = [p for p in chosen if p not in BUILTIN_PATTERNS]
        if unknown:
            raise PipelineError(
                f"stage {ctx.name!r}: unknown pattern(s) {unknown}; built-in: {sorted(BUILTIN_PATTERNS)} "
                "(add your own under 'custom')"
            )
        sources = {name: BUILTIN_PATTERNS[name] for name in chosen}
        for name, pattern in ctx.option("custom", {}, kind=dict).items():
            if not isinstance(pattern, str):
                raise PipelineError(f"stage {ctx.name!r}: custom pattern {name!r} must be a string")
            sources[str(name)] = pattern
        if not sources:
            raise PipelineError(f"stage {ctx.name!r}: no patterns to redact with")
        self.template = ctx.option("replacement", "[REDACTED:{name}]")
        try:
            self.template.format(name="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise PipelineError(f"stage {ctx.name!r}: replacement may only use {{name}} ({exc})") from exc
        parts = []
        self.names: list[str] = []
        for name, pattern in sources.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PipelineError(f"stage {ctx.name!r}: pattern {name!r} is not a valid regex: {exc}") from exc
            # Each pattern is one named alternative of a single regex: one pass over the text.
            parts.append(f"(?P<p{len(self.names)}>{pattern})")
            self.names.append(name)
        self.regex = re.compile("|".join(parts))

    def _replace(self, match: re.Match[str]) -> str:
        name = self.names[int((match.lastgroup or "p0")[1:])]
        if name == "card" and not luhn_valid(re.sub(r"\D", "", match.group())):
            return match.group()
        return str(self.template.format(name=name))

    def redact_text(self, text: str) -> str:
        return self.regex.sub(self._replace, text)

    def _walk(self, value: Any, texty: bool) -> Any:
        if isinstance(value, str):
            return self.redact_text(value) if texty else value
        if isinstance(value, list):
            return [self._walk(item, texty) for item in value]
        if isinstance(value, dict):
            return {key: self._walk(item, key in TEXT_KEYS) for key, item in value.items()}
        return value

    def redact_body(self, body: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = self._walk(body, False)
        return redacted

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        ex.body = self.redact_body(ex.body)
        if ex.native is not None:
            ex.native = self.redact_body(ex.native)
        return await call_next(ex)
