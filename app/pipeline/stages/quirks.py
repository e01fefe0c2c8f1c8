"""Quirk rewriting: adjust the request to what the chosen model accepts.

The rules are data (``app/data/quirks.yaml`` plus per-model overrides from the database,
see :mod:`app.quirks`). Parameters a rule drops are named in the ``X-Relay-Dropped-Params``
response header. Images sent to a model the catalog says has no vision are refused here, with
a clear 400, rather than silently stripped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.errors import BadRequest
from app.internal import Reply, Target
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.runtime import ModelSwitch


def has_images(body: dict[str, Any]) -> bool:
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            return True
    return False


def reasons(target: Target, switch: ModelSwitch | None = None) -> bool:
    """False only when an admin or the pricing catalog says the model cannot reason."""
    if switch is not None and switch.reasoning is not None:
        return switch.reasoning
    info = target.catalog_entry
    return not info or "mode" not in info or bool(info.get("supports_reasoning"))


def accepts_images(target: Target, switch: ModelSwitch | None = None) -> bool:
    """False only when an admin or the catalog says so; an unknown model gets the benefit of the doubt."""
    if switch is not None and switch.vision is not None:
        return switch.vision
    info = target.catalog_entry
    if not info:
        return True
    capabilities = info.get("capabilities")
    if isinstance(capabilities, list):  # Ollama's own report
        return "vision" in capabilities
    if "mode" in info:  # a pricing-catalog entry lists supports_vision for the models that have it
        return bool(info.get("supports_vision"))
    return True


class QuirkStage:
    name: ClassVar[str] = "quirks"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        services = ctx.services
        self.services = services

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        target = ex.target
        if target is not None and ex.kind != "embedding":
            switch = self.services.model_switches.get((target.provider.name, target.model.lower()))
            if has_images(ex.body) and not accepts_images(target, switch):
                raise BadRequest(f"model {target.label} does not accept images", param="messages")
            dropped = self.services.quirks.apply(ex)
            if ex.body.get("reasoning_effort") is not None and not reasons(target, switch):
                del ex.body["reasoning_effort"]  # the provider would refuse the whole request
                dropped.append("reasoning_effort")
            if dropped:
                ex.state["dropped_params"] = dropped
        return await call_next(ex)
