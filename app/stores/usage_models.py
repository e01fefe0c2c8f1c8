"""Tortoise ORM models of the usage tables. Money is integer nano-dollars; one row per request,
one tag row per tag, each distinct set of rates once, and daily totals of purged rows.

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
