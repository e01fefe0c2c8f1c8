"""Request ids: 32 hex characters, unique across processes and restarts, without a system call
per request (``uuid4`` reads the kernel's random source every time).

A random 64-bit prefix per process (drawn again in a forked child) and a counter. Ids are not
secrets: every response carries its own.
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter: itertools.count[int] = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(8)
    _counter = itertools.count(secrets.randbits(40))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"
