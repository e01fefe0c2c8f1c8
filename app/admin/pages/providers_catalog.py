"""The model catalog as the admin browses it: prices per million tokens with the admin's
overrides applied, context window, capabilities, and search with pagination."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.admin.context import AdminContext
from app.admin.pages.providers_common import model_path, per_million, plain
from app.catalog import ModelEntry
from app.pricing import PriceOverride
from app.pricing.rates import as_decimal
from app.runtime import ModelSwitch

PER_PAGE = 50
MAX_PER_PAGE = 200
CAPABILITIES = {"vision": "supports_vision", "reasoning": "supports_reasoning", "tools": "supports_function_calling"}
OLLAMA_CAPABILITIES = {"vision": "vision", "reasoning": "thinking", "tools": "tools"}


def exact_pattern(model_id: str) -> str:
    """The quirk-rule pattern that matches exactly one model id."""
    return f"^{re.escape(model_id)}$"


def catalog_capabilities(info: Mapping[str, Any]) -> dict[str, bool | None]:
    """What the catalog (or an Ollama server) says; None where nobody says."""
    if isinstance(info.get("capabilities"), list):
        listed = info["capabilities"]
        return {name: flag in listed for name, flag in OLLAMA_CAPABILITIES.items()}
    if "mode" in info:
        return {name: bool(info.get(flag)) for name, flag in CAPABILITIES.items()}
    return dict.fromkeys(CAPABILITIES)


def catalog_prices(info: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        "input": per_million(info.get("input_cost_per_token")),
        "cache_read": per_million(info.get("cache_read_input_token_cost")),
        "cache_write": per_million(info.get("cache_creation_input_token_cost")),
        "output": per_million(info.get("output_cost_per_token")),
        "request_fee": plain(as_decimal(info.get("input_cost_per_request"))),
    }


def effective_prices(info: Mapping[str, Any], override: PriceOverride | None) -> dict[str, str | None]:
    """The rates the cost engine applies (see app.pricing.engine.compute), per million tokens."""
    prices = catalog_prices(info)
    if override is None:
        return prices
    input_rate = override.input if override.input is not None else as_decimal(info.get("input_cost_per_token"))

    def cache(rate: Decimal | None, multiplier: Decimal | None, catalog: str | None) -> str | None:
        if rate is not None:
            return per_million(rate)
        if multiplier is not None and input_rate is not None:
            return per_million(input_rate * multiplier)
        return catalog

    return {
        "input": per_million(input_rate),
        "cache_read": cache(override.cache_read, override.cache_read_multiplier, prices["cache_read"]),
        "cache_write": cache(override.cache_write, override.cache_write_multiplier, prices["cache_write"]),
        "output": per_million(override.output) if override.output is not None else prices["output"],
        "request_fee": plain(override.request_fee) if override.request_fee is not None else prices["request_fee"],
    }


def quirk_targets(ctx: AdminContext) -> set[tuple[str | None, str]]:
    """(provider, pattern) of the admin's quirk rules, to mark the models they name."""
    return {(r.provider, r.model.pattern) for r in ctx.services.quirks.overrides if r.model is not None}


def model_view(
    ctx: AdminContext, entry: ModelEntry, quirks: set[tuple[str | None, str]] | None = None
) -> dict[str, Any]:
    services = ctx.services
    key = (entry.provider, entry.id.lower())
    override = services.pricer.overrides.get(key)
    switch = services.model_switches.get(key) or ModelSwitch()
    catalog_caps = catalog_capabilities(entry.info)
    chosen = {"vision": switch.vision, "reasoning": switch.reasoning, "tools": switch.tools}
    quirks = quirk_targets(ctx) if quirks is None else quirks
    context = entry.info.get("max_input_tokens") or entry.info.get("max_tokens")
    return {
        "provider": entry.provider,
        "id": entry.id,
        "label": entry.label,
        "mode": entry.mode,
        "configured": entry.provider in services.upstreams.providers,
        "discovered": entry.discovered,
        "prices": effective_prices(entry.info, override),
        "catalog_prices": catalog_prices(entry.info),
        "context_window": context if isinstance(context, int) else None,
        "max_output": entry.info.get("max_output_tokens")
        if isinstance(entry.info.get("max_output_tokens"), int)
        else None,
        "capabilities": {n: chosen[n] if chosen[n] is not None else catalog_caps[n] for n in CAPABILITIES},
        "catalog_capabilities": catalog_caps,
        "enabled": switch.enabled,
        "overridden": {
            "price": override is not None,
            "switches": key in services.model_switches,
            "quirk": (entry.provider, exact_pattern(entry.id)) in quirks,
        },
        "url": model_path(entry.provider, entry.id),
    }


def catalog_providers(ctx: AdminContext) -> list[dict[str, Any]]:
    """Providers for the filter: every one with models in the catalog, and every configured one."""
    names = list(
        dict.fromkeys([*(e.provider for e in ctx.services.catalog.models()), *ctx.services.upstreams.providers])
    )
    return [{"name": n, "configured": n in ctx.services.upstreams.providers} for n in names]


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def search(
    ctx: AdminContext, q: str = "", provider: str = "", page: Any = 1, per_page: Any = PER_PAGE
) -> dict[str, Any]:
    """One page of the catalog: every word of ``q`` in ``provider/model``, optionally one provider."""
    words = q.lower().split()
    entries = [e for e in ctx.services.catalog.models(provider or None) if all(w in e.label.lower() for w in words)]
    size = min(max(_int(per_page, PER_PAGE), 1), MAX_PER_PAGE)
    pages = max(1, math.ceil(len(entries) / size))
    number = min(max(_int(page, 1), 1), pages)
    quirks = quirk_targets(ctx)
    shown = entries[(number - 1) * size : number * size]
    return {
        "q": q,
        "provider": provider,
        "page": number,
        "pages": pages,
        "per_page": size,
        "total": len(entries),
        "models": [model_view(ctx, e, quirks) for e in shown],
    }
