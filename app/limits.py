"""Rate limits: requests and tokens per minute, per relay key (by its name), per tag and per
deployment (``provider/model``, to stay under a provider's own limits). Declared beside the
routes in ``PROVIDERS_FILE``::

    limits:
      - key: ci-bot                 # a relay key's name
        requests_per_minute: 60
        tokens_per_minute: 100000
      - tag: research
        requests_per_minute: 600
      - deployment: openai/gpt-4o
        tokens_per_minute: 800000

Windows are fixed calendar minutes. The counts live in the file the workers of one machine
share (:mod:`app.machine_state`): one transaction admits a
request against all its limits at once, so the limits are exact across workers. Tokens are
those the provider reported, counted when a reply ends: requests already under way when a
token limit is reached still finish. Each instance of the relay keeps its own counts.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.custom_providers import providers_file_section
from app.errors import RateLimited
from app.machine_state import MachineState
from app.settings import SettingsError

SCOPES = ("key", "tag", "deployment")
WINDOW = 60  # seconds: the limits are per minute
_KEYS = {*SCOPES, "requests_per_minute", "tokens_per_minute"}


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # key | tag | deployment
    name: str
    requests: int | None  # per minute
    tokens: int | None  # per minute

    @property
    def subject(self) -> str:
        return f"{self.scope}:{self.name}"


def load_limits(path: str) -> list[Limit]:
    """The ``limits`` of ``PROVIDERS_FILE``; a clear SettingsError for a wrong one."""
    entries = providers_file_section(path, "limits")
    return [_limit(entry, f"PROVIDERS_FILE: limits[{i}]") for i, entry in enumerate(entries)]


def _limit(entry: Any, where: str) -> Limit:
    if not isinstance(entry, dict) or set(entry) - _KEYS:
        raise SettingsError(f"{where} must be a mapping of {sorted(_KEYS)}")
    scopes = [scope for scope in SCOPES if scope in entry]
    if len(scopes) != 1 or not isinstance(entry[scopes[0]], str) or not entry[scopes[0]]:
        raise SettingsError(f"{where} names exactly one of key, tag or deployment")
    counts = [entry.get("requests_per_minute"), entry.get("tokens_per_minute")]
    if all(c is None for c in counts) or not all(
        c is None or (isinstance(c, int) and not isinstance(c, bool) and c > 0) for c in counts
    ):
        raise SettingsError(f"{where}: requests_per_minute and/or tokens_per_minute, whole numbers above 0")
    return Limit(scopes[0], entry[scopes[0]], counts[0], counts[1])


class Limiter:
    """Admits requests against the limits that apply to them and counts their tokens."""

    def __init__(self, limits: Iterable[Limit], state: MachineState, clock: Callable[[], float] = time.time) -> None:
        self.limits: dict[str, Limit] = {limit.subject: limit for limit in limits}
        self.state = state
        self.clock = clock
        self._swept = -1  # the window this process last cleared the older ones in

    def applying(self, subjects: Iterable[str]) -> list[Limit]:
        return [limit for subject in subjects if (limit := self.limits.get(subject)) is not None]

    def admit(self, limits: list[Limit]) -> dict[str, str]:
        """Count one request against every limit, or none when one of them is reached (then
        RateLimited). Returns the x-ratelimit-* headers of the tightest request limit."""
        if not limits:
            return {}
        now = self.clock()
        window = int(now // WINDOW)
        reset = math.ceil((window + 1) * WINDOW - now)
        db = self._connection()
        with db:  # one transaction: all the limits admit the request, or none counts it
            db.execute("BEGIN IMMEDIATE")
            used = {limit.subject: self._used(db, limit.subject, window) for limit in limits}
            for limit in limits:
                requests, tokens = used[limit.subject]
                if (limit.requests is not None and requests >= limit.requests) or (
                    limit.tokens is not None and tokens >= limit.tokens
                ):
                    raise _refused(limit, used[limit.subject], reset)
            db.executemany(
                "INSERT INTO windows (subject, window, requests, tokens) VALUES (?, ?, 1, 0) "
                "ON CONFLICT (subject, window) DO UPDATE SET requests = requests + 1",
                [(limit.subject, window) for limit in limits],
            )
        counted = [(limit, used[limit.subject][0] + 1) for limit in limits if limit.requests is not None]
        if not counted:
            return {}
        limit, requests = min(counted, key=lambda pair: pair[0].requests - pair[1])  # type: ignore[operator]
        return _headers("requests", limit.requests, requests, reset)

    def charge(self, limits: list[Limit], tokens: int) -> None:
        """Add the tokens a reply used to the current window of each token limit."""
        counted = [limit for limit in limits if limit.tokens is not None]
        if not counted or tokens <= 0:
            return
        window = int(self.clock() // WINDOW)
        with self._connection() as db:
            db.executemany(
                "INSERT INTO windows (subject, window, requests, tokens) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (subject, window) DO UPDATE SET tokens = tokens + excluded.tokens",
                [(limit.subject, window, tokens) for limit in counted],
            )

    def _used(self, db: sqlite3.Connection, subject: str, window: int) -> tuple[int, int]:
        row = db.execute("SELECT requests, tokens FROM windows WHERE subject = ? AND window = ?", (subject, window))
        found = row.fetchone()
        return (int(found[0]), int(found[1])) if found else (0, 0)

    def _connection(self) -> sqlite3.Connection:
        db = self.state.connection()
        window = int(self.clock() // WINDOW)
        if window != self._swept:  # once a minute: windows older than the last one are of no use to anyone
            db.execute("DELETE FROM windows WHERE window < ?", (window - 1,))
            self._swept = window
        return db


def _refused(limit: Limit, used: tuple[int, int], reset: int) -> RateLimited:
    requests, tokens = used
    what = (
        f"{limit.requests} requests"
        if limit.requests is not None and requests >= limit.requests
        else f"{limit.tokens} tokens"
    )
    error = RateLimited(
        f"rate limit of {limit.scope} {limit.name!r} reached: {what} a minute; try again in {reset} s",
        headers={
            "Retry-After": str(reset),
            **_headers("requests", limit.requests, requests, reset),
            **_headers("tokens", limit.tokens, tokens, reset),
        },
    )
    error.scope = limit.scope
    return error


def _headers(kind: str, limit: int | None, used: int, reset: int) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for ``requests`` or ``tokens``, which its SDKs read."""
    if limit is None:
        return {}
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, limit - used)),
        f"x-ratelimit-reset-{kind}": f"{reset}s",
    }
