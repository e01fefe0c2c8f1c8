"""How a setting's text from the environment becomes its value: a secret may come from a
``<NAME>_FILE``, booleans and numbers are read strictly, ``a=x,b=y`` lists are split. Every
value the relay cannot use is a :class:`SettingsError` naming the setting."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a value the relay cannot use."""


def read_value(env: Mapping[str, str], name: str, *, secret: bool) -> str | None:
    if secret:
        path = env.get(f"{name}_FILE")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    value = env.get(name)
    return value.strip() if value is not None else None


def convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(default).__name__}") from None
    return raw


def parse_pairs(name: str, raw: str) -> list[tuple[str, str]]:
    """Parse ``a=x,b=y`` settings; a malformed entry is an error, never silently skipped."""
    pairs = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{name}: expected name=value, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def http_url(value: str, where: str) -> str:
    """``value`` as an http(s) base URL without its trailing '/', else a SettingsError naming
    ``where`` (a URL Python cannot even split, ``http://[::1``, failed later as a 500)."""
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it checks the port: a number from 0 to 65535)
    except ValueError as exc:
        raise SettingsError(f"{where}: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise SettingsError(f"{where} must be an http(s) URL like http://host:port, not {url!r}")
    return url
