"""What the Aliases page and its JSON API do: list aliases (``MODEL_ALIASES`` and the built-in
family aliases, read-only; those in ``model_alias``, editable), create, edit and delete them,
and set the default model. A target must resolve the way the relay resolves it at request
time, and every change is reloaded at once so the next request uses it.

Failures are ``falcon.HTTPError``: the API reports them as JSON, the pages show their title.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon
from tortoise.exceptions import IntegrityError

from app.admin.context import AdminContext
from app.errors import RelayError
from app.internal import Target
from app.providers import BUILTIN_BY_NAME
from app.resolver import Resolver
from app.stores.models import ModelAlias, RelaySetting

log = logging.getLogger("llm_relay.admin")
# Lower-cased like the resolver does; no '@' (the tag suffix), ',' or '=' (MODEL_ALIASES syntax),
# nor '/' (provider/model names, and a path segment of the API).
ALIAS = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,127}")
DEFAULT_KEY = "default_model"


def probe(ctx: AdminContext, aliases: dict[str, str]) -> Resolver:
    """The relay's resolver rules, without a default model (so an unknown name fails)."""
    relay = ctx.services.resolver
    probe = Resolver(relay.catalog, relay.upstreams, aliases)
    probe.disabled = relay.disabled
    return probe


def _required(value: Any, what: str) -> str:
    text = str(value or "").strip() if value is None or isinstance(value, str) else ""
    if not text:
        raise falcon.HTTPBadRequest(title=f"{what} is required (a string such as openai/gpt-4o-mini)")
    if len(text) > 255:
        raise falcon.HTTPBadRequest(title=f"{what} is longer than 255 characters")
    return text


def check_target(ctx: AdminContext, value: Any) -> Target:
    """An alias target: at request time the relay looks it up directly (not through another
    alias, nor the default model), so it is checked the same way."""
    target = _required(value, "the target")
    meant = ctx.services.resolver.aliases.get(target.lower())
    if meant is not None:  # a user alias: the probe below, which knows none, would call it unknown
        raise falcon.HTTPBadRequest(
            title=f"the target {target!r} is itself an alias; name the model it means instead: {meant}"
        )
    try:
        found = probe(ctx, {}).resolve(target)
    except RelayError as exc:
        raise falcon.HTTPBadRequest(title=f"the target {target!r} does not resolve: {exc.message}") from None
    if found.via != "direct":
        raise falcon.HTTPBadRequest(
            title=f"the target {target!r} is itself an alias; name the model it means instead: {found.label}"
        )
    return found


def check_default(ctx: AdminContext, value: Any) -> Target:
    """A default model may be a model or an alias (the relay resolves it through the aliases)."""
    model = _required(value, "the default model")
    try:
        return probe(ctx, dict(ctx.services.resolver.aliases)).resolve(model)
    except RelayError as exc:
        raise falcon.HTTPBadRequest(title=f"the default model {model!r} does not resolve: {exc.message}") from None


def _resolution(ctx: AdminContext, target: str, *, default: bool = False) -> dict[str, Any]:
    try:
        found = check_default(ctx, target) if default else check_target(ctx, target)
    except falcon.HTTPError as exc:
        return {"resolves_to": None, "known": False, "error": str(exc.title)}
    return {"resolves_to": found.label, "known": found.catalog_entry is not None, "error": None}


def _unavailable(ctx: AdminContext, alias: dict[str, Any]) -> dict[str, Any]:
    """An alias whose ``provider/model`` target names a built-in provider that is not configured
    is unavailable until it is, which is no fault: a fresh install has most of them."""
    prefix, slash, _ = alias["target"].partition("/")
    spec = BUILTIN_BY_NAME.get(prefix.lower()) if slash and alias["error"] else None
    if spec is None or spec.name in {name.lower() for name in ctx.services.upstreams.providers}:
        return {"unavailable": None}
    return {"unavailable": f"{spec.name} not configured", "error": None}


def _name(value: Any) -> str:
    name = str(value or "").strip().lower() if value is None or isinstance(value, str) else ""
    if not ALIAS.fullmatch(name):
        raise falcon.HTTPBadRequest(
            title=f"the alias name {name!r} must be 1-128 letters, digits, '.', '_', ':', '+' or '-' "
            "(starting with a letter or digit)"
        )
    return name


