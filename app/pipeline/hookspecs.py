"""What a stage may define beyond ``name`` and ``async __call__(ex, call_next)``: one line each.

The relay reads these members only through :func:`hook`, which refuses a name not listed here,
and tests/test_docs.py fails when docs/stages.md does not describe one.
"""

from __future__ import annotations

from typing import Any


class StageHooks:
    """The optional members, with their defaults."""

    passthrough_safe: bool = False
    """True when the stage copes with relayed upstream bytes (``Frames``) and native bodies."""

    terminal: bool = False
    """True for the one stage that talks to the provider (the built-in ``dispatch``)."""

    async def start(self) -> None:
        """Run once when the relay starts, after the database and the usage writer."""

    async def stop(self) -> None:
        """Run once when the relay stops, in the reverse order of the stages."""

    def status(self) -> dict[str, Any] | None:
        """A JSON-able summary the admin UI's Pipeline page and ``GET /api/pipeline`` show."""
        return None


HOOKS = tuple(name for name in vars(StageHooks) if not name.startswith("_"))


def hook(stage: Any, name: str) -> Any:
    """The stage's own member ``name``, or None when it defines none (a flag: its default)."""
    if name not in HOOKS:
        raise AttributeError(f"{name!r} is not a stage hook; see app/pipeline/hookspecs.py")
    found = getattr(stage, name, None)
    if found is None and not callable(getattr(StageHooks, name)):
        return getattr(StageHooks, name)
    return found
