"""``llm-relay keys create|list|revoke``: inference API keys (see app/keys.py)."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from app.errors import RelayError
from app.keys import SHOWN, key_hash, new_key, shown_prefix
from app.settings import Settings
from app.stores.db import opened
from app.stores.models import ApiKey
from app.tagging import parse_tags

MAX_DAYS = 36500  # a hundred years: beyond it, datetime cannot say when


def _refuse(message: str) -> int:
    print(f"llm-relay: {message}", file=sys.stderr)
    return 2


async def create(settings: Settings, name: str, tags: str, expires_days: float | None) -> int:
    try:
        tag_list = parse_tags(tags, source="--tags") if tags else []
    except RelayError as exc:
        return _refuse(exc.message)
    if expires_days is not None and not (math.isfinite(expires_days) and 0 < expires_days <= MAX_DAYS):
        return _refuse(f"--expires-days must be a number of days above 0 and at most {MAX_DAYS} (or left out: never)")
    key = new_key()
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days is not None else None
    async with opened(settings.resolved_database_url):
        row = await ApiKey.create(
            prefix=shown_prefix(key), key_hash=key_hash(key), name=name, tags=tag_list, expires_at=expires
        )
    print(key)
    print(
        f"key #{row.id} {row.prefix}... '{name}' tags={','.join(tag_list) or '-'} "
        f"expires={expires.isoformat() if expires else 'never'}; shown once: store it now",
        file=sys.stderr,
    )
    return 0


async def list_keys(settings: Settings) -> int:
    async with opened(settings.resolved_database_url):
        rows = await ApiKey.all().order_by("id")
    now = datetime.now(UTC)
    for row in rows:
        state = "revoked" if row.revoked_at else "expired" if row.expires_at and row.expires_at <= now else "active"
        expires = row.expires_at.isoformat() if row.expires_at else "never"
        print(f"#{row.id} {row.prefix}...  {state:<8} {row.name!r} tags={','.join(row.tags) or '-'} expires={expires}")
    if not rows:
        print("no API keys")
    return 0


async def revoke(settings: Settings, which: str) -> int:
    """Revoke the one active key that ``which`` names: its #id, the whole key, the start of it
    as listed, or its name."""
    which = which.strip()
    if not which:
        return _refuse("name the key to revoke: its #id, the key, its start as listed, or its name")
    number = which.removeprefix("#")
    async with opened(settings.resolved_database_url):
        active = ApiKey.filter(revoked_at=None)
        if which.startswith("#") and number.isdigit():
            matches = await active.filter(id=int(number))
        else:
            # The start as listed, whole: a shorter one (a letter, say) is no way to name one key.
            listed = Q(prefix=shown_prefix(which)) if len(which) >= SHOWN else Q(pk=None)
            matches = await active.filter(key_hash=key_hash(which)) or await active.filter(listed | Q(name=which))
            if not matches and number.isdigit():  # a bare number: the #id, unless a key has that name
                matches = await active.filter(id=int(number))
        if len(matches) != 1:
            print(f"llm-relay: {len(matches)} active keys match {which!r}; give the key's #id", file=sys.stderr)
            return 1
        await ApiKey.filter(id=matches[0].id).update(revoked_at=datetime.now(UTC))
    row = matches[0]
    print(f"revoked key #{row.id} {row.prefix}...; running relays refuse it within CONFIG_REFRESH_SECONDS")
    return 0
