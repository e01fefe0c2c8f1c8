"""Tortoise ORM models. Money is integer nano-dollars; one row per request, one tag row per tag."""

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
    requested_model = fields.CharField(max_length=255, default="")
    resolved_model = fields.CharField(max_length=255, null=True)
    provider = fields.CharField(max_length=64, null=True, db_index=True)
    route = fields.CharField(max_length=16, default="direct")
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    reasoning_tokens = fields.BigIntField(default=0)
    cached_input_tokens = fields.BigIntField(default=0)
    cache_read_tokens = fields.BigIntField(default=0)
    cache_write_tokens = fields.BigIntField(default=0)
    usage_reported = fields.BooleanField(default=False)
    cost_nanousd = fields.BigIntField(null=True)
    latency_ms = fields.IntField(null=True)
    ttft_ms = fields.IntField(null=True)
    streamed = fields.BooleanField(default=False)
    status = fields.IntField(default=200)
    outcome = fields.CharField(max_length=32, db_index=True)
    error = fields.TextField(null=True)

    class Meta:
        table = "usage_record"


class UsageTag(Model):
    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64, db_index=True)
    tag = fields.CharField(max_length=64, db_index=True)

    class Meta:
        table = "usage_tag"
        unique_together = (("request_id", "tag"),)


class ModelAlias(Model):
    name = fields.CharField(max_length=128, primary_key=True)
    target = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "model_alias"


class QuirkOverride(Model):
    """A quirk rule edited by an admin: the same shape as a rule in app/data/quirks.yaml."""

    id = fields.IntField(primary_key=True)
    rule: dict[str, Any] = fields.JSONField()
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "quirk_override"
