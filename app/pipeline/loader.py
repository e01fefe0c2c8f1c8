"""Building the pipeline from configuration: stages named by entry point (group
``llm_relay.stages``) or by dotted path ``package.module:Class``.

Built-in stages are registered in the same entry-point group as third-party ones; the table
below only lets a source checkout that was never pip-installed still start.
"""

from __future__ import annotations

import pkgutil
from importlib.metadata import entry_points
from typing import Any

from app.pipeline.core import Pipeline, PipelineError, Stage

GROUP = "llm_relay.stages"
BUILTIN = {
    "tags": "app.pipeline.stages.tags:TagStage",
    "resolve": "app.pipeline.stages.resolve:ResolveStage",
    "quirks": "app.pipeline.stages.quirks:QuirkStage",
    "dispatch": "app.pipeline.stages.dispatch:DispatchStage",
    "meter": "app.pipeline.stages.meter:MeterStage",
    "cost": "app.pipeline.stages.cost:CostStage",
}


def installed() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)} | set(BUILTIN))


def load_stage_class(name: str) -> Any:
    if ":" in name:
        try:
            return pkgutil.resolve_name(name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise PipelineError(f"cannot load stage {name!r}: {exc}") from exc
    found = list(entry_points(group=GROUP, name=name))
    if found:
        return found[0].load()
    if name in BUILTIN:
        return pkgutil.resolve_name(BUILTIN[name])
    raise PipelineError(f"unknown stage {name!r}; installed: {', '.join(installed())}")


def build_pipeline(names: list[str], services: Any) -> Pipeline:
    stages = []
    for name in names:
        stage = load_stage_class(name)(services)
        if not isinstance(stage, Stage):
            raise PipelineError(f"stage {name!r} does not satisfy the Stage protocol (name, async __call__)")
        stages.append(stage)
    if not any(getattr(s, "terminal", False) for s in stages):
        raise PipelineError(f"the pipeline {names} has no dispatch stage; installed: {', '.join(installed())}")
    return Pipeline(stages)
