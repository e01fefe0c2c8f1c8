"""The composition root: ``create_app(settings)`` builds and wires everything, nothing else does.

Tests swap collaborators through :class:`Factories` instead of monkeypatching modules.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import falcon
import falcon.asgi

from app.adapters import ADAPTERS, Adapter
from app.adapters.client import HttpLimits, UpstreamClient
from app.adapters.images import ImageLimits
from app.catalog import Catalog, ModelEntry, load_pricing_snapshot
from app.discovery import Discovery
from app.errors import RelayError
from app.http import anthropic as anthropic_http
from app.http import ollama as ollama_http
from app.http import openai as openai_http
from app.http.asgi import DisconnectAware
from app.http.common import ErrorHandlers
from app.http.health import Health, MetricsResource, Ready, worker_figures
from app.http.openapi import OpenAPI
from app.http.refusals import Refusals
from app.http.responses import InputTokensResource, ResponsesResource, StoredResponseResource
from app.lifecycle import Lifecycle
from app.limits import Limiter, load_limits
from app.machine_state import MachineState
from app.metrics import Metrics
from app.pipeline import Pipeline
from app.pipeline.loader import build_pipeline, read_config
from app.pricing import Pricer
from app.providers import BUILTIN_PROVIDERS
from app.quirks import QuirkBook, load_file_rules
from app.resolver import Resolver
from app.routing import DeploymentHealth, load_routes
from app.runtime import Runtime
from app.services import Services
from app.settings import DEFAULT_STAGES, Settings, parse_pairs
from app.stores.db import Database
from app.stores.live import LiveConfig
from app.stores.usage import UsageWriter
from app.upstreams import Upstreams, providers_from_settings

log = logging.getLogger("llm_relay")


def default_http_client(settings: Settings) -> UpstreamClient:
    return UpstreamClient(
        HttpLimits(
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            keepalive=settings.upstream_keepalive_seconds,
            max_body_bytes=settings.upstream_max_body_bytes,
            max_event_bytes=settings.upstream_max_event_bytes,
            max_header_bytes=settings.upstream_max_header_bytes,
            max_headers=settings.upstream_max_headers,
            decode_chunk_bytes=settings.upstream_decode_chunk_bytes,
        )
    )


@dataclass
class Factories:
    http_client: Callable[[Settings], UpstreamClient] = default_http_client
    adapters: Mapping[str, type[Adapter]] = field(default_factory=lambda: dict(ADAPTERS))
    pricing: Callable[[], Mapping[str, Any]] = load_pricing_snapshot


class RelayApp(DisconnectAware):
    """The ASGI application, with its services exposed for the CLI and tests."""

    services: Services
    discovery: Discovery
    live: LiveConfig
    pipeline: Pipeline
    metrics: Metrics
    on_startup: list[Callable[[], Awaitable[None]]]


def build_services(settings: Settings, factories: Factories) -> Services:
    catalog = Catalog(factories.pricing())
    providers = providers_from_settings(settings)
    for spec in BUILTIN_PROVIDERS:  # every built-in, configured or not, so errors can say which
        catalog.add_provider(spec.name, spec.catalog_key)
    for provider in providers:
        if provider.kind != "builtin":
            catalog.add_provider(provider.name, None, ollama=provider.is_ollama)
        if provider.models:
            declared = [ModelEntry(provider.name, m, "chat", {}, discovered=True) for m in provider.models]
            catalog.set_discovered(provider.name, declared)
    images = ImageLimits(settings.image_fetch_max_bytes, settings.image_fetch_timeout, settings.image_fetch_private)
    upstreams = Upstreams(providers, factories.http_client(settings), factories.adapters, images)
    aliases = dict(parse_pairs("MODEL_ALIASES", settings.model_aliases))
    resolver = Resolver(catalog, upstreams, aliases, settings.default_model)
    database = Database(settings.resolved_database_url)
    usage = UsageWriter(
        database,
        queue_size=settings.usage_queue_size,
        batch_size=settings.usage_batch_size,
        flush_seconds=settings.usage_flush_seconds,
        journal_dir=settings.usage_journal_dir or settings.data_dir,
    )
    quirks = QuirkBook(load_file_rules())
    runtime = Runtime(default_model=settings.default_model)
    services = Services(settings, catalog, upstreams, resolver, database, usage, quirks, Pricer(), runtime)
    services.metrics = Metrics(tags=settings.metrics_tags)
    services.metrics.figures = partial(worker_figures, services)
    services.routes = load_routes(settings.providers_file)
    services.machine = MachineState(settings.data_dir)
    services.health = DeploymentHealth(services.machine)
    services.limiter = Limiter(load_limits(settings.providers_file), services.machine)
    usage.resolve_hostnames = lambda: services.runtime.resolve_hostnames
    return services


def create_app(
    settings: Settings | None = None, factories: Factories | None = None, *, migrate: bool = True
) -> RelayApp:
    settings = settings or Settings.from_env()
    services = build_services(settings, factories or Factories())
    config = read_config(settings.pipeline_stages, ",".join(DEFAULT_STAGES), settings.pipeline_file)
    pipeline = build_pipeline(config, services)
    discovery = Discovery(services.upstreams, services.catalog, settings.ollama_refresh_seconds)
    live = LiveConfig(services, discovery, settings.config_refresh_seconds)

    lifecycle = Lifecycle(services, pipeline, discovery, live, migrate=migrate)
    api = falcon.asgi.App(middleware=[lifecycle])
    api.req_options.strip_url_path_trailing_slash = True
    # The endpoints that run the pipeline, with their dialect and kind: one refused before the
    # pipeline saw it still leaves its row (app/http/refusals.py).
    inference = {
        "/v1/chat/completions": ("openai", "chat", openai_http.InferenceResource(pipeline, "chat")),
        "/v1/completions": ("openai", "completion", openai_http.InferenceResource(pipeline, "completion")),
        "/v1/embeddings": ("openai", "embedding", openai_http.InferenceResource(pipeline, "embedding")),
        "/v1/messages": ("anthropic", "chat", anthropic_http.MessagesResource(pipeline)),
        "/v1/responses": ("responses", "chat", ResponsesResource(pipeline)),
        "/api/chat": ("ollama", "chat", ollama_http.ChatResource(pipeline, services, generate=False)),
        "/api/generate": ("ollama", "chat", ollama_http.ChatResource(pipeline, services, generate=True)),
        "/api/embed": ("ollama", "embedding", ollama_http.EmbedResource(pipeline, legacy=False)),
        "/api/embeddings": ("ollama", "embedding", ollama_http.EmbedResource(pipeline, legacy=True)),
    }
    refusals = Refusals(services, {path: (dialect, kind) for path, (dialect, kind, _) in inference.items()})
    errors = ErrorHandlers(refusals)
    api.add_error_handler(Exception, errors.unexpected)
    api.add_error_handler(falcon.HTTPError, errors.http_error)
    api.add_error_handler(RelayError, errors.relay_error)

    for path, (_, _, resource) in inference.items():
        api.add_route(path, resource)
    stored = StoredResponseResource(services)
    api.add_route("/v1/responses/input_tokens", InputTokensResource(services))
    api.add_route("/v1/responses/{response_id}", stored)
    api.add_route("/v1/responses/{response_id}/cancel", stored, suffix="cancel")
    api.add_route("/v1/responses/{response_id}/input_items", stored, suffix="input_items")
    api.add_route("/v1/messages/count_tokens", anthropic_http.CountTokensResource(services))
    models = openai_http.ModelsResource(services)
    api.add_route("/v1/models", models)
    api.add_route("/v1/models/{model_id:path}", models, suffix="model")

    api.add_route("/openapi.json", OpenAPI())
    api.add_route("/health", Health())
    api.add_route("/ready", Ready(services))
    if settings.metrics_enabled:
        api.add_route("/metrics", MetricsResource(services))
    api.add_route("/", ollama_http.RootResource())
    api.add_route("/api/version", ollama_http.VersionResource())
    api.add_route("/api/tags", ollama_http.TagsResource(services))
    api.add_route("/api/show", ollama_http.ShowResource(services))
    api.add_route("/api/ps", ollama_http.PsResource(services))

    services.requests.body_budget = settings.max_inflight_body_bytes
    app = RelayApp(api, max_body_bytes=settings.max_body_bytes, refused=refusals.unread, requests=services.requests)
    app.services = services
    app.discovery = discovery
    app.live = live
    app.pipeline = pipeline
    app.metrics = services.metrics
    app.on_startup = lifecycle.on_startup
    return app
