"""Tortoise ORM models of what the admin configures (aliases, routes, overrides, instances,
providers, settings, keys) and of pricing syncs; the usage tables are in
:mod:`app.stores.usage_models`.

Every model sets ``_no_comments``: otherwise Tortoise reads each model's source file at import
to look for ``#:`` field comments (none here), which slows every start and every migration.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


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
