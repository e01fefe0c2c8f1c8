"""What every admin page and API endpoint shares, built once by :func:`create_admin_app`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import jinja2
import markupsafe
import orjson
from tortoise.exceptions import IntegrityError

from app.admin.auth import Sessions, Throttle, hash_password_async, verify_password_async
from app.discovery import Discovery
from app.pipeline.core import Pipeline
from app.services import Services
from app.stores.live import LiveConfig
from app.stores.models import RelaySetting

log = logging.getLogger("llm_relay.admin")
PASSWORD_KEY = "admin_password_hash"
SECRET_KEY = "session_secret"
T = TypeVar("T")


@dataclass
class AdminContext:
    services: Services
    live: LiveConfig
    discovery: Discovery
    templates: jinja2.Environment
    throttle: Throttle = field(default_factory=Throttle)
    sessions: Sessions | None = None  # set by prepare(), once the database is open
    password_hash: str = ""
    state: dict[str, Any] = field(default_factory=dict)  # e.g. a pricing sync under way
    pipeline: Pipeline | None = None  # the relay's, for the Pipeline page
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def password_from_env(self) -> bool:
        return bool(self.services.settings.admin_password)

    async def prepare(self) -> None:
        """Load (or, on the very first start, create) the password hash and the session key."""
        settings = self.services.settings
        with self.services.database.context:
            if settings.admin_password:
                self.password_hash = await hash_password_async(settings.admin_password)
            else:
                stored = await _get(PASSWORD_KEY)
                if stored is None:
                    password = secrets.token_urlsafe(15)
                    if await _create(PASSWORD_KEY, await hash_password_async(password)):
                        log.warning("generated admin password (shown once, change it in the UI): %s", password)
                    stored = await _get(PASSWORD_KEY)
                self.password_hash = str(stored)
            secret = settings.session_secret or await _get(SECRET_KEY)
            if not secret:
                await _create(SECRET_KEY, secrets.token_urlsafe(32))
                secret = await _get(SECRET_KEY)
        self._sessions(str(secret))

    def _sessions(self, secret: str) -> None:
        lifetime = self.services.settings.admin_session_hours * 3600
        self.sessions = Sessions(secret, self.services.settings.admin_password or self.password_hash, lifetime)

    async def check_password(self, password: str) -> bool:
        return await verify_password_async(password, self.password_hash)

    async def change_password(self, new: str) -> None:
        """Store a new password hash; every existing session ends with the old one."""
        hashed = await hash_password_async(new)
        with self.services.database.context:
            await RelaySetting.write(PASSWORD_KEY, hashed)
        self.password_hash = hashed
        assert self.sessions is not None
        self._sessions(self.sessions.secret.decode())

    async def in_db(self, query: Callable[[], Awaitable[T]]) -> T:
        """``await query()`` with the relay's database, in a task of its own.

        Not ``with database.context:`` held across awaits: a TortoiseContext keeps one reset
        token per instance, so two tasks inside it at once reset each other's and one fails
        ("token was created in a different Context"); a slow usage query overlapping the live
        configuration's reload did exactly that. Entered and left around ``create_task`` only,
        it never spans an await, and the task carries the context."""

        async def run() -> T:
            return await query()

        with self.services.database.context:
            task = asyncio.create_task(run())
        return await task


class Resource:
    """A page or API endpoint: Falcon calls its ``on_<method>`` responders, which read and
    change the relay through the shared context."""

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx


async def _get(key: str) -> Any:
    return await RelaySetting.read(key)


async def _create(key: str, value: Any) -> bool:
    """Create a setting unless another instance just did (then keep theirs)."""
    try:
        await RelaySetting.create(key=key, value={"value": value})
    except IntegrityError:
        return False
    return True


def template_environment() -> jinja2.Environment:
    templates = resources.files("web").joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=jinja2.select_autoescape(["html"]),
        enable_async=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pretty"] = _pretty
    env.filters["url_breaks"] = _url_breaks
    return env


def _url_breaks(url: str) -> markupsafe.Markup:
    """A URL, escaped, that may wrap after its slashes only (a ``<wbr>`` after each): a narrow
    screen never splits ``host:port``."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    path = markupsafe.Markup("/<wbr>").join(markupsafe.escape(part) for part in rest.split("/"))
    head = markupsafe.escape(scheme) + markupsafe.Markup("://<wbr>") if separator else markupsafe.Markup("")
    return head + path


def _pretty(value: Any) -> str:
    """Indented JSON of anything a stage reports (dates and other objects as text); the
    template escapes it."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()
