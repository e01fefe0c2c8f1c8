"""Tortoise ORM models. Money is integer nano-dollars; one row per request, one tag row per tag.

Every model sets ``_no_comments``: otherwise Tortoise reads each model's source file at import
to look for ``#:`` field comments (none here), which slows every start and every migration.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class UsageRecord(Model):
    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(db_index=True)
    endpoint = fields.CharField(max_length=64)
    dialect = fields.CharField(max_length=16)
    client = fields.CharField(max_length=64, default="")
    client_host = fields.CharField(max_length=255, null=True, db_default=None)  # reverse DNS, when enabled
    # A route's failed attempts before the deployment that served (or the last one), as JSON.
    attempts = fields.TextField(null=True, db_default=None)
    requested_model = fields.CharField(max_length=255, default="")
    resolved_model = fields.CharField(max_length=255, null=True)
    provider = fields.CharField(max_length=64, null=True)
    route = fields.CharField(max_length=16, default="direct")
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    reasoning_tokens = fields.BigIntField(default=0)
    cached_input_tokens = fields.BigIntField(default=0)
    cache_read_tokens = fields.BigIntField(default=0)
    cache_write_tokens = fields.BigIntField(default=0)
    usage_reported = fields.BooleanField(default=False)
    # Columns added after the first release carry a database default, so existing rows migrate.
    cache_write_1h_tokens = fields.BigIntField(default=0, db_default=0)
    web_search_requests = fields.IntField(default=0, db_default=0)
    service_tier = fields.CharField(max_length=16, null=True)
    # What the caller is charged: the provider's own figure when it reports one, else ours.
    cost_nanousd = fields.BigIntField(null=True)
    cost_source = fields.CharField(max_length=16, default="unpriced", db_default="unpriced")  # see docs
    computed_cost_nanousd = fields.BigIntField(null=True)
    provider_cost_nanousd = fields.BigIntField(null=True)
    cost_input_nanousd = fields.BigIntField(null=True)
    cost_cached_input_nanousd = fields.BigIntField(null=True)
    cost_cache_read_nanousd = fields.BigIntField(null=True)
    cost_cache_write_nanousd = fields.BigIntField(null=True)
    cost_output_nanousd = fields.BigIntField(null=True)
    cost_request_nanousd = fields.BigIntField(null=True)
    cost_search_nanousd = fields.BigIntField(null=True)
    pricing_tier = fields.CharField(max_length=32, null=True)
    # The rates applied, so a later price sync never changes what a past request cost: stored
    # once per distinct set in usage_rates (rates_id), or, in rows written before it, here.
    rates: dict[str, Any] | None = fields.JSONField(null=True)
    rates_id = fields.BigIntField(null=True)
    latency_ms = fields.IntField(null=True)
    ttft_ms = fields.IntField(null=True)
    streamed = fields.BooleanField(default=False)
    status = fields.IntField(default=200)
    outcome = fields.CharField(max_length=32)
    error = fields.TextField(null=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "usage_record"
        # The admin Usage page filters by these within a date range. SQLite has no statistics
        # and would otherwise walk the whole history of a provider or outcome (bench/usage_page.py).
        indexes = (("provider", "created_at"), ("resolved_model", "created_at"), ("outcome", "created_at"))


class UsageRates(Model):
    """A set of rates usage rows were priced with, stored once (app/stores/rate_cards.py)."""

    id = fields.BigIntField(primary_key=True, generated=False)  # a digest of the rates' JSON text
    rates: dict[str, Any] = fields.JSONField()

    _no_comments = True  # see the module docstring

    class Meta:
        table = "usage_rates"


class UsageTag(Model):
    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64)
    tag = fields.CharField(max_length=64)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "usage_tag"
        unique_together = (("request_id", "tag"),)
        indexes = (("tag", "request_id"),)  # a tag filter reads its request ids from the index alone


class UsageDaily(Model):
    """Daily totals of usage rows the retention job deleted, so long-range charts and totals
    still add up. ``tag`` is empty for the rows counting every request once, else the share of
    one tag (a request counts under each of its tags, as in the breakdowns)."""

    id = fields.BigIntField(primary_key=True)
    day = fields.CharField(max_length=10)  # YYYY-MM-DD, UTC
    tag = fields.CharField(max_length=64, default="")
    provider = fields.CharField(max_length=64, default="")
    resolved_model = fields.CharField(max_length=255, default="")
    client = fields.CharField(max_length=64, default="")
    outcome = fields.CharField(max_length=32)
    status = fields.IntField()
    requests = fields.BigIntField(default=0)
    ok = fields.BigIntField(default=0)
    unpriced = fields.BigIntField(default=0)
    priced = fields.BigIntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    reasoning_tokens = fields.BigIntField(default=0)
    cached_input_tokens = fields.BigIntField(default=0)
    cache_read_tokens = fields.BigIntField(default=0)
    cache_write_tokens = fields.BigIntField(default=0)
    cost_nanousd = fields.BigIntField(default=0)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "usage_daily"
        unique_together = (("day", "tag", "provider", "resolved_model", "client", "outcome", "status"),)


class ModelAlias(Model):
    name = fields.CharField(max_length=128, primary_key=True)
    target = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "model_alias"


class RouteRecord(Model):
    """A route added in the admin UI: its name and the rest of it as PROVIDERS_FILE writes it."""

    name = fields.CharField(max_length=128, primary_key=True)
    spec: dict[str, Any] = fields.JSONField()  # strategy, deployments, fallback_on, cooldown, context_fallback
    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "relay_route"


class QuirkOverride(Model):
    """A quirk rule edited by an admin: the same shape as a rule in app/data/quirks.yaml."""

    id = fields.IntField(primary_key=True)
    rule: dict[str, Any] = fields.JSONField()
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "quirk_override"


class PriceOverride(Model):
    """Prices set by an admin for one model, kept apart from the catalog so no sync overwrites them."""

    # NOTE: model docstrings become SQL comments, which Tortoise neither escapes nor keeps whole
    # across a semicolon on SQLite: no quotes or semicolons in them.

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=64)
    model = fields.CharField(max_length=255)
    input_per_mtok = fields.DecimalField(max_digits=18, decimal_places=9, null=True)
    output_per_mtok = fields.DecimalField(max_digits=18, decimal_places=9, null=True)
    cache_read_per_mtok = fields.DecimalField(max_digits=18, decimal_places=9, null=True)
    cache_write_per_mtok = fields.DecimalField(max_digits=18, decimal_places=9, null=True)
    cache_read_multiplier = fields.DecimalField(max_digits=12, decimal_places=6, null=True)
    cache_write_multiplier = fields.DecimalField(max_digits=12, decimal_places=6, null=True)
    request_fee_usd = fields.DecimalField(max_digits=18, decimal_places=9, null=True)
    tier_threshold = fields.BigIntField(null=True)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "price_override"
        unique_together = (("provider", "model"),)


class PricingSync(Model):
    """One pricing sync: when, from where, what changed, and the snapshot it produced if it worked."""

    id = fields.IntField(primary_key=True)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    source = fields.CharField(max_length=500)
    status = fields.CharField(max_length=16)  # ok | failed
    error = fields.TextField(null=True)
    added = fields.IntField(default=0)
    removed = fields.IntField(default=0)
    changed = fields.IntField(default=0)
    changes: dict[str, Any] | None = fields.JSONField(null=True)
    snapshot: dict[str, Any] | None = fields.JSONField(null=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "pricing_sync"


class OllamaInstance(Model):
    """An Ollama server added in the admin UI (those in OLLAMA_INSTANCES are not stored)."""

    name = fields.CharField(max_length=40, primary_key=True)
    base_url = fields.CharField(max_length=500)
    created_at = fields.DatetimeField(auto_now_add=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "ollama_instance"


class CustomProvider(Model):
    """An OpenAI- or Anthropic-compatible endpoint added in the admin UI. The key itself is never
    stored, only the environment variable or file that holds it."""

    name = fields.CharField(max_length=40, primary_key=True)
    api = fields.CharField(max_length=16)  # openai | anthropic
    base_url = fields.CharField(max_length=500)
    api_key_env = fields.CharField(max_length=128, null=True)
    api_key_file = fields.CharField(max_length=500, null=True)
    models: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "custom_provider"


class ModelSetting(Model):
    """Per-model switches an admin sets: enabled, and capabilities the catalog gets wrong."""

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=64)
    model = fields.CharField(max_length=255)
    enabled = fields.BooleanField(default=True)
    supports_vision = fields.BooleanField(null=True)
    supports_reasoning = fields.BooleanField(null=True)
    supports_tools = fields.BooleanField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "model_setting"
        unique_together = (("provider", "model"),)


class RelaySetting(Model):
    """A setting changed at run time (default model, retention, ...), stored as {"value": ...}."""

    key = fields.CharField(max_length=64, primary_key=True)
    value: Any = fields.JSONField(null=True)

    @classmethod
    async def read_all(cls) -> dict[str, Any]:
        rows = await cls.all().values_list("key", "value")
        return {str(k): v.get("value") for k, v in rows if isinstance(v, dict)}

    @classmethod
    async def read(cls, key: str) -> Any:
        row = await cls.get_or_none(key=key)
        return row.value.get("value") if row is not None and isinstance(row.value, dict) else None

    @classmethod
    async def write(cls, key: str, value: Any) -> None:
        await cls.update_or_create(defaults={"value": {"value": value}}, key=key)

    updated_at = fields.DatetimeField(auto_now=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "relay_setting"


class ApiKey(Model):
    """An inference API key. Only a hash of the key is stored (keys are random, so a fast hash
    is enough), and its first characters to tell keys apart."""

    id = fields.IntField(primary_key=True)
    prefix = fields.CharField(max_length=16, db_index=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=100, default="")
    tags: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    _no_comments = True  # see the module docstring

    class Meta:
        table = "api_key"
