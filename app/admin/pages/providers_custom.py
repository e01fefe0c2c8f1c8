"""Custom OpenAI- and Anthropic-compatible providers added in the admin UI (the custom_provider
table): checked by the same code that builds them, saved, made live, then discovered. Those
from PROVIDERS_FILE or the environment are shown but never changed here. The key itself is
never stored or shown, only the environment variable or file that holds it."""

from __future__ import annotations

import re
import time
from dataclasses import fields
from typing import Any

import falcon
from tortoise.exceptions import IntegrityError

from app.admin.context import AdminContext
from app.admin.pages.providers_common import Invalid, iso, safe_url, text
from app.admin.pages.providers_status import declared_in, discovery_view, key_status, record_key_status
from app.custom_providers import FAMILIES, provider_from_record
from app.providers import BUILTIN_BY_NAME, Provider
from app.settings import Settings, SettingsError
from app.stores.models import CustomProvider, OllamaInstance

FIELDS = ("name", "api", "base_url", "api_key_env", "api_key_file", "models")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
API_OF = {family: api for api, family in FAMILIES.items()}
# The relay's own secrets may not become a key sent to some other server.
RESERVED_ENV = frozenset(
    f.metadata["env"] for f in fields(Settings) if f.metadata.get("secret") and not f.metadata["env"].startswith("<")
)


def record_from(raw: dict[str, Any]) -> dict[str, Any]:
    """A custom_provider record from a JSON body or a form (models as a list or as text)."""
    unknown = sorted(set(raw) - set(FIELDS) - {"csrf_token"})
    if unknown:
        raise Invalid({"": f"unknown fields {unknown} (allowed: {list(FIELDS)})"})
    models = raw.get("models")
    if isinstance(models, str):
        models = models.replace(",", " ").split()
    return {
        "name": text(raw.get("name")),
        "api": text(raw.get("api")),
        "base_url": text(raw.get("base_url")),
        "api_key_env": text(raw.get("api_key_env")) or None,
        "api_key_file": text(raw.get("api_key_file")) or None,
        "models": models if models is not None else [],
    }


def check(record: dict[str, Any]) -> Provider:
    """The provider this record builds, or every reason it can't."""
    errors: dict[str, str] = {}
    env_name, key_file = record["api_key_env"], record["api_key_file"]
    if env_name and key_file:
        errors["api_key_file"] = "give a key environment variable or a key file, not both"
    if env_name and not ENV_NAME.fullmatch(env_name):
        errors["api_key_env"] = "must be an environment variable name (letters, digits, '_')"
    elif env_name in RESERVED_ENV:
        errors["api_key_env"] = f"{env_name} holds one of the relay's own secrets"
    if len(record["base_url"]) > 500 or len(key_file or "") > 500:
        errors["base_url" if len(record["base_url"]) > 500 else "api_key_file"] = "at most 500 characters"
    if isinstance(record["models"], list) and len(record["models"]) > 1000:
        errors["models"] = "at most 1000 models"
    if errors:
        raise Invalid(errors)
    try:
        return provider_from_record(record, f"custom provider {record['name']}", origin="admin")
    except SettingsError as exc:
        raise Invalid({"": str(exc)}) from None


async def _conflict(ctx: AdminContext, name: str) -> str | None:
    """Why ``name`` can't be a new admin provider (its namespace is every provider's)."""
    if name in BUILTIN_BY_NAME:
        return f"{name!r} is a built-in provider's name"
    existing = ctx.services.upstreams.get(name)
    if existing is not None and existing.origin != "admin":
        return f"{name!r} is already declared in {declared_in(existing)}"
    if await OllamaInstance.exists(name=name):
        return f"{name!r} is an Ollama instance added in the admin UI"
    if await CustomProvider.exists(name=name):
        return f"a custom provider named {name!r} exists already"
    return None


def _read_only(ctx: AdminContext, name: str) -> Invalid | None:
    existing = ctx.services.upstreams.get(name)
    if name in BUILTIN_BY_NAME or (existing is not None and existing.origin != "admin"):
        where = declared_in(existing) if existing is not None else "the environment"
        return Invalid({"": f"{name!r} is declared in {where}; change it there"}, status=409)
    return None


async def _made_live(ctx: AdminContext, name: str, started: float) -> None:
    """Reload, then make sure discovery ran for this provider since the change."""
    await ctx.live.reload()
    provider = ctx.services.upstreams.get(name)
    if provider is None or not provider.discover:
        return
    status = ctx.discovery.status.get(name)
    if status is None or status.checked_at is None or status.checked_at < started:
        await ctx.discovery.refresh_one(name)