async def list_aliases(ctx: AdminContext) -> list[dict[str, Any]]:
    """Admin aliases first, then MODEL_ALIASES, then the built-in families, each by name."""
    stored = await ctx.in_db(lambda: ModelAlias.all().order_by("name").values_list("name", "target"))
    admin = {str(n).lower(): str(t) for n, t in stored}
    env = ctx.live.env_aliases
    rows: list[dict[str, Any]] = [
        {"name": n, "target": t, "source": "admin", "editable": True} for n, t in admin.items()
    ]
    rows += [{"name": n, "target": t, "source": "env", "editable": False} for n, t in sorted(env.items())]
    rows += [
        {"name": n, "target": t, "source": "builtin", "editable": False}
        for n, t in sorted(ctx.services.resolver.family_aliases.items())
    ]
    for row in rows:
        row["shadowed"] = (row["source"] == "env" and row["name"] in admin) or (
            row["source"] == "builtin" and (row["name"] in admin or row["name"] in env)
        )
        row.update(_resolution(ctx, row["target"]))
        row.update(_unavailable(ctx, row))
    return rows


async def get_alias(ctx: AdminContext, name: str) -> dict[str, Any]:
    for row in await list_aliases(ctx):
        if row["name"] == name.lower() and not row["shadowed"]:
            return row
    raise falcon.HTTPNotFound(title=f"no alias {name!r}")


def _not_env(ctx: AdminContext, name: str) -> None:
    if name in ctx.live.env_aliases:
        raise falcon.HTTPConflict(title=f"the alias {name!r} is set in MODEL_ALIASES (read-only); change it there")


async def create_alias(ctx: AdminContext, name: Any, target: Any) -> dict[str, Any]:
    name = _name(name)
    _not_env(ctx, name)
    found = check_target(ctx, target)

    async def create() -> bool:
        if await ModelAlias.exists(name=name):
            return False
        try:
            await ModelAlias.create(name=name, target=str(target).strip())
        except IntegrityError:  # created by someone else just now
            return False
        return True

    if not await ctx.in_db(create):
        raise falcon.HTTPConflict(title=f"the alias {name!r} already exists; edit it instead")
    await ctx.live.reload()
    log.info("admin: alias %s -> %s", name, found.label)
    return await get_alias(ctx, name)


async def update_alias(ctx: AdminContext, name: str, target: Any) -> tuple[dict[str, Any], bool]:
    """Point an admin alias at a new target (creating it if need be); True when created."""
    name = _name(name)
    _not_env(ctx, name)
    found = check_target(ctx, target)
    _, created = await ctx.in_db(
        lambda: ModelAlias.update_or_create(defaults={"target": str(target).strip()}, name=name)
    )
    await ctx.live.reload()
    log.info("admin: alias %s -> %s", name, found.label)
    return await get_alias(ctx, name), created


async def delete_alias(ctx: AdminContext, name: str) -> None:
    name = name.strip().lower()
    deleted = await ctx.in_db(lambda: ModelAlias.filter(name=name).delete())
    if not deleted:
        _not_env(ctx, name)
        if name in ctx.services.resolver.family_aliases:
            raise falcon.HTTPConflict(title=f"{name!r} is a built-in alias; shadow it with an alias of your own")
        raise falcon.HTTPNotFound(title=f"no alias {name!r}")
    await ctx.live.reload()
    log.info("admin: deleted alias %s", name)


async def get_default(ctx: AdminContext) -> dict[str, Any]:
    stored = await ctx.in_db(lambda: RelaySetting.read(DEFAULT_KEY))
    model = ctx.services.runtime.default_model
    env = ctx.services.settings.default_model
    source = "admin" if isinstance(stored, str) else ("env" if env else "none")
    view: dict[str, Any] = {"model": model, "source": source, "env_value": env}
    if model:
        view.update(_resolution(ctx, model, default=True))
    else:
        view.update({"resolves_to": None, "known": False, "error": None})
    return view


def check_default_value(ctx: AdminContext, value: Any) -> str | None:
    """None: back to DEFAULT_MODEL from the environment; "": no default; else a model that resolves."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise falcon.HTTPBadRequest(title="the default model must be a string (or null)")
    if not value.strip():
        return ""
    check_default(ctx, value)
    return value.strip()


async def set_default(ctx: AdminContext, value: Any) -> dict[str, Any]:
    model = check_default_value(ctx, value)
    if model is None:
        await ctx.in_db(lambda: RelaySetting.filter(key=DEFAULT_KEY).delete())
    else:
        await ctx.in_db(lambda: RelaySetting.write(DEFAULT_KEY, model))
    await ctx.live.reload()
    log.info("admin: default model %r", model)
    return await get_default(ctx)
