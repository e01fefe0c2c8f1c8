"""Custom providers: any number of OpenAI- or Anthropic-compatible endpoints, declared in a
YAML file named by ``PROVIDERS_FILE`` (the admin UI will edit the same records)::

    providers:
      - name: lmstudio                 # the prefix clients use: lmstudio/<model>
        api: openai                    # openai | anthropic
        base_url: http://127.0.0.1:1234/v1
        api_key_env: LMSTUDIO_API_KEY  # or api_key_file: /run/secrets/key (or no key at all)
        models: [qwen2.5-7b-instruct]  # optional; without it the list comes from GET /models

The key is never written in the file itself, only where to find it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from app.providers import Provider
from app.settings import SettingsError
from app.settings_values import http_url

FAMILIES = {"openai": "openai_compat", "anthropic": "anthropic"}
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
_KEYS = {"name", "api", "base_url", "api_key_env", "api_key_file", "models"}


SECTIONS = ("providers", "routes", "limits")  # what PROVIDERS_FILE may hold


def providers_file_section(path: str, section: str) -> list[Any]:
    """One list of ``PROVIDERS_FILE`` (custom providers, routes, rate limits; empty when it has
    none); a clear SettingsError for a file that can't be read or has none of them."""
    if not path:
        return []
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise SettingsError(f"PROVIDERS_FILE: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"PROVIDERS_FILE: {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"PROVIDERS_FILE: {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not set(data) & set(SECTIONS):
        raise SettingsError(f"PROVIDERS_FILE: {path} needs a 'providers' list (or 'routes', 'limits')")
    entries = data.get(section, [])
    if not isinstance(entries, list):
        raise SettingsError(f"PROVIDERS_FILE: {path} needs a '{section}' list, not {type(entries).__name__}")
    return entries


def load_custom_providers(path: str, env: Mapping[str, str] | None = None) -> list[Provider]:
    env = os.environ if env is None else env
    return [_provider(entry, index, env) for index, entry in enumerate(providers_file_section(path, "providers"))]


def _provider(entry: Any, index: int, env: Mapping[str, str]) -> Provider:
    return provider_from_record(entry, f"PROVIDERS_FILE: providers[{index}]", env, origin="file")


def provider_from_record(entry: Any, where: str, env: Mapping[str, str] | None = None, *, origin: str) -> Provider:
    """A custom provider from a file entry or an admin record; a clear SettingsError otherwise."""
    env = os.environ if env is None else env
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be a mapping")
    unknown = set(entry) - _KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    name = str(entry.get("name", ""))
    if not _NAME.fullmatch(name):
        raise SettingsError(f"{where}: name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    family = FAMILIES.get(str(entry.get("api", "")))
    if family is None:
        raise SettingsError(f"{where} ({name}): api must be one of {sorted(FAMILIES)}")
    base_url = http_url(str(entry.get("base_url", "")), f"{where} ({name}): base_url")
    models = entry.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise SettingsError(f"{where} ({name}): models must be a list of model ids")
    key = _key(entry, env, f"{where} ({name})")
    return Provider(
        name, family, base_url, key, kind="custom", discover=not models, models=tuple(models), origin=origin
    )


def _key(entry: dict[str, Any], env: Mapping[str, str], where: str) -> str | None:
    if entry.get("api_key_env"):
        value = env.get(str(entry["api_key_env"]))
        if not value:
            raise SettingsError(f"{where}: environment variable {entry['api_key_env']} is not set")
        return value.strip()
    if entry.get("api_key_file"):
        try:
            return Path(str(entry["api_key_file"])).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{where}: cannot read {entry['api_key_file']}: {exc.strerror}") from None
    return None
