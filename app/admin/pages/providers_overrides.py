"""A model's overrides, read and written: price_override (prices), model_setting (enabled and
capabilities) and quirk_override (a rule matching exactly this model). Every write reloads the
live configuration, so the next request uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
from tortoise.transactions import in_transaction

from app.admin.context import AdminContext
from app.admin.pages.providers_catalog import exact_pattern, model_view
from app.admin.pages.providers_common import Invalid, iso, plain
from app.admin.pages.providers_validate import DECIMALS, parse_price, parse_quirk, parse_switches
from app.providers import BUILTIN_BY_NAME
from app.stores.models import ModelSetting, PriceOverride, QuirkOverride

PARTS = ("price", "switches", "quirk")
Rows = tuple[PriceOverride | None, ModelSetting | None, QuirkOverride | None]


def canonical(ctx: AdminContext, provider: str, model: str) -> str:
    """The model id as the catalog spells it (what requests resolve to), else as given."""
    known = provider in ctx.services.upstreams.providers or provider in BUILTIN_BY_NAME
    entry = ctx.services.catalog.get(provider, model)
    if not known and entry is None:
        raise falcon.HTTPNotFound(title=f"no provider named {provider!r}")
    model_id = entry.id if entry is not None else model.strip()
    if not model_id or len(model_id) > 255:
        raise falcon.HTTPBadRequest(title="a model id has 1 to 255 characters")
    return model_id


async def _rows(provider: str, model_id: str) -> Rows:
    """The override rows of one model (ids compare case-insensitively, as requests do)."""
    lower = model_id.lower()
    price = next((r for r in await PriceOverride.filter(provider=provider) if r.model.lower() == lower), None)
    setting = next((r for r in await ModelSetting.filter(provider=provider) if r.model.lower() == lower), None)
    wanted = {"provider": provider, "model": exact_pattern(model_id)}
    quirk = None
    for row in await QuirkOverride.all().order_by("id"):
        if isinstance(row.rule, dict) and row.rule.get("match") == wanted:
            quirk = row
            break
    return price, setting, quirk


def price_dict(row: PriceOverride) -> dict[str, Any]:
    values: dict[str, Any] = {name: plain(getattr(row, name)) for name in DECIMALS}
    values["tier_threshold"] = row.tier_threshold
    values["updated_at"] = iso(row.updated_at)
    return values


def switch_dict(row: ModelSetting) -> dict[str, Any]:
    return {
        "enabled": row.enabled,
        "vision": row.supports_vision,
        "reasoning": row.supports_reasoning,
        "tools": row.supports_tools,
        "updated_at": iso(row.updated_at),
    }


async def override_view(ctx: AdminContext, provider: str, model: str) -> dict[str, Any]:
    model_id = canonical(ctx, provider, model)
    with ctx.services.database.context:
        price, setting, quirk = await _rows(provider, model_id)
    entry = ctx.services.catalog.get(provider, model_id)
    return {
        "provider": provider,
        "model": model_id,
        "catalog": model_view(ctx, entry) if entry is not None else None,
        "price": price_dict(price) if price else None,
        "switches": switch_dict(setting) if setting else None,
        "quirk": {**quirk.rule, "enabled": quirk.enabled} if quirk else None,
    }


def parse_changes(body: dict[str, Any], provider: str, model_id: str) -> dict[str, Any]:
    """``{"price": {...} | null, "switches": ..., "quirk": ...}``: each part given is replaced
    (null removes it), parts not given stay. Everything is checked before anything is written."""
    unknown = sorted(set(body) - set(PARTS))
    if unknown or not body:
        raise Invalid({"": f"give one or more of {list(PARTS)}" + (f", not {unknown}" if unknown else "")})
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def quirk(raw: dict[str, Any]) -> dict[str, Any]:
        return parse_quirk(raw, provider, model_id)

    parsers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "price": parse_price,
        "switches": parse_switches,
        "quirk": quirk,
    }
    for part, raw in body.items():
        if raw is None:
            changes[part] = None
            continue
        if not isinstance(raw, dict):
            errors[part] = "must be an object or null"
            continue
        try:
            changes[part] = parsers[part](raw)
        except Invalid as exc:
            errors.update({f"{part}.{k}" if k else part: v for k, v in exc.errors.items()})
    if errors:
        raise Invalid(errors)
    return changes


async def apply_changes(ctx: AdminContext, provider: str, model_id: str, changes: dict[str, Any]) -> None:
    """Write parsed changes (see :func:`parse_changes`) in one transaction, then reload."""
    with ctx.services.database.context:
        async with in_transaction():
            price, setting, quirk = await _rows(provider, model_id)
            if "price" in changes:
                await _save_price(provider, model_id, price, changes["price"])
            if "switches" in changes:
                await _save_switches(provider, model_id, setting, changes["switches"])
            if "quirk" in changes:
                await _save_quirk(quirk, changes["quirk"])
    await ctx.live.reload()


async def _save_price(provider: str, model_id: str, row: PriceOverride | None, value: dict[str, Any] | None) -> None:
    if value is None:
        if row is not None:
            await row.delete()
    elif row is None:
        await PriceOverride.create(provider=provider, model=model_id, enabled=True, **value)
    else:
        row.update_from_dict({**value, "enabled": True})
        await row.save()


async def _save_switches(
    provider: str, model_id: str, row: ModelSetting | None, value: dict[str, bool | None] | None
) -> None:
    if value is not None and value["enabled"] and all(value[n] is None for n in ("vision", "reasoning", "tools")):
        value = None  # nothing differs from the catalog: no row at all
    if value is None:
        if row is not None:
            await row.delete()
        return
    fields: dict[str, Any] = {
        "enabled": value["enabled"],
        "supports_vision": value["vision"],
        "supports_reasoning": value["reasoning"],
        "supports_tools": value["tools"],
    }
    if row is None:
        await ModelSetting.create(provider=provider, model=model_id, **fields)
    else:
        row.update_from_dict(fields)
        await row.save()


async def _save_quirk(row: QuirkOverride | None, rule: dict[str, Any] | None) -> None:
    if rule is None:
        if row is not None:
            await row.delete()
    elif row is None:
        await QuirkOverride.create(rule=rule, enabled=True)
    else:
        row.rule, row.enabled = rule, True
        await row.save()
