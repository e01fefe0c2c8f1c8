"""``model_block``: refuse, with a 403 in the caller's dialect, models a tag may not use.

Options: ``rules``, a table of tag = list of model patterns (shell-style, matched against the
resolved ``provider/model``, e.g. ``"openai/o1*"``); ``"*"`` applies to every request. List it
after ``resolve``, which decides the model.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import ClassVar

from app.pipeline import Exchange, Forbidden, Next, PipelineError, Reply, StageContext


class ModelBlockStage:
    name: ClassVar[str] = "model_block"
    passthrough_safe: ClassVar[bool] = True  # it never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        rules = ctx.option("rules", kind=dict)
        self.rules: dict[str, list[str]] = {}
        for tag, patterns in rules.items():
            if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise PipelineError(f"stage {ctx.name!r}: rules.{tag} must be a list of model patterns")
            self.rules[str(tag)] = patterns

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        if ex.target is None:
            raise PipelineError("model_block must come after the resolve stage")
        label = ex.target.label
        for tag in ("*", *ex.tags):
            for pattern in self.rules.get(tag, ()):
                if fnmatchcase(label, pattern):
                    who = "this relay" if tag == "*" else f"tag {tag!r}"
                    raise Forbidden(f"model {label} is not allowed for {who}")
        return await call_next(ex)
