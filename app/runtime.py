"""Settings an admin changes while the relay runs, stored in the ``relay_setting`` table and
re-read by every instance. The environment gives their starting values."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Runtime:
    default_model: str = ""
    usage_tracking: bool = True  # write usage rows at all
    resolve_hostnames: bool = False  # reverse-DNS client addresses (off the request path)
    retention_days: int = 0  # delete usage rows older than this; 0 keeps them forever

    def updated(self, stored: dict[str, Any]) -> Runtime:
        """Apply stored values of the right type; anything else is ignored (and logged by the caller)."""
        changes = {}
        for f in fields(self):
            value = stored.get(f.name)
            if value is not None and isinstance(value, type(getattr(self, f.name))):
                changes[f.name] = value
        return replace(self, **changes)


RUNTIME_KEYS = {f.name: type(f.default) for f in fields(Runtime)}


@dataclass(frozen=True, slots=True)
class ModelSwitch:
    """An admin's per-model switches; None leaves the catalog's word."""

    enabled: bool = True
    vision: bool | None = None
    reasoning: bool | None = None
    tools: bool | None = None
