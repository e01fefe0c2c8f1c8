"""What a stage is constructed with: its own options, the relay's settings and services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from app.pipeline.core import PipelineError

if TYPE_CHECKING:
    from app.services import Services
    from app.settings import Settings

T = TypeVar("T")
_MISSING: Any = object()


@dataclass
class StageContext:
    """Handed to a stage's constructor, ``Stage(ctx)``.

    ``options`` are the stage's own table from ``PIPELINE_FILE``; read them with
    :meth:`option`, which checks their type, so that an option nobody read (a typo) can be
    reported at start-up. ``services`` is the relay's internals (database, usage writer,
    catalog...): stable enough for the shipped stages, but not part of the public API.
    """

    name: str
    options: Mapping[str, Any]
    settings: Settings
    services: Services
    _read: set[str] = field(default_factory=set, repr=False)

    def option(self, key: str, default: T = _MISSING, kind: type[T] | tuple[type, ...] | None = None) -> T:
        """The option ``key``; without a default it is required. ``kind`` checks its type
        (defaults to the default's type)."""
        self._read.add(key)
        if key not in self.options:
            if default is _MISSING:
                raise PipelineError(f"stage {self.name!r} needs the option {key!r}")
            return default
        value = self.options[key]
        expected = kind if kind is not None else (type(default) if default is not _MISSING else None)
        if expected is float:
            expected = (int, float)  # TOML writes 2 for 2.0
        if expected is not None and (not isinstance(value, expected) or isinstance(value, bool) != (expected is bool)):
            wanted = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            raise PipelineError(
                f"stage {self.name!r}: option {key!r} must be {wanted}, got {type(value).__name__} {value!r}"
            )
        return value  # type: ignore[no-any-return]

    def convert(self, key: str, value: Any, convert: Callable[[Any], T]) -> T:
        """Run ``convert`` on an option's value, turning its failure into a start-up error."""
        try:
            return convert(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise PipelineError(f"stage {self.name!r}: option {key!r}: {exc}") from exc

    def unread(self) -> list[str]:
        return sorted(set(self.options) - self._read)
