"""Compiled tuple getters: ``tuple_getter(("a", "b"))`` is ``lambda r: (r.a, r.b)``, and with
``at={"a": 0, "b": 3}`` it is ``lambda r: (r[0], r[3])`` (a usage row decoded from its journal
line is a list).

``operator.attrgetter`` with many names does a generic attribute lookup per name (~190
instructions per attribute on a slots dataclass, measured with callgrind); the same loads
compiled into a function use CPython's specialised slot access. A usage row's 40 columns are
read for its journal line and again for its SQLite parameters on every tracked request.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _checked(names: Sequence[str]) -> Sequence[str]:
    for name in names:
        # Only plain identifiers reach the generated source, never arbitrary text.
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} is not an attribute name")
    return names


def _function(source: str, scope: dict[str, Any], label: str) -> Callable[[Any], tuple[Any, ...]]:
    exec(compile(source, f"<{label}>", "exec"), scope)
    function: Callable[[Any], tuple[Any, ...]] = scope["function"]
    return function


def _access(name: str, at: Mapping[str, int] | None) -> str:
    """How the generated source reads ``name`` of the object ``r{n}``."""
    return f"r{{n}}.{name}" if at is None else f"r{{n}}[{int(at[name])}]"


def tuple_getter(
    names: Sequence[str],
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    *,
    objects: int = 1,
    at: Mapping[str, int] | None = None,
    nulls: Mapping[str, Any] | None = None,
) -> Callable[..., tuple[Any, ...]]:
    """A function returning the named attributes of its argument as a tuple, in this order;
    an attribute named in ``convert`` goes through its function first. With ``objects=n`` it
    takes n arguments and returns their attributes one after the other in one flat tuple (a
    multi-row insert's parameters, without a tuple per row to join). With ``at`` (a name's
    position) it reads items of a sequence instead of attributes. An attribute named in
    ``nulls`` that is None gives the value it maps to instead (without being converted)."""
    convert = convert or {}
    nulls = nulls or {}
    scope: dict[str, Any] = {}
    parts = []
    for i, name in enumerate(_checked(names)):
        value = _access(name, at)
        if name in convert:
            scope[f"_convert{i}"] = convert[name]
            value = f"_convert{i}({value})"
        if name in nulls:
            scope[f"_null{i}"] = nulls[name]
            value = f"(_null{i} if {_access(name, at)} is None else {value})"
        parts.append(f"{value}, ")
    row = "".join(parts)
    arguments = ", ".join(f"r{n}" for n in range(objects))
    values = "".join(row.format(n=n) for n in range(objects))
    source = f"def function({arguments}):\n    return ({values})\n"
    return _function(source, scope, f"tuple_getter of {len(names)} attributes of {objects}")
