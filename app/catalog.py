"""The models each provider offers: the bundled pricing snapshot for cloud providers, plus
what the background discovery found on Ollama servers. Lives in memory; the request path
only reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelEntry:
    provider: str
    id: str
    mode: str  # chat | completion | embedding | responses
    info: Mapping[str, Any] = field(default_factory=dict)
    discovered: bool = False

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.id}"


def load_pricing_snapshot() -> dict[str, dict[str, dict[str, Any]]]:
    text = resources.files("app").joinpath("data/pricing.json").read_text()
    models: dict[str, dict[str, dict[str, Any]]] = json.loads(text)["models"]
    return models


def model_key(model_id: str, *, ollama: bool) -> str:
    """Ids match case-insensitively; on Ollama a missing tag means ``:latest``."""
    key = model_id.strip().lower()
    if ollama and ":" not in key.rsplit("/", 1)[-1]:
        key += ":latest"
    return key


class Catalog:
    def __init__(self, pricing: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        self._pricing = pricing
        self._by_provider: dict[str, dict[str, ModelEntry]] = {}
        self._ollama: set[str] = set()
        self._keys: dict[str, str] = {}  # provider -> its key in the pricing snapshot
        self.pricing_source = "bundled snapshot"
        self.version = 0  # bumped on every change, so derived views can be cached

    def add_provider(self, name: str, catalog_key: str | None, *, ollama: bool = False) -> None:
        """Register a provider and the snapshot models it serves."""
        if catalog_key:
            self._keys[name] = catalog_key
        entries = {}
        for model_id, info in (self._pricing.get(catalog_key or "") or {}).items():
            entry = ModelEntry(name, model_id, str(info.get("mode", "chat")), info)
            entries[model_key(model_id, ollama=ollama)] = entry
        self._by_provider[name] = entries
        if ollama:
            self._ollama.add(name)
        self.version += 1

    def remove_provider(self, name: str) -> None:
        self._by_provider.pop(name, None)
        self._ollama.discard(name)
        self._keys.pop(name, None)
        self.version += 1

    @property
    def pricing(self) -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
        return self._pricing

    def replace_pricing(self, pricing: Mapping[str, Mapping[str, Mapping[str, Any]]], source: str) -> None:
        """Swap in a synced snapshot; what discovery found stays. Requests already resolved keep
        the entry they were given, and rows store the rates they used."""
        self._pricing = pricing
        for name, key in self._keys.items():
            discovered = [e for e in self._by_provider.get(name, {}).values() if e.discovered]
            self.add_provider(name, key, ollama=name in self._ollama)
            if discovered:
                self.set_discovered(name, discovered)
        self.pricing_source = source
        self.version += 1

    def set_discovered(self, provider: str, entries: Iterable[ModelEntry]) -> None:
        """Replace what discovery found for a provider (snapshot entries stay)."""
        ollama = provider in self._ollama
        kept = {k: e for k, e in self._by_provider.get(provider, {}).items() if not e.discovered}
        for entry in entries:
            kept[model_key(entry.id, ollama=ollama)] = entry
        self._by_provider[provider] = kept
        self.version += 1

    def get(self, provider: str, model_id: str) -> ModelEntry | None:
        entries = self._by_provider.get(provider)
        if entries is None:
            return None
        return entries.get(model_key(model_id, ollama=provider in self._ollama))

    def find(self, model_id: str) -> list[ModelEntry]:
        """Every provider's entry for a bare model id."""
        found = []
        for provider in self._by_provider:
            entry = self.get(provider, model_id)
            if entry is not None:
                found.append(entry)
        return found

    def models(self, provider: str | None = None) -> list[ModelEntry]:
        providers = [provider] if provider else list(self._by_provider)
        out: list[ModelEntry] = []
        for name in providers:
            out.extend(sorted(self._by_provider.get(name, {}).values(), key=lambda e: e.id))
        return out
