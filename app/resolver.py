"""Model resolution: which provider and model a requested name means.

In order: a user alias; ``provider/model`` for a configured provider (it reaches the provider
even when the catalog doesn't know the model yet); an Ollama model as ``instance-model``; a
bare id that exactly one configured provider serves; a built-in family alias; the default
model. Anything else is a 404, never a silent reroute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.aliases import builtin_aliases
from app.catalog import Catalog, ModelEntry
from app.errors import BadRequest, ModelNotFound
from app.internal import Target
from app.providers import BUILTIN_BY_NAME
from app.upstreams import Upstreams

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


OLLAMA_DEFAULT_TAG = ":latest"


class Resolver:
    def __init__(
        self,
        catalog: Catalog,
        upstreams: Upstreams,
        aliases: Mapping[str, str] | None = None,
        default_model: str = "",
    ) -> None:
        self.catalog = catalog
        self.upstreams = upstreams
        self.aliases = {k.lower(): v for k, v in (aliases or {}).items()}
        self.default_model = default_model
        self.disabled: frozenset[tuple[str, str]] = frozenset()  # (provider, model id lower-cased)
        self._families: tuple[int, dict[str, str]] = (-1, {})

    @property
    def family_aliases(self) -> dict[str, str]:
        """The built-in family aliases, recomputed only when the catalog changes."""
        version, aliases = self._families
        if version != self.catalog.version:
            aliases = builtin_aliases(self.catalog)
            self._families = (self.catalog.version, aliases)
        return aliases

    def resolve(self, name: str) -> Target:
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("'model' is required", param="model")
        if _CONTROL.search(name):
            # It would reach response headers, logs and upstream URLs: no such name is a model's.
            raise BadRequest(f"the model name {name!r} contains a control character", param="model")
        found, reason = self._lookup(name.strip())
        if found is not None:
            return self._enabled(found)
        if self.default_model:
            target, _ = self._lookup(self.default_model)
            if target is not None:
                return self._enabled(Target(target.provider, target.model, "default", target.catalog_entry))
        raise ModelNotFound(reason, param="model")

    def _enabled(self, target: Target) -> Target:
        if (target.provider.name, target.model.lower()) in self.disabled:
            raise ModelNotFound(f"model {target.label} is disabled on this relay", param="model")
        return target

    def _lookup(self, name: str) -> tuple[Target | None, str]:
        alias = self.aliases.get(name.lower())
        if alias is not None:
            target, reason = self._direct(alias)
            if target is None:
                return None, f"alias {name!r} points at {alias!r}, which is unavailable: {reason}"
            return Target(target.provider, target.model, "alias", target.catalog_entry), ""
        target, reason = self._direct(name)
        if target is not None:
            return target, ""
        family = self.family_aliases.get(name.lower())
        if family is not None:
            target, family_reason = self._direct(family)
            if target is not None:
                return Target(target.provider, target.model, "alias", target.catalog_entry), ""
            return None, f"{name!r} means {family!r}, which is unavailable: {family_reason}"
        return None, reason

    def _direct(self, name: str) -> tuple[Target | None, str]:
        prefix, slash, rest = name.partition("/")
        if slash and rest:
            provider = self.upstreams.get(prefix)
            if provider is None:
                provider = next((p for n, p in self.upstreams.providers.items() if n.lower() == prefix.lower()), None)
            if provider is not None:
                if not provider.is_ollama and rest.lower().endswith(OLLAMA_DEFAULT_TAG):
                    # Ollama clients add ":latest" to every name; no other provider's id has it.
                    rest = rest[: -len(OLLAMA_DEFAULT_TAG)]
                entry = self.catalog.get(provider.name, rest)
                if entry is not None:
                    return self._target(entry), ""
                # "openai/gpt-oss-120b" is Groq's model id, not an unknown OpenAI model.
                whole = [e for e in self.catalog.find(name) if e.provider in self.upstreams.providers]
                if len(whole) == 1:
                    return self._target(whole[0]), ""
                return Target(provider, rest, "direct", None), ""
        dashed = self._dashed(name)
        if dashed is not None:
            return dashed, ""
        served = [e for e in self.catalog.find(name) if e.provider in self.upstreams.providers]
        if len(served) == 1:
            return self._target(served[0]), ""
        if len(served) > 1:
            choices = ", ".join(sorted(e.label for e in served))
            raise BadRequest(f"model {name!r} is served by several providers; name one of: {choices}", param="model")
        return None, self._why_unknown(name, prefix if slash else "")

    def _dashed(self, name: str) -> Target | None:
        """``myserver-llama3.2``: the form other relays use for instance-namespaced models."""
        for provider in self.upstreams.ollama:
            head = provider.name + "-"
            if name.lower().startswith(head.lower()):
                entry = self.catalog.get(provider.name, name[len(head) :])
                if entry is not None:
                    return self._target(entry)
        return None

    def _target(self, entry: ModelEntry) -> Target:
        return Target(self.upstreams.providers[entry.provider], entry.id, "direct", entry.info)

    def _why_unknown(self, name: str, prefix: str) -> str:
        if name.endswith("/") and name.count("/") == 1:
            return f"model {name!r} names a provider but no model after the '/'"
        spec = BUILTIN_BY_NAME.get(prefix.lower())
        if spec is not None:
            return f"provider {spec.name!r} is not configured: set {spec.env}_API_KEY to use {name!r}"
        unconfigured = [e for e in self.catalog.find(name) if e.provider not in self.upstreams.providers]
        if unconfigured:
            spec = BUILTIN_BY_NAME.get(unconfigured[0].provider)
            hint = f": set {spec.env}_API_KEY" if spec else ""
            return f"model {name!r} belongs to provider {unconfigured[0].provider!r}, which is not configured{hint}"
        return f"model {name!r} not found"
