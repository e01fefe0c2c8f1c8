"""Building the pipeline from configuration: stages named by entry point (group
``llm_relay.stages``) or by dotted path ``package.module:Class``, in the configured order, each
constructed with its own options from ``PIPELINE_FILE``.

Built-in stages are registered in the same entry-point group as third-party ones; the table
below only lets a source checkout that was never pip-installed still start. Every way a
configuration can be wrong fails here, at start-up, with a message naming what is installed.
"""

from __future__ import annotations

import inspect
import pkgutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from app.pipeline.context import StageContext
from app.pipeline.core import Pipeline, PipelineError, Stage
from app.pipeline.hookspecs import hook

GROUP = "llm_relay.stages"
BUILTIN = {
    "tags": "app.pipeline.stages.tags:TagStage",
    "header_tags": "app.pipeline.stages.header_tags:HeaderTagStage",
    "spend_limit": "app.pipeline.stages.spend_limit:SpendLimitStage",
    "route": "app.pipeline.stages.route:RouteStage",
    "resolve": "app.pipeline.stages.resolve:ResolveStage",
    "limits": "app.pipeline.stages.limits:LimitStage",
    "redact": "app.pipeline.stages.redact:RedactStage",
    "quirks": "app.pipeline.stages.quirks:QuirkStage",
    "dispatch": "app.pipeline.stages.dispatch:DispatchStage",
    "meter": "app.pipeline.stages.meter:MeterStage",
    "cost": "app.pipeline.stages.cost:CostStage",
    "log_bodies": "app.pipeline.stages.log_bodies:LogBodiesStage",
}


@dataclass(frozen=True)
class StageInfo:
    """Where a configured stage came from, for the admin UI."""

    name: str
    target: str  # module:Class
    source: str  # the distribution that registered it, or "dotted path"
    options: Mapping[str, Any]


@dataclass(frozen=True)
class PipelineConfig:
    names: list[str]
    options: dict[str, dict[str, Any]]


def installed() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)} | set(BUILTIN))


def _installed_hint() -> str:
    return f"installed stages: {', '.join(installed())}"


def read_config(stages_setting: str, default: str, path: str) -> PipelineConfig:
    """The order and the options: ``PIPELINE_STAGES`` and/or ``PIPELINE_FILE`` (TOML with an
    optional ``stages`` list and one ``[options.<stage>]`` table per stage)."""
    names = [s.strip() for s in stages_setting.split(",") if s.strip()]
    options: dict[str, dict[str, Any]] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise PipelineError(f"PIPELINE_FILE: cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PipelineError(f"PIPELINE_FILE {path}: not valid TOML: {exc}") from exc
        extra = set(data) - {"stages", "options"}
        if extra:
            raise PipelineError(
                f"PIPELINE_FILE {path}: unknown keys {sorted(extra)}; use 'stages' and [options.<stage>]"
            )
        if "stages" in data:
            listed = data["stages"]
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise PipelineError(f"PIPELINE_FILE {path}: 'stages' must be a list of stage names")
            if stages_setting != default and [n.strip() for n in listed] != names:
                raise PipelineError(
                    "both PIPELINE_STAGES and 'stages' in PIPELINE_FILE set the pipeline's order; keep one"
                )
            names = [n.strip() for n in listed]
        raw = data.get("options", {})
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise PipelineError(f"PIPELINE_FILE {path}: [options.<stage>] must be tables")
        options = {name: dict(table) for name, table in raw.items()}
    unused = sorted(set(options) - set(names))
    if unused:
        raise PipelineError(f"options given for stages not in the pipeline: {unused}; the pipeline is {names}")
    return PipelineConfig(names, options)


def load_stage_class(name: str) -> tuple[Any, str, str]:
    """The stage class a name stands for, its ``module:Class`` and where it came from."""
    if ":" in name:
        try:
            return pkgutil.resolve_name(name), name, "dotted path"
        except (ImportError, AttributeError, ValueError) as exc:
            raise PipelineError(f"cannot load stage {name!r}: {exc}; {_installed_hint()}") from exc
    found = list(entry_points(group=GROUP, name=name))
    if found:
        point = found[0]
        try:
            loaded = point.load()
        except (ImportError, AttributeError) as exc:
            raise PipelineError(f"stage {name!r} ({point.value}) does not import: {exc}") from exc
        dist = point.dist.name if point.dist is not None else "unknown"
        return loaded, point.value, dist
    if name in BUILTIN:
        return pkgutil.resolve_name(BUILTIN[name]), BUILTIN[name], "llm-relay"
    raise PipelineError(f"unknown stage {name!r}; {_installed_hint()}")


def _construct(name: str, cls: Any, ctx: StageContext) -> Any:
    if not callable(cls):
        raise PipelineError(f"stage {name!r} is not a class or factory: {cls!r}")
    try:
        inspect.signature(cls).bind(ctx)
    except TypeError as exc:
        raise PipelineError(f"stage {name!r} must take one argument, its StageContext ({exc})") from exc
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    try:
        return cls(ctx)
    except Exception as exc:  # a stage that cannot start stops the relay with one line, not a traceback
        raise PipelineError(f"stage {name!r} failed to start: {type(exc).__name__}: {exc}") from exc


def _check(name: str, stage: Any) -> None:
    if not isinstance(stage, Stage) or not inspect.iscoroutinefunction(type(stage).__call__):
        raise PipelineError(
            f"stage {name!r} ({type(stage).__module__}.{type(stage).__qualname__}) does not satisfy the Stage "
            "protocol: it needs a 'name' and an 'async def __call__(self, ex, call_next)'"
        )


def build_pipeline(config: PipelineConfig, services: Any) -> Pipeline:
    if not config.names:
        raise PipelineError(f"the pipeline is empty; {_installed_hint()}")
    seen: set[str] = set()
    stages: list[Stage] = []
    infos: list[StageInfo] = []
    for name in config.names:
        if name in seen:
            raise PipelineError(f"stage {name!r} is listed twice in {config.names}")
        seen.add(name)
        cls, target, source = load_stage_class(name)
        options = config.options.get(name, {})
        ctx = StageContext(name, options, services.settings, services)
        stage = _construct(name, cls, ctx)
        _check(name, stage)
        unread = ctx.unread()
        if unread:
            raise PipelineError(f"stage {name!r} has no option(s) {unread}; check [options.{name}] in PIPELINE_FILE")
        stages.append(stage)
        infos.append(StageInfo(stage.name, target, source, options))
    terminal = [info.name for info, s in zip(infos, stages, strict=True) if hook(s, "terminal")]
    if not terminal:
        raise PipelineError(f"the pipeline {config.names} has no dispatch stage; {_installed_hint()}")
    if len(terminal) > 1:
        raise PipelineError(f"the pipeline has more than one terminal stage: {terminal}")
    pipeline = Pipeline(stages)
    pipeline.info = infos
    return pipeline
