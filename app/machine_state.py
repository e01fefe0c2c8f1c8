"""State the workers of one machine share: rate-limit windows and deployments' health, in a
small SQLite file in ``DATA_DIR`` (``machine-state.sqlite3``). SQLite's own locking makes each
transaction atomic across processes; nothing here needs to outlive the machine, so writes do
not wait for the disk. Instances on other machines keep their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS windows (subject TEXT NOT NULL, window INTEGER NOT NULL, "
    "requests INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (subject, window))",
    "CREATE TABLE IF NOT EXISTS failures (deployment TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS failures_by_deployment ON failures (deployment, at)",
    "CREATE TABLE IF NOT EXISTS cooldowns (deployment TEXT PRIMARY KEY, until REAL NOT NULL)",
)


class MachineState:
    """One connection per process to the shared file, made on first use."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory or ".") / "machine-state.sqlite3"
        self._db: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level None: callers open their transactions with BEGIN IMMEDIATE, which
            # takes the write lock at once, so two workers never both read and then both write.
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            for statement in SCHEMA:
                db.execute(statement)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
