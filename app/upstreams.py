"""The providers this relay can reach, built from settings, and an adapter for each."""

from __future__ import annotations

from collections.abc import Mapping

from app.adapters import Adapter
from app.adapters.client import UpstreamClient
from app.adapters.images import ImageLimits
from app.custom_providers import load_custom_providers
from app.errors import NotSupported
from app.providers import BUILTIN_BY_NAME, BUILTIN_PROVIDERS, Provider
from app.settings import Settings, SettingsError, parse_pairs
from app.settings_values import http_url


def providers_from_settings(settings: Settings) -> list[Provider]:
    providers = []
    for spec in BUILTIN_PROVIDERS:
        key = settings.provider_keys.get(spec.name)
        if key:
            base_url = http_url(settings.provider_base_urls.get(spec.name, spec.base_url), f"{spec.env}_BASE_URL")
            providers.append(Provider(spec.name, spec.family, base_url, key, spec.catalog_key))
    for name, url in parse_pairs("OLLAMA_INSTANCES", settings.ollama_instances):
        if name in BUILTIN_BY_NAME or "/" in name:
            raise SettingsError(f"OLLAMA_INSTANCES: {name!r} can't name an instance (a provider or a '/')")
        url = http_url(url, f"OLLAMA_INSTANCES: {name}")
        providers.append(Provider(name, "ollama", url, kind="ollama", discover=True))
    for custom in load_custom_providers(settings.providers_file):
        if custom.name in BUILTIN_BY_NAME:
            raise SettingsError(f"PROVIDERS_FILE: {custom.name!r} is a built-in provider's name")
        providers.append(custom)
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise SettingsError(f"provider names must be unique, got {names}")
    return providers


class Upstreams:
    """Configured providers by name, with their adapters."""

    def __init__(
        self,
        providers: list[Provider],
        http: UpstreamClient,
        adapter_classes: Mapping[str, type[Adapter]],
        images: ImageLimits | None = None,
    ) -> None:
        self.http = http
        self.images = images
        self.adapter_classes = adapter_classes
        self.providers: dict[str, Provider] = {}
        self._adapters: dict[str, Adapter] = {}
        for provider in providers:
            self._add(provider)

    def _add(self, provider: Provider) -> None:
        self.providers[provider.name] = provider
        cls = self.adapter_classes.get(provider.family)
        if cls is not None:
            self._adapters[provider.name] = cls(provider, self.http, self.images)
        else:
            self._adapters.pop(provider.name, None)

    def set_admin_providers(self, providers: list[Provider]) -> tuple[list[Provider], list[str]]:
        """Make the admin-declared providers exactly ``providers`` (others are untouched).
        Returns the providers added or changed, and the names removed. Requests already under
        way keep the adapter they started with."""
        wanted = {p.name: p for p in providers if self.providers.get(p.name, p).origin == "admin"}
        removed = [n for n, p in self.providers.items() if p.origin == "admin" and n not in wanted]
        for name in removed:
            del self.providers[name]
            self._adapters.pop(name, None)
        changed = [p for p in wanted.values() if self.providers.get(p.name) != p]
        for provider in changed:
            self._add(provider)
        return changed, removed

    def get(self, name: str) -> Provider | None:
        return self.providers.get(name)

    def adapter(self, name: str) -> Adapter:
        adapter = self._adapters.get(name)
        if adapter is None:
            family = self.providers[name].family if name in self.providers else "unknown"
            raise NotSupported(f"provider {name!r} ({family} API) is not supported by this version yet")
        return adapter

    @property
    def ollama(self) -> list[Provider]:
        return [p for p in self.providers.values() if p.is_ollama]

    @property
    def discoverable(self) -> list[Provider]:
        return [p for p in self.providers.values() if p.discover]

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
