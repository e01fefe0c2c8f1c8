"""The relay's SQLite connections use its write-ahead-log settings unless the URL names its own."""

from __future__ import annotations

from pathlib import Path

from app.stores.db import SQLITE_PRAGMAS, Database, with_sqlite_pragmas


def test_pragmas_are_added_to_sqlite_urls_only() -> None:
    assert with_sqlite_pragmas("sqlite:///data/relay.db") == (
        "sqlite:///data/relay.db?synchronous=NORMAL&wal_autocheckpoint=10000&journal_size_limit=67108864&temp_store=MEMORY"
    )
    assert with_sqlite_pragmas("sqlite:///data/relay.db?wal_autocheckpoint=50") == (
        "sqlite:///data/relay.db?synchronous=NORMAL&wal_autocheckpoint=50&journal_size_limit=67108864&temp_store=MEMORY"
    )
    assert with_sqlite_pragmas("sqlite://:memory:") == "sqlite://:memory:"
    url = "postgres://postgres@127.0.0.1:5432/relay"
    assert with_sqlite_pragmas(url) == url


async def _pragmas(url: str) -> dict[str, int]:
    db = Database(url)
    await db.open()
    try:
        with db.context:
            found = {}
            for name in SQLITE_PRAGMAS:
                rows = await db.connection.execute_query_dict(f"PRAGMA {name}")
                found[name] = int(rows[0][name])
            return found
    finally:
        await db.close()


async def test_an_opened_database_runs_with_them(tmp_path: Path) -> None:
    assert await _pragmas(f"sqlite://{tmp_path / 'relay.db'}") == {
        "synchronous": 1,  # NORMAL
        "wal_autocheckpoint": 10000,
        "journal_size_limit": 67108864,
        "temp_store": 2,  # MEMORY
    }
    given = await _pragmas(f"sqlite://{tmp_path / 'own.db'}?wal_autocheckpoint=50")
    assert given["wal_autocheckpoint"] == 50
