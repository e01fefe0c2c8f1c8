"""Routes: a model name served by several deployments (app/routing.py). The stage sends the
request down the rest of the pipeline once per deployment, in the order health and strategy
give, until one answers: a failure before the first byte that the route moves on from (a
connection error, a timeout, 429, 5xx) tries the next, anything else ends the request. Each
attempt starts from the request as the client sent it, so resolve, quirks and any stage between
work for the deployment at hand; nothing is retried once a reply has begun."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import orjson

from app.catalog import model_key
from app.errors import ModelNotFound, RateLimited, RelayError, UpstreamError
from app.internal import Reply, Target
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.pipeline.helpers import after_reply
from app.routing import Deployment, DeploymentHealth, Route

ATTEMPTS_HEADER = "X-Relay-Attempts"


class RouteStage:
    name: ClassVar[str] = "route"
    passthrough_safe: ClassVar[bool] = True  # never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        self.services = ctx.services

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        model = ex.body.get("model")
        if not isinstance(model, str):
            return await call_next(ex)
        services = self.services
        route = services.routes.get(model.lower()) if services.routes else None
        if route is None and services.settings.ollama_group:
            route = services.ollama_groups().get(model_key(model, ollama=True))
        if route is None:
            return await call_next(ex)
        return await self._route(ex, call_next, route, services.health)

    def status(self) -> dict[str, Any] | None:
        """Each route's deployments and their health, for the admin UI's Pipeline page."""
        routes = self.services.routes_in_effect()
        if not routes:
            return None
        state = self.services.health.state_of(routes)
        return {
            "routes": [
                {
                    "name": route.name,
                    "strategy": route.strategy,
                    "fallback_on": sorted(route.fallback_on),
                    "deployments": [
                        {"model": d.model, "weight": d.weight, **state.get(d.model, {})} for d in route.deployments
                    ],
                }
                for route in routes
            ]
        }

    async def _route(self, ex: Exchange, call_next: Next, route: Route, health: DeploymentHealth) -> Reply:
        sent = orjson.dumps(ex.body)  # each attempt starts from this: stages change the body they pass on
        ex.state["routed"] = route.name  # the dispatch stage then tries each deployment once
        failed: list[dict[str, object]] = []
        ex.state["attempts"] = failed
        last: RelayError | None = None
        ordered, cooling = health.order(route)
        for deployment in ordered:  # a too-long prompt may add the route's larger-context deployment
            ex.body = orjson.loads(sent)
            ex.body["model"] = deployment.model
            ex.target = None
            ex.state.pop("dropped_params", None)
            health.in_flight[deployment.model] = health.in_flight.get(deployment.model, 0) + 1
            try:
                reply = await call_next(ex)
            except (UpstreamError, ModelNotFound, RateLimited) as error:
                _release(health, deployment)
                larger = route.larger_for(error)
                if route.moves_on(error):
                    health.failed(route, deployment)
                elif larger is not None and larger not in ordered:
                    ordered.append(larger)  # the prompt is fine, the model's context too small
                else:
                    _served_by_route(ex)
                    raise _tried(error, len(failed) + 1) from None
                failed.append(_attempt(ex, deployment, error))
                last = error
                continue
            except BaseException:
                _release(health, deployment)
                raise
            health.succeeded(deployment, deployment.model in cooling)
            _served_by_route(ex)
            reply.headers[ATTEMPTS_HEADER] = str(len(failed) + 1)
            return await after_reply(ex, reply, partial(_finished, health, deployment))
        assert last is not None  # a route has at least one deployment
        names = ", ".join(f"{a['deployment']} ({a['status']})" for a in failed)
        last.message = f"every deployment of route {route.name!r} failed: {names}; the last said: {last.message}"
        _served_by_route(ex)
        raise _tried(last, len(failed)) from None


def _served_by_route(ex: Exchange) -> None:
    """The deployment the route chose last, marked as the route's (X-Relay-Route, the row)."""
    if ex.target is not None:
        ex.target = Target(ex.target.provider, ex.target.model, "route", ex.target.catalog_entry)


def _attempt(ex: Exchange, deployment: Deployment, error: RelayError) -> dict[str, object]:
    label = ex.target.label if ex.target is not None else deployment.model
    return {"deployment": label, "status": error.status, "error": error.message[:300]}


def _tried(error: RelayError, attempts: int) -> RelayError:
    """The error as the caller gets it: with how many deployments were tried."""
    error.headers = {**error.headers, ATTEMPTS_HEADER: str(attempts)}
    return error


def _finished(health: DeploymentHealth, deployment: Deployment, ex: Exchange, error: BaseException | None) -> None:
    _release(health, deployment)  # the reply is over, however it ended


def _release(health: DeploymentHealth, deployment: Deployment) -> None:
    health.in_flight[deployment.model] = max(0, health.in_flight.get(deployment.model, 1) - 1)
