"""What a DATABASE_URL must look like, and the error a command gives when it cannot open its
database: light enough for the command line to import before it knows what it will run."""

from __future__ import annotations


class DatabaseUnusable(Exception):
    """A command could not open its database; the message says why in one line."""


def url_problem(db_url: str) -> str | None:
    """Why DATABASE_URL can name no database at all (None: it can); a database that does not
    answer is another matter, which the relay waits out."""
    scheme, sep, rest = db_url.partition("://")
    if not sep or scheme not in ("sqlite", "postgres", "postgresql", "asyncpg") or not rest.partition("?")[0]:
        where = db_url.rpartition("@")[2]
        return f"DATABASE_URL {where!r} is neither sqlite:///path nor postgres://user:pass@host:5432/db"
    return None
