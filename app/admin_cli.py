"""``llm-relay admin reset-password``: a new admin password when the generated one is lost."""

from __future__ import annotations

import secrets
import sys

from app.settings import Settings
from app.stores.db import opened
from app.stores.models import RelaySetting


async def reset_password(settings: Settings) -> int:
    """Store the hash of a new random password and print the password, once."""
    if settings.admin_password:
        print("llm-relay: ADMIN_PASSWORD sets the admin password; change it there", file=sys.stderr)
        return 2
    from app.admin.auth import hash_password_async
    from app.admin.context import PASSWORD_KEY

    password = secrets.token_urlsafe(15)
    async with opened(settings.resolved_database_url):
        await RelaySetting.write(PASSWORD_KEY, await hash_password_async(password))
    print(password)
    print(
        "the new admin password, shown once; restart the relay to use it (its sessions then end)",
        file=sys.stderr,
    )
    return 0
