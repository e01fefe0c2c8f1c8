"""Model listings and descriptions in both dialects: ``/v1/models``, ``/api/tags``,
``/api/show`` and ``/api/ps``. Cloud models are described from the catalog; Ollama models
from what their server reported."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from app.adapters.ollama import OllamaAdapter
from app.catalog import ModelEntry
from app.errors import RelayError
from app.internal import Target
from app.services import Services

log = logging.getLogger("llm_relay.listing")
LISTED_MODES = frozenset({"chat", "completion", "responses", "embedding"})
STARTED = int(time.time())


def visible(services: Services) -> list[ModelEntry]:
    return [
        entry
        for name in services.upstreams.providers
        for entry in services.catalog.models(name)
        if entry.mode in LISTED_MODES
    ]


def alias_names(services: Services) -> dict[str, str]:
    names = {**services.resolver.family_aliases, **services.resolver.aliases}
    return {alias: target for alias, target in names.items() if _resolvable(services, alias)}


def _resolvable(services: Services, name: str) -> bool:
    try:
        return services.resolver.resolve(name).via != "default"
    except RelayError:
        return False


def openai_model(entry_id: str, owner: str) -> dict[str, Any]:
    return {"id": entry_id, "object": "model", "created": STARTED, "owned_by": owner}


def openai_models(services: Services) -> dict[str, Any]:
    data = [openai_model(e.label, e.provider) for e in visible(services)]
    data += [openai_model(alias, "alias") for alias in sorted(alias_names(services))]
    return {"object": "list", "data": data}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _details(entry: ModelEntry) -> dict[str, Any]:
    if entry.discovered and isinstance(entry.info.get("details"), dict):
        return dict(entry.info["details"])
    return {
        "parent_model": "",
        "format": "",
        "family": entry.provider,
        "families": [entry.provider],
        "parameter_size": "",
        "quantization_level": "",
    }


def ollama_tag(services: Services, entry: ModelEntry) -> dict[str, Any]:
    tag: dict[str, Any] = {
        "name": entry.label,
        "model": entry.label,
        "modified_at": entry.info.get("modified_at") or _iso(STARTED),
        "size": entry.info.get("size", 0),
        # Clients group models by digest (llm-ollama takes a shared one for aliases of one model),
        # so a model without its own gets one made from its name: stable, and its alone.
        "digest": entry.info.get("digest") or hashlib.sha256(entry.label.encode()).hexdigest(),
        "details": _details(entry),
    }
    if not entry.discovered:
        tag["remote_model"] = entry.id  # the provider's base URL is the relay's business, not the client's
    return tag


def ollama_tags(services: Services) -> dict[str, Any]:
    return {"models": [ollama_tag(services, e) for e in visible(services)]}


def capabilities(info: dict[str, Any] | Any, mode: str) -> list[str]:
    if mode == "embedding":
        return ["embedding"]
    # A model the pricing catalog does not know (one a custom server lists) is not held back
    # from tools or images: its provider decides, as in the quirks stage; clients such as
    # llm-ollama refuse what /api/show does not list. An admin's override still says.
    unknown = "mode" not in info
    found = ["completion"]
    for flag, capability, if_unknown in (
        ("supports_function_calling", "tools", True),
        ("supports_vision", "vision", True),
        ("supports_reasoning", "thinking", False),
    ):
        if info.get(flag, unknown and if_unknown):
            found.append(capability)
    return found


async def ollama_show(services: Services, target: Target) -> dict[str, Any]:
    provider = target.provider
    if provider.is_ollama:
        adapter = services.upstreams.adapter(provider.name)
        assert isinstance(adapter, OllamaAdapter)
        return await adapter.post_json("/api/show", {"model": target.model})
    info = dict(target.catalog_entry or {})
    switch = services.model_switches.get((provider.name, target.model.lower()))
    if switch is not None:  # what an admin set where the catalog is wrong or silent
        for flag, value in (
            ("supports_function_calling", switch.tools),
            ("supports_vision", switch.vision),
            ("supports_reasoning", switch.reasoning),
        ):
            if value is not None:
                info[flag] = value
    entry = ModelEntry(provider.name, target.model, str(info.get("mode", "chat")), info)
    model_info: dict[str, Any] = {"general.architecture": provider.name, "general.basename": target.model}
    if isinstance(info.get("max_input_tokens"), int):
        model_info[f"{provider.name}.context_length"] = info["max_input_tokens"]
    return {
        "license": "",
        "modelfile": "",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _details(entry),
        "model_info": model_info,
        "capabilities": capabilities(info, entry.mode),
        "modified_at": _iso(STARTED),
        "remote_model": target.model,
    }


async def ollama_ps(services: Services) -> dict[str, Any]:
    async def running(name: str) -> list[dict[str, Any]]:
        adapter = services.upstreams.adapter(name)
        assert isinstance(adapter, OllamaAdapter)
        try:
            data = await asyncio.wait_for(adapter.get_json("/api/ps"), timeout=3)
        except (RelayError, TimeoutError) as exc:
            log.warning("ollama instance %s: /api/ps failed: %s", name, exc)
            return []
        models = []
        for model in data.get("models") or ():
            if isinstance(model, dict):
                label = f"{name}/{model.get('name') or model.get('model')}"
                models.append({**model, "name": label, "model": label})
        return models

    results = await asyncio.gather(*(running(p.name) for p in services.upstreams.ollama))
    return {"models": [m for found in results for m in found]}