async def create(ctx: AdminContext, raw: dict[str, Any]) -> dict[str, Any]:
    record = record_from(raw)
    check(record)
    started = time.time()
    with ctx.services.database.context:
        conflict = await _conflict(ctx, record["name"])
        if conflict is not None:
            raise Invalid({"name": conflict}, status=409)
        try:
            await CustomProvider.create(**record)
        except IntegrityError:
            raise Invalid({"name": f"a custom provider named {record['name']!r} exists already"}, status=409) from None
    await _made_live(ctx, record["name"], started)
    return await custom_view(ctx, record["name"])


async def update(ctx: AdminContext, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Replace an admin provider's record (renaming is removing and adding)."""
    with ctx.services.database.context:
        row = await CustomProvider.get_or_none(name=name)
    if row is None:
        raise _read_only(ctx, name) or falcon.HTTPNotFound(title=f"no custom provider named {name!r}")
    if text(raw.get("name")) not in ("", name):
        raise Invalid({"name": "a provider can't be renamed: add the new one, then remove this one"})
    record = record_from({**raw, "name": name})
    if record["base_url"] == safe_url(row.base_url):  # shown without credentials or query: keep them
        record["base_url"] = row.base_url
    check(record)
    started = time.time()
    with ctx.services.database.context:
        row.update_from_dict({k: v for k, v in record.items() if k != "name"})
        await row.save()
    await _made_live(ctx, name, started)
    return await custom_view(ctx, name)


async def delete(ctx: AdminContext, name: str) -> None:
    with ctx.services.database.context:
        deleted = await CustomProvider.filter(name=name).delete()
    if not deleted:
        raise _read_only(ctx, name) or falcon.HTTPNotFound(title=f"no custom provider named {name!r}")
    await ctx.live.reload()


def _row_view(ctx: AdminContext, row: CustomProvider) -> dict[str, Any]:
    provider = ctx.services.upstreams.get(row.name)
    live = provider is not None and provider.origin == "admin"
    return {
        "name": row.name,
        "api": row.api,
        "base_url": safe_url(row.base_url),
        "base_url_hidden": safe_url(row.base_url) != row.base_url,
        "api_key_env": row.api_key_env,
        "api_key_file": row.api_key_file,
        "models": list(row.models or []),
        "origin": "admin",
        "read_only": False,
        "key": record_key_status(row.api_key_env, row.api_key_file),
        "error": ctx.live.provider_errors.get(row.name),
        "discovery": discovery_view(ctx.discovery.status.get(row.name), provider.api_key)
        if live and provider is not None and provider.discover
        else None,
        "discovered": [e.id for e in ctx.services.catalog.models(row.name)] if live else [],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _file_view(ctx: AdminContext, provider: Provider) -> dict[str, Any]:
    return {
        "name": provider.name,
        "api": API_OF.get(provider.family, provider.family),
        "base_url": safe_url(provider.base_url),
        "base_url_hidden": safe_url(provider.base_url) != provider.base_url,
        "api_key_env": None,
        "api_key_file": None,
        "models": list(provider.models),
        "origin": provider.origin,
        "read_only": True,
        "key": key_status(provider),
        "error": None,
        "discovery": discovery_view(ctx.discovery.status.get(provider.name), provider.api_key)
        if provider.discover
        else None,
        "discovered": [e.id for e in ctx.services.catalog.models(provider.name)],
        "created_at": None,
        "updated_at": None,
    }


async def custom_view(ctx: AdminContext, name: str) -> dict[str, Any]:
    with ctx.services.database.context:
        row = await CustomProvider.get_or_none(name=name)
    if row is not None:
        return _row_view(ctx, row)
    provider = ctx.services.upstreams.get(name)
    if provider is not None and provider.kind == "custom":
        return _file_view(ctx, provider)
    raise falcon.HTTPNotFound(title=f"no custom provider named {name!r}")


async def custom_views(ctx: AdminContext) -> list[dict[str, Any]]:
    """Those from PROVIDERS_FILE (read-only), then those added here."""
    with ctx.services.database.context:
        rows = await CustomProvider.all().order_by("name")
    declared = [
        _file_view(ctx, p)
        for p in ctx.services.upstreams.providers.values()
        if p.kind == "custom" and p.origin != "admin"
    ]
    return declared + [_row_view(ctx, row) for row in rows]
