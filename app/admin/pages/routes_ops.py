"""What the Routes page and its JSON API do: list every route (those of ``PROVIDERS_FILE``,
read-only, and those added here, kept in ``relay_route``) with each deployment's health; create,
replace and delete the admin's own. A route is checked as the file's are, and every change is
reloaded at once so the next request uses it.

Failures are ``falcon.HTTPError``: the API reports them as JSON, the pages show their title.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import falcon

from app.admin.context import AdminContext
from app.admin.pages.aliases_ops import probe
from app.errors import RelayError
from app.routing import FALLBACK_KINDS, Route, route_from_record
from app.settings import SettingsError
from app.stores.models import RouteRecord

log = logging.getLogger("llm_relay.admin")
SPEC_KEYS = ("strategy", "deployments", "fallback_on", "cooldown", "context_fallback")


def spec_of(route: Route) -> dict[str, Any]:
    """A route as PROVIDERS_FILE writes it (without its name)."""
    spec: dict[str, Any] = {
        "strategy": route.strategy,
        "deployments": [{"model": d.model, "weight": d.weight} for d in route.deployments],
        "fallback_on": sorted(route.fallback_on),
        "cooldown": asdict(route.cooldown),
    }
    if route.context_fallback is not None:
        spec["context_fallback"] = route.context_fallback.model
    return spec


def view_of(ctx: AdminContext, route: Route, source: str) -> dict[str, Any]:
    health = ctx.services.health.state_of([route])
    view = {"name": route.name, "source": source, "editable": source == "admin", "error": None, **spec_of(route)}
    for deployment in view["deployments"]:
        deployment.update(health.get(deployment["model"], {}))
    return view


async def list_routes(ctx: AdminContext) -> list[dict[str, Any]]:
    file_names = set(ctx.live.file_routes)
    views = [
        view_of(ctx, route, "file" if key in file_names else "admin")
        for key, route in sorted(ctx.services.routes.items())
    ]
    broken = [
        {"name": name, "source": "admin", "editable": True, "error": error}
        for name, error in sorted(ctx.live.route_errors.items())
    ]
    declared = len(ctx.services.routes)
    grouped = [view_of(ctx, route, "group") for route in ctx.services.routes_in_effect()[declared:]]
    return views + broken + sorted(grouped, key=lambda view: view["name"])


async def get_route(ctx: AdminContext, name: str) -> dict[str, Any]:
    route = ctx.services.routes.get(name.strip().lower())
    if route is None:
        raise falcon.HTTPNotFound(title=f"no route {name!r}")
    return view_of(ctx, route, "file" if name.strip().lower() in ctx.live.file_routes else "admin")


def check(name: Any, body: Any) -> tuple[str, dict[str, Any]]:
    """The route's name and spec, checked as PROVIDERS_FILE's routes are."""
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="a route is a JSON object")
    spec = {k: body[k] for k in SPEC_KEYS if k in body}
    unknown = set(body) - {*SPEC_KEYS, "name"}
    if unknown:
        raise falcon.HTTPBadRequest(title=f"unknown fields {sorted(unknown)} (a route takes {list(SPEC_KEYS)})")
    try:
        route = route_from_record({**spec, "name": name}, "the route")
    except SettingsError as exc:
        raise falcon.HTTPBadRequest(title=str(exc)) from None
    return route.name, spec_of(route)


def _not_file(ctx: AdminContext, name: str) -> None:
    if name.lower() in ctx.live.file_routes:
        raise falcon.HTTPConflict(title=f"the route {name!r} comes from PROVIDERS_FILE; change it there")


def _resolvable(ctx: AdminContext, spec: dict[str, Any]) -> None:
    """Each deployment a name the relay resolves now, as an alias's target must be: a typo or a
    provider that is not configured would only show when every request has to skip it."""
    resolver = probe(ctx, dict(ctx.services.resolver.aliases))
    names = [d["model"] for d in spec["deployments"]] + [spec.get("context_fallback") or ""]
    for model in filter(None, names):
        try:
            resolver.resolve(model)
        except RelayError as exc:
            raise falcon.HTTPBadRequest(title=f"the deployment {model!r} does not resolve: {exc.message}") from None


async def save_route(ctx: AdminContext, name: Any, body: Any, *, create: bool) -> tuple[dict[str, Any], bool]:
    """Create a route (409 if it exists) or replace it; True when it was created."""
    name, spec = check(name, body)
    _not_file(ctx, name)
    _resolvable(ctx, spec)

    async def store() -> bool:
        existing = await RouteRecord.get_or_none(name=name)
        if existing is not None and create:
            raise falcon.HTTPConflict(title=f"the route {name!r} already exists; edit it instead")
        await RouteRecord.update_or_create(defaults={"spec": spec}, name=name)
        return existing is None

    created = await ctx.in_db(store)
    await ctx.live.reload()
    log.info("admin: route %s -> %s", name, [d["model"] for d in spec["deployments"]])
    return await get_route(ctx, name), created


async def delete_route(ctx: AdminContext, name: str) -> None:
    name = name.strip()
    _not_file(ctx, name)
    deleted = await ctx.in_db(lambda: RouteRecord.filter(name=name).delete())
    if not deleted:
        raise falcon.HTTPNotFound(title=f"no route {name!r} was added here")
    await ctx.live.reload()
    log.info("admin: route %s deleted", name)


def spec_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The page's form as a route's spec: one deployment a line, ``model`` or ``model weight``."""
    deployments: list[Any] = []
    for line in form.get("deployments", "").splitlines():
        parts = line.split()
        if len(parts) == 1:
            deployments.append(parts[0])
        elif len(parts) == 2 and parts[1].isdigit():
            deployments.append({"model": parts[0], "weight": int(parts[1])})
        elif parts:
            raise falcon.HTTPBadRequest(title=f"a deployment line is 'model' or 'model weight', not {line.strip()!r}")
    kinds = [k.strip() for k in form.get("fallback_on", "").split(",") if k.strip()]
    spec: dict[str, Any] = {
        "strategy": form.get("strategy", "ordered"),
        "deployments": deployments,
        "fallback_on": kinds or sorted(FALLBACK_KINDS),
    }
    cooldown = {}
    for key in ("failures", "window", "seconds"):
        value = form.get(key, "").strip()
        if value:
            try:
                cooldown[key] = float(value) if key != "failures" else int(value)
            except ValueError:
                raise falcon.HTTPBadRequest(title=f"cooldown {key} must be a number, not {value!r}") from None
    if cooldown:
        spec["cooldown"] = cooldown
    if form.get("context_fallback", "").strip():
        spec["context_fallback"] = form["context_fallback"].strip()
    return spec
