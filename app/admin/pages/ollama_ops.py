"""What the Ollama page and its JSON API do: list the instances (from ``OLLAMA_INSTANCES``,
read-only, or added by an admin and kept in ``ollama_instance``) with their discovery status
and models, add and remove instances, delete models (pulls: :mod:`ollama_pulls`).

Failures are ``falcon.HTTPError``: the API reports them as JSON, the page shows their title.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon
from tortoise.exceptions import IntegrityError

from app.adapters.ollama import OllamaAdapter
from app.admin.context import AdminContext
from app.admin.pages.settings_common import iso
from app.errors import RelayError
from app.providers import BUILTIN_BY_NAME, Provider
from app.settings_values import SettingsError, http_url
from app.stores.models import CustomProvider, OllamaInstance

log = logging.getLogger("llm_relay.admin")
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")  # the rule for custom provider names
MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


def human_size(size: Any) -> str:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def models_of(ctx: AdminContext, name: str) -> list[dict[str, Any]]:
    """The models discovery found on an instance, from its ``/api/tags`` entries."""
    out = []
    for entry in ctx.services.catalog.models(name):
        raw = entry.info.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        size = entry.info.get("size")
        out.append(
            {
                "name": entry.id,
                "use": f"{name}/{entry.id}",
                "size": size if isinstance(size, int) else None,
                "size_text": human_size(size),
                "parameter_size": details.get("parameter_size") or "",
                "quantization": details.get("quantization_level") or "",
                "family": details.get("family") or "",
                "modified_at": entry.info.get("modified_at") or "",
                "mode": entry.mode,
            }
        )
    return out


def _view(ctx: AdminContext, provider: Provider, *, with_models: bool = True) -> dict[str, Any]:
    status = ctx.discovery.status.get(provider.name)
    checked = status.checked_at if status else None
    state = "pending" if checked is None else ("ok" if status and status.ok else "error")
    view: dict[str, Any] = {
        "name": provider.name,
        "base_url": provider.base_url,
        "source": "admin" if provider.origin == "admin" else "env",
        "removable": provider.origin == "admin",
        "active": True,
        "status": state,
        "error": status.error if status else None,
        "checked_at": iso(checked),
        "model_count": len(ctx.services.catalog.models(provider.name)),
    }
    if with_models:
        view["models"] = models_of(ctx, provider.name)
    return view


async def list_instances(ctx: AdminContext, *, with_models: bool = True) -> list[dict[str, Any]]:
    """Every Ollama instance the relay uses, then admin records it could not use (a name taken)."""
    views = [_view(ctx, p, with_models=with_models) for p in ctx.services.upstreams.ollama]
    stored = await ctx.in_db(lambda: OllamaInstance.all().order_by("name"))
    active = {v["name"] for v in views}
    for row in stored:
        if row.name not in active:
            views.append(
                {
                    "name": row.name,
                    "base_url": row.base_url,
                    "source": "admin",
                    "removable": True,
                    "active": False,
                    "status": "error",
                    "error": "not in use: another provider has this name",
                    "checked_at": None,
                    "model_count": 0,
                    **({"models": []} if with_models else {}),
                }
            )
    return views


def instance(ctx: AdminContext, name: str) -> Provider:
    provider = ctx.services.upstreams.get(name)
    if provider is None or not provider.is_ollama:
        raise falcon.HTTPNotFound(title=f"no Ollama instance named {name!r}")
    return provider


def get_instance(ctx: AdminContext, name: str) -> dict[str, Any]:
    return _view(ctx, instance(ctx, name))


def _check_url(url: str) -> str:
    try:
        url = http_url(url, "the URL")
    except SettingsError as exc:
        raise falcon.HTTPBadRequest(title=str(exc)) from None
    if len(url) > 500:
        raise falcon.HTTPBadRequest(title="the URL is longer than 500 characters")
    return url


async def add_instance(ctx: AdminContext, name: Any, url: Any) -> dict[str, Any]:
    name, url = str(name or "").strip(), _check_url(str(url or ""))
    if not NAME.fullmatch(name):
        raise falcon.HTTPBadRequest(
            title=f"the name {name!r} must be 1-40 lower-case letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    taken = {n.lower() for n in ctx.services.upstreams.providers} | set(BUILTIN_BY_NAME)

    async def create() -> bool:
        if name in taken or await OllamaInstance.exists(name=name) or await CustomProvider.exists(name=name):
            return False
        try:
            await OllamaInstance.create(name=name, base_url=url)
        except IntegrityError:  # added by someone else just now
            return False
        return True

    if not await ctx.in_db(create):
        raise falcon.HTTPConflict(title=f"the name {name!r} is already used by a provider")
    await ctx.live.reload()  # adds the instance and discovers its models
    log.info("admin: added Ollama instance %s at %s", name, url)
    return get_instance(ctx, name)


async def remove_instance(ctx: AdminContext, name: str) -> None:
    deleted = await ctx.in_db(lambda: OllamaInstance.filter(name=name).delete())
    if not deleted:
        if ctx.services.upstreams.get(name) is not None:
            raise falcon.HTTPConflict(title=f"{name!r} comes from the environment (OLLAMA_INSTANCES); remove it there")
        raise falcon.HTTPNotFound(title=f"no Ollama instance named {name!r}")
    await ctx.live.reload()
    log.info("admin: removed Ollama instance %s", name)


async def refresh(ctx: AdminContext, name: str) -> dict[str, Any]:
    instance(ctx, name)
    await ctx.discovery.refresh_one(name)
    return get_instance(ctx, name)


def adapter_of(ctx: AdminContext, name: str) -> OllamaAdapter:
    instance(ctx, name)
    adapter = ctx.services.upstreams.adapter(name)
    if not isinstance(adapter, OllamaAdapter):  # pragma: no cover - every ollama provider has one
        raise falcon.HTTPConflict(title=f"{name!r} is not served by the Ollama adapter")
    return adapter


def model_name(model: Any) -> str:
    text = str(model or "").strip()
    if not MODEL.fullmatch(text):
        raise falcon.HTTPBadRequest(title=f"{text!r} is not a model name like llama3.2 or qwen3:8b")
    return text


async def delete_model(ctx: AdminContext, name: str, value: Any) -> str:
    adapter, model = adapter_of(ctx, name), model_name(value)
    try:
        await adapter.delete_model(model)
    except RelayError as exc:
        if exc.status == 404:
            raise falcon.HTTPNotFound(title=f"{name} has no model {model!r}") from None
        raise falcon.HTTPBadGateway(title=f"deleting {model} failed: {exc.message}") from None
    log.info("admin: deleted model %s on Ollama instance %s", model, name)
    await ctx.discovery.refresh_one(name)
    return model
