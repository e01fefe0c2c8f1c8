"""Every setting of the relay, read from the environment in one place.

Each setting is a dataclass field whose metadata names its environment variable and says
what it does; ``docs/settings.md`` is generated from these fields and a test keeps the two
in step. Secret settings may also be given as ``<NAME>_FILE``, a path to a file holding it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.providers import BUILTIN_PROVIDERS
from app.settings_values import SettingsError, check_values, convert, parse_pairs, read_value

__all__ = ["DEFAULT_STAGES", "Settings", "SettingsError", "parse_pairs"]

DEFAULT_STAGES = ("tags", "route", "resolve", "limits", "quirks", "dispatch", "meter", "cost")


def _setting(env: str, default: Any, doc: str, *, secret: bool = False, minimum: float | None = None) -> Any:
    """A setting; a number must be finite and above 0 unless ``minimum`` (inclusive) says otherwise."""
    return field(default=default, metadata={"env": env, "doc": doc, "secret": secret, "minimum": minimum})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("HOST", "127.0.0.1", "Address the inference API listens on.")
    port: int = _setting("PORT", 11434, "Port of the inference API (OpenAI `/v1` and Ollama `/api`).", minimum=0)
    admin_enabled: bool = _setting("ADMIN_ENABLED", True, "Serve the admin UI on `ADMIN_PORT`.")
    admin_host: str = _setting("ADMIN_HOST", "", "Address the admin UI listens on. Empty: the same as `HOST`.")
    admin_port: int = _setting("ADMIN_PORT", 8080, "Port of the admin UI and its JSON API.", minimum=0)
    admin_password: str = _setting(
        "ADMIN_PASSWORD",
        "",
        "The admin password. Empty: one is generated on first start, printed once, and kept as a "
        "slow salted hash in the database (change it in the UI).",
        secret=True,
    )
    session_secret: str = _setting(
        "SESSION_SECRET",
        "",
        "Key that signs admin sessions; give every instance behind a load balancer the same one. "
        "Empty: generated once and kept in the database.",
        secret=True,
    )
    admin_session_hours: float = _setting(
        "ADMIN_SESSION_HOURS", 12.0, "How long an admin stays logged in without activity."
    )
    require_api_key: bool = _setting(
        "REQUIRE_API_KEY",
        False,
        "Refuse inference requests without a valid relay API key (`llm-relay keys create`); the "
        "key's tags then attribute the request unless the request names its own.",
    )
    trusted_proxies: str = _setting(
        "TRUSTED_PROXIES",
        "",
        "Comma-separated addresses or networks of reverse proxies whose `X-Forwarded-For` is "
        "believed; empty: nobody's, the client is the connecting address.",
    )
    data_dir: str = _setting("DATA_DIR", "./data", "Directory for the SQLite database and state.")
    database_url: str = _setting(
        "DATABASE_URL",
        "",
        "Database URL, `postgres://user:pass@host:5432/db` or `sqlite:///path`. "
        "Empty: a SQLite file `llm-relay.db` under `DATA_DIR`.",
        secret=True,
    )
    ollama_instances: str = _setting(
        "OLLAMA_INSTANCES",
        "",
        "Ollama servers as `name=http://host:port,other=http://host2:port`.",
    )
    ollama_group: bool = _setting(
        "OLLAMA_GROUP",
        False,
        "Serve a model that several Ollama instances have under its bare name (`llama3.2`), spread "
        "over them as a least-in-flight route with fallbacks (see the README's Routes).",
    )
    ollama_refresh_seconds: float = _setting(
        "OLLAMA_REFRESH_SECONDS", 60.0, "How often each Ollama instance's model list is refreshed."
    )
    providers_file: str = _setting(
        "PROVIDERS_FILE",
        "",
        "YAML file declaring custom OpenAI- or Anthropic-compatible providers, routes and rate limits (see "
        "app/custom_providers.py for the format).",
    )
    pricing_url: str = _setting(
        "PRICING_URL",
        "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json",
        "Where `llm-relay pricing sync` fetches LiteLLM's model catalog (a URL or a local file).",
    )
    default_model: str = _setting(
        "DEFAULT_MODEL",
        "",
        "Model used when a request names a model nobody serves (`provider/model` or an alias). "
        "Empty: such requests get a 404.",
    )
    model_aliases: str = _setting(
        "MODEL_ALIASES",
        "",
        "Extra aliases as `alias=provider/model,other=provider/model`; they win over built-in ones.",
    )
    pipeline_stages: str = _setting(
        "PIPELINE_STAGES",
        ",".join(DEFAULT_STAGES),
        "Comma-separated pipeline stages in the order a request passes them (built-in ones, "
        "entry points of the `llm_relay.stages` group, or `package.module:Class`; see docs/stages.md).",
    )
    pipeline_file: str = _setting(
        "PIPELINE_FILE",
        "",
        "A TOML file with the pipeline's order (`stages = [...]`, instead of `PIPELINE_STAGES`) and "
        "each stage's options (`[options.<stage>]` tables); see docs/stages.md.",
    )
    config_refresh_seconds: float = _setting(
        "CONFIG_REFRESH_SECONDS",
        3.0,
        "How often the configuration kept in the database (aliases, overrides, providers, settings, "
        "keys, prices) is re-read: edits made through this process apply at once; this is how "
        "other workers and instances catch up.",
    )
    usage_queue_size: int = _setting(
        "USAGE_QUEUE_SIZE",
        10000,
        "Usage rows held in memory while the journal's disk has no room (more are lost, and logged).",
    )
    usage_journal_dir: str = _setting(
        "USAGE_JOURNAL_DIR",
        "",
        "Where each process journals usage rows until they are in the database (replayed after a "
        "crash or an outage). Empty: `DATA_DIR`. Give every worker of an instance the same one.",
    )
    usage_batch_size: int = _setting("USAGE_BATCH_SIZE", 500, "Usage rows written per transaction.")
    usage_flush_seconds: float = _setting(
        "USAGE_FLUSH_SECONDS", 0.5, "Longest time a usage row waits before it is written."
    )
    upstream_connect_timeout: float = _setting(
        "UPSTREAM_CONNECT_TIMEOUT", 10.0, "Seconds to wait for a provider connection."
    )
    upstream_read_timeout: float = _setting(
        "UPSTREAM_READ_TIMEOUT", 600.0, "Seconds to wait for the next bytes from a provider."
    )
    upstream_keepalive_seconds: float = _setting(
        "UPSTREAM_KEEPALIVE_SECONDS",
        15.0,
        "Seconds an idle provider connection is kept for reuse (well under the 60 s many balancers allow).",
    )
    upstream_max_body_bytes: int = _setting(
        "UPSTREAM_MAX_BODY_BYTES", 64 << 20, "Largest non-streamed provider reply, decoded (a 502 beyond)."
    )
    upstream_max_event_bytes: int = _setting(
        "UPSTREAM_MAX_EVENT_BYTES", 8 << 20, "Longest line or event in a provider's stream (SSE, NDJSON)."
    )
    upstream_max_header_bytes: int = _setting(
        "UPSTREAM_MAX_HEADER_BYTES", 16384, "Longest status line or header line in a provider's reply."
    )
    upstream_max_headers: int = _setting("UPSTREAM_MAX_HEADERS", 128, "Most header lines a provider's reply may carry.")
    upstream_decode_chunk_bytes: int = _setting(
        "UPSTREAM_DECODE_CHUNK_BYTES",
        1 << 16,
        "Bytes a compressed reply is decoded into at a time, so a small compressed body cannot swell at once.",
    )
    upstream_total_timeout: float = _setting(
        "UPSTREAM_TOTAL_TIMEOUT",
        0.0,
        "Longest a non-streamed provider call (or a stream's first item) may take; 0: no limit.",
        minimum=0,
    )
    upstream_timeouts: str = _setting(
        "UPSTREAM_TIMEOUTS",
        "",
        "Per-provider read/total timeouts in seconds, e.g. `openai=120/600,lab=900/0` (read: the "
        "longest silence inside a stream; total as in UPSTREAM_TOTAL_TIMEOUT).",
    )
    upstream_retries: int = _setting(
        "UPSTREAM_RETRIES",
        2,
        "Retries for a provider failure before any byte reached the client (connection refused, "
        "429, 5xx), honouring Retry-After.",
        minimum=0,
    )
    upstream_retry_budget: float = _setting(
        "UPSTREAM_RETRY_BUDGET", 10.0, "Seconds all retries of one request may wait in total.", minimum=0
    )
    shutdown_grace_seconds: float = _setting(
        "SHUTDOWN_GRACE_SECONDS",
        30.0,
        "On SIGTERM, how long requests in flight may take to finish; then they are cancelled and "
        "each leaves a usage row with the outcome `shutdown` (the caller gets a 503 if its reply had not begun, "
        "else its stream ends with an error event).",
        minimum=0,
    )
    max_body_bytes: int = _setting("MAX_BODY_BYTES", 32 * 1024 * 1024, "Largest request body accepted (413 beyond).")
    max_inflight_body_bytes: int = _setting(
        "MAX_INFLIGHT_BODY_BYTES",
        128 * 1024 * 1024,
        "Most bytes the bodies of all requests in flight in a process may take together; a request "
        "whose body would pass it gets a 503 with `Retry-After` before its body is read. At least "
        "`MAX_BODY_BYTES`; 0: no bound.",
        minimum=0,
    )
    image_fetch_max_bytes: int = _setting(
        "IMAGE_FETCH_MAX_BYTES",
        20 * 1024 * 1024,
        "Largest image the relay downloads for a provider that needs image bytes (not URLs).",
    )
    image_fetch_timeout: float = _setting("IMAGE_FETCH_TIMEOUT", 10.0, "Seconds allowed for downloading such an image.")
    image_fetch_private: bool = _setting(
        "IMAGE_FETCH_PRIVATE",
        False,
        "Let the relay download such images from loopback, private and link-local addresses too. Off: a caller "
        "cannot make the relay fetch from its own network (e.g. a cloud metadata address) and hand it to a model.",
    )
    workers: int = _setting(
        "WORKERS",
        1,
        "Worker processes `llm-relay serve` starts (each a whole relay on the same port; the "
        "first also serves the admin UI). See docs/scaling.md.",
    )
    metrics_enabled: bool = _setting(
        "METRICS_ENABLED", True, "Serve Prometheus metrics at `/metrics` on the inference port."
    )
    metrics_tags: bool = _setting(
        "METRICS_TAGS",
        False,
        "Also count requests, tokens and cost per tag in `/metrics` (one series per tag: only when tags are few).",
    )
    log_level: str = _setting("LOG_LEVEL", "info", "Log level: debug, info, warning, error.")
    provider_keys: Mapping[str, str] = field(
        default_factory=dict,
        metadata={
            "env": "<PROVIDER>_API_KEY",
            "doc": "API key that enables a built-in provider. PROVIDER is one of "
            + ", ".join(p.env for p in BUILTIN_PROVIDERS)
            + ".",
            "secret": True,
        },
    )
    secret_sources: Mapping[str, str] = field(
        default_factory=dict,
        metadata={
            "env": "<NAME>_FILE",
            "doc": "Every secret setting (marked secret here) may instead name a file holding it, "
            "e.g. `OPENAI_API_KEY_FILE=/run/secrets/openai`; the file wins over the variable.",
            "secret": False,
        },
    )
    provider_base_urls: Mapping[str, str] = field(
        default_factory=dict,
        metadata={
            "env": "<PROVIDER>_BASE_URL",
            "doc": "Overrides a built-in provider's base URL (a proxy, a regional endpoint, a test).",
            "secret": False,
        },
    )

    def __post_init__(self) -> None:
        check_values(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name.startswith("<"):
                continue
            raw = read_value(env, name, secret=f.metadata["secret"])
            if raw is None:
                continue
            values[f.name] = convert(name, raw, f.default)
        keys: dict[str, str] = {}
        urls: dict[str, str] = {}
        for spec in BUILTIN_PROVIDERS:
            key = read_value(env, f"{spec.env}_API_KEY", secret=True)
            if key:
                keys[spec.name] = key
                file = env.get(f"{spec.env}_API_KEY_FILE")
                values.setdefault("secret_sources", {})[spec.name] = (
                    f"{spec.env}_API_KEY_FILE" if file else f"{spec.env}_API_KEY"
                )
            url = read_value(env, f"{spec.env}_BASE_URL", secret=False)
            if url:
                urls[spec.name] = url.rstrip("/")
        return cls(**values, provider_keys=keys, provider_base_urls=urls)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite://{Path(self.data_dir) / 'llm-relay.db'}"
