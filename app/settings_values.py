"""How a setting's text from the environment becomes its value: a secret may come from a
``<NAME>_FILE``, booleans and numbers are read strictly, ``a=x,b=y`` lists are split. Every
value the relay cannot use is a :class:`SettingsError` naming the setting."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import fields
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


def check_values(settings: Any) -> None:
    """Values that cannot work (a batch of 0 rows, a poll every 0 s, NaN, a port past 65535, an
    unknown log level, a proxy that is no address) are refused at start, naming the setting."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_number(f.metadata["env"], value, f.metadata.get("minimum"))
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"LOG_LEVEL={settings.log_level!r} is not one of debug, info, warning, error, critical")
    for proxy in (p.strip() for p in settings.trusted_proxies.split(",") if p.strip()):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise SettingsError(f"TRUSTED_PROXIES: {proxy!r} is not an address or a network") from None
    for env, port in (("PORT", settings.port), ("ADMIN_PORT", settings.admin_port)):
        if port > 65535:
            raise SettingsError(f"{env}={port} is not a port (0 to 65535; 0: any free one)")


def _check_number(env: str, value: float, minimum: float | None) -> None:
    """A number must be finite, and above 0 unless ``minimum`` (inclusive) says otherwise."""
    if not math.isfinite(value):
        raise SettingsError(f"{env}={value!r} must be a finite number")
    if minimum is None and value <= 0:
        raise SettingsError(f"{env}={value!r} must be above 0")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{env}={value!r} must be {minimum:g} or more")
