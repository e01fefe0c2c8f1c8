"""Every configured provider as the admin sees it (where it was declared, whether a key is set,
what discovery found) and the "test connection" check. Keys are never part of any view."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import falcon
import httpx

from app.adapters.base import Adapter
from app.adapters.failures import error_from_body, upstream_errors
from app.admin.context import AdminContext
from app.admin.pages.providers_common import custom_path, iso, redact, safe_url
from app.discovery import InstanceStatus
from app.errors import RelayError
from app.providers import BUILTIN_BY_NAME, Provider
from app.stores.models import CustomProvider

log = logging.getLogger("llm_relay.admin")
TEST_TIMEOUT = 15.0
API_LABELS = {
    "openai_compat": "OpenAI-compatible",
    "anthropic": "Anthropic Messages",
    "gemini": "Gemini",
    "perplexity": "Perplexity Agent API",
    "ollama": "Ollama",
}


def declared_in(provider: Provider) -> str:
    if provider.origin == "admin":
        return "admin UI"
    if provider.origin == "file":
        return "PROVIDERS_FILE"
    if provider.is_ollama:
        return "environment (OLLAMA_INSTANCES)"
    spec = BUILTIN_BY_NAME.get(provider.name)
    return f"environment ({spec.env}_API_KEY)" if spec else "environment"


def record_key_status(api_key_env: str | None, api_key_file: str | None) -> str:
    """Where a custom provider's key comes from, and whether it is there (never the key)."""
    if api_key_env:
        return f"key set (env {api_key_env})" if os.environ.get(api_key_env) else f"env {api_key_env} is not set"
    if api_key_file:
        return f"key from file {api_key_file}"
    return "no key"


def key_status(provider: Provider, row: CustomProvider | None = None) -> str:
    if provider.is_ollama:
        return "no key needed"
    if row is not None:
        return record_key_status(row.api_key_env, row.api_key_file)
    if not provider.api_key:
        return "no key"
    spec = BUILTIN_BY_NAME.get(provider.name) if provider.kind == "builtin" else None
    if spec is None:
        return "key set"
    variable = f"{spec.env}_API_KEY"
    if os.environ.get(f"{variable}_FILE") and not os.environ.get(variable):
        return f"key set (file named by {variable}_FILE)"
    return f"key set (env {variable})"


def discovery_view(status: InstanceStatus | None, secret: str | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "ok": status.ok,
        "models": status.models,
        "checked_at": iso(status.checked_at),
        "error": redact(status.error, secret),
    }


def provider_view(ctx: AdminContext, provider: Provider, row: CustomProvider | None = None) -> dict[str, Any]:
    editable = provider.origin == "admin" and provider.kind == "custom"
    manage = custom_path(provider.name) if editable else ("/ollama" if provider.is_ollama else None)
    return {
        "name": provider.name,
        "kind": provider.kind,
        "api": provider.family,
        "api_label": API_LABELS.get(provider.family, provider.family),
        "origin": provider.origin,
        "declared_in": declared_in(provider),
        "base_url": safe_url(provider.base_url),
        "key": key_status(provider, row),
        "models": len(ctx.services.catalog.models(provider.name)),
        "declared_models": list(provider.models),
        "discovery": discovery_view(ctx.discovery.status.get(provider.name), provider.api_key)
        if provider.discover
        else None,
        "error": None,
        "editable": editable,
        "manage_url": manage,
        "testable": True,
    }


def broken_view(name: str, row: CustomProvider | None, error: str) -> dict[str, Any]:
    """An admin-declared provider the relay could not build (an unset key variable, say)."""
    api = row.api if row is not None else ""
    return {
        "name": name,
        "kind": "custom",
        "api": api,
        "api_label": API_LABELS.get({"openai": "openai_compat"}.get(api, api), api),
        "origin": "admin",
        "declared_in": "admin UI",
        "base_url": safe_url(row.base_url) if row is not None else "",
        "key": record_key_status(row.api_key_env, row.api_key_file) if row is not None else "",
        "models": 0,
        "declared_models": list(row.models or []) if row is not None else [],
        "discovery": None,
        "error": error,
        "editable": row is not None,
        "manage_url": custom_path(name) if row is not None else None,
        "testable": False,
    }


async def provider_views(ctx: AdminContext) -> list[dict[str, Any]]:
    """Every provider the relay can reach, then admin providers it could not build."""
    with ctx.services.database.context:
        rows = {row.name: row for row in await CustomProvider.all()}
    providers = ctx.services.upstreams.providers
    views = [
        provider_view(ctx, p, rows.get(p.name) if p.origin == "admin" and p.kind == "custom" else None)
        for p in providers.values()
    ]
    for name, error in sorted(ctx.live.provider_errors.items()):
        if name not in providers:
            views.append(broken_view(name, rows.get(name), error))
    return views


async def test_connection(ctx: AdminContext, name: str) -> dict[str, Any]:
    """List the provider's models (or, for an API without a model list, a request that costs
    nothing) and say what happened. Changes nothing."""
    provider = ctx.services.upstreams.get(name)
    if provider is None:
        raise falcon.HTTPNotFound(title=f"no provider named {name!r}")
    started = time.monotonic()
    models: int | None = None
    try:
        adapter = ctx.services.upstreams.adapter(name)
        if type(adapter).list_models is Adapter.list_models:
            message = await asyncio.wait_for(_probe(ctx.services.upstreams.http.control, provider), TEST_TIMEOUT)
        else:
            models = len(await asyncio.wait_for(adapter.list_models(), TEST_TIMEOUT))
            message = f"connected: the provider lists {models} models"
        ok = True
    except RelayError as exc:
        ok, message = False, exc.message
    except TimeoutError:
        ok, message = False, f"no answer within {TEST_TIMEOUT:g} seconds"
    except Exception as exc:  # a reply the adapter could not make sense of
        log.exception("testing provider %s", name)
        ok, message = False, f"unexpected reply ({type(exc).__name__})"
    return {
        "provider": name,
        "ok": ok,
        "message": redact(message, provider.api_key),
        "models": models,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
    }


async def _probe(http: httpx.AsyncClient, provider: Provider) -> str:
    """For APIs without a model list: an empty request, refused before any model runs. A key
    that is refused answers 401 or 403; a good one gets a 4xx about the request itself."""
    headers = {"authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
    with upstream_errors(provider):
        if provider.family == "perplexity":
            response = await http.post(provider.base_url + "/v1/responses", json={}, headers=headers)
        else:
            response = await http.get(provider.base_url, headers=headers)
    if response.status_code in (401, 403) or response.status_code >= 500:
        raise error_from_body(provider, response.status_code, response.content)
    return f"reachable, key not refused (an empty request got HTTP {response.status_code}; no tokens used)"
