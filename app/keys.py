"""Inference API keys: created and revoked from the CLI (and the admin UI), shown once, stored
as a SHA-256 hash, each with default tags and an optional expiry. The request path checks a
key against an in-memory table the live configuration keeps current; it never reads the
database."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "rk-"  # "relay key": recognisable, and never mistaken for a provider's key


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    name: str
    tags: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool

    def usable(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


SHOWN = len(PREFIX) + 6  # characters of a key that lists show


def shown_prefix(key: str) -> str:
    return key[:SHOWN]


class KeyBook:
    """The keys by hash, swapped whole by the live configuration."""

    def __init__(self, keys: Iterable[tuple[str, KeyInfo]] = ()) -> None:
        self.by_hash = dict(keys)

    def check(self, key: str) -> KeyInfo | None:
        """The key's details if it exists and is neither revoked nor expired."""
        info = self.by_hash.get(key_hash(key))
        return info if info is not None and info.usable() else None
