"""Admin authentication: a slow salted password hash, signed session cookies with an expiry,
CSRF tokens bound to the session, and login throttling.

Sessions are stateless (HMAC-signed), so any instance sharing the secret accepts them; each
carries a fingerprint of the password, so changing the password ends every session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass

log = logging.getLogger("llm_relay.admin")
SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=SCRYPT["maxmem"], dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    expires: int

    @property
    def key(self) -> str:
        return self.nonce


class Sessions:
    """Sign and check session cookies and the CSRF tokens that belong to them."""

    def __init__(self, secret: str, credential: str, lifetime_seconds: float) -> None:
        """``credential`` is what the password is known by: its stored hash, or the password
        itself when it comes from the environment (its hash, salted anew at each start, would
        end every session at a restart and differ between instances). It is only ever signed."""
        self.secret = secret.encode()
        self.fingerprint = hashlib.sha256(credential.encode()).hexdigest()[:16]
        self.lifetime = lifetime_seconds

    def _sign(self, message: str) -> str:
        return _b64(hmac.new(self.secret, message.encode(), hashlib.sha256).digest())

    def issue(self) -> str:
        expires = int(time.time() + self.lifetime)
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{nonce}.{self._sign(f'{expires}.{nonce}.{self.fingerprint}')}"

    def check(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            expires_text, nonce, signature = cookie.split(".")
            expires = int(expires_text)
        except ValueError:
            return None
        expected = self._sign(f"{expires}.{nonce}.{self.fingerprint}")
        if not hmac.compare_digest(signature, expected) or expires < time.time():
            return None
        return Session(nonce, expires)

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf.{session.nonce}")

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))


class Throttle:
    """At most ``limit`` failed logins per client address within ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures[client]
        while failures and failures[0] < time.monotonic() - self.window:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int:
        """Seconds until this client may try again (0: it may now)."""
        failures = self._recent(client)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[0] + self.window - time.monotonic()))

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target
