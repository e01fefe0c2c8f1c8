"""The relay's pricing snapshot, built from LiteLLM's model catalog (MIT licence, BerriAI):
only the providers the relay serves and the fields pricing and listing use."""

from __future__ import annotations

from typing import Any

# LiteLLM provider -> the relay's provider
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "perplexity": "perplexity",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "xai": "xai",
    "openrouter": "openrouter",
}
MODES = {"chat", "completion", "embedding", "responses"}
KEEP_PREFIXES = ("input_cost", "output_cost", "cache_", "search_", "max_", "supports_", "tiered")
KEEP = {"mode", "deprecation_date", "web_search_billing_unit", "litellm_provider"}
ATTRIBUTION = (
    "Generated from LiteLLM's model_prices_and_context_window.json "
    "(MIT licence, Copyright (c) 2023 Berri AI) by scripts/build_pricing_snapshot.py."
)

Models = dict[str, dict[str, dict[str, Any]]]


class CatalogFormatError(ValueError):
    """The downloaded document is not a LiteLLM model catalog."""


def build_models(catalog: Any) -> Models:
    if not isinstance(catalog, dict) or not any(
        isinstance(v, dict) and "litellm_provider" in v for v in catalog.values()
    ):
        raise CatalogFormatError("not a LiteLLM model catalog (no entry names a litellm_provider)")
    models: Models = {}
    for key, entry in sorted(catalog.items()):
        if not isinstance(entry, dict) or key == "sample_spec":
            continue
        provider = PROVIDERS.get(str(entry.get("litellm_provider", "")))
        if provider is None or entry.get("mode") not in MODES:
            continue
        model = key.split("/", 1)[1] if key.startswith(provider + "/") else key
        if model.startswith("ft:"):
            continue  # fine-tuning templates, not models anyone can call by that name
        kept = {k: v for k, v in entry.items() if k in KEEP or k.startswith(KEEP_PREFIXES)}
        models.setdefault(provider, {})[model] = kept
    return models


def build_snapshot(catalog: Any) -> dict[str, Any]:
    return {
        "attribution": ATTRIBUTION,
        "rates": "USD per token (per request/query where the field says so), as LiteLLM publishes them",
        "models": build_models(catalog),
    }


def diff(old: Models, new: Models) -> dict[str, Any]:
    """What a sync changed: models added and removed, and each changed rate as [old, new]."""
    labels_old = {f"{p}/{m}": e for p, ms in old.items() for m, e in ms.items()}
    labels_new = {f"{p}/{m}": e for p, ms in new.items() for m, e in ms.items()}
    changed: dict[str, dict[str, list[Any]]] = {}
    for label in sorted(labels_old.keys() & labels_new.keys()):
        before, after = labels_old[label], labels_new[label]
        fields = {
            name: [before.get(name), after.get(name)]
            for name in sorted(before.keys() | after.keys())
            if "cost" in name and before.get(name) != after.get(name)
        }
        if fields:
            changed[label] = fields
    return {
        "added": sorted(labels_new.keys() - labels_old.keys()),
        "removed": sorted(labels_old.keys() - labels_new.keys()),
        "changed": changed,
    }
