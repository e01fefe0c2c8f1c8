"""No usage row is ever lost or written twice: the database goes away under load, the SQLite
file is locked under load, the relay is killed with SIGKILL mid-load."""

from __future__ import annotations

import collections
import signal
import sqlite3
import time

from tests.faults import Load, PrivatePostgres, RelayProcess


def one_row_each(rows: list[dict], acknowledged: list[str]) -> None:
    counts = collections.Counter(r["request_id"] for r in rows)
    missing = [r for r in acknowledged if counts[r] == 0]
    assert not missing, f"{len(missing)} acknowledged requests have no usage row"
    doubled = [r for r, n in counts.items() if n > 1]
    assert not doubled, f"rows written twice: {doubled[:5]}"


def wait_for_rows(relay: RelayProcess, expected: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = relay.rows()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_postgres_stopped_and_started_under_load(tmp_path, emulator) -> None:
    postgres = PrivatePostgres()
    postgres.start()
    relay = RelayProcess({
        "DATABASE_URL": postgres.url, "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "USAGE_FLUSH_SECONDS": "0.05",
    }).start()  # fmt: skip
    try:
        load = Load(relay.url, total=400).start()
        load.wait_for(100)
        postgres.stop()  # the database goes away mid-load...
        load.wait_for(250)
        assert relay.process is not None and relay.process.poll() is None
        postgres.start()  # ...and comes back
        load.join()
        assert load.failed == 0 and len(load.acknowledged) == 400  # requests were served throughout
        rows = wait_for_rows(relay, 400)
        one_row_each(rows, load.acknowledged)
        assert len(rows) == 400
        assert "usage rows failed" in relay.stop()  # the outage really hit the writer
        assert not (tmp_path / "usage-rejected.jsonl").exists()  # an outage refuses no row
    finally:
        if relay.process is not None and relay.process.poll() is None:
            relay.stop()
        postgres.remove()


def test_sqlite_file_locked_under_load(tmp_path, emulator) -> None:
    database = tmp_path / "locked.db"
    relay = RelayProcess({
        "DATABASE_URL": f"sqlite://{database}", "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "USAGE_FLUSH_SECONDS": "0.05",
    }).start()  # fmt: skip
    try:
        load = Load(relay.url, total=300).start()
        load.wait_for(50)
        lock = sqlite3.connect(database, isolation_level=None, timeout=10)
        lock.execute("BEGIN EXCLUSIVE")  # nobody else may write now...
        load.wait_for(200)
        time.sleep(6)  # ...for longer than SQLite's 5 s busy timeout, so writes fail and are retried
        lock.execute("COMMIT")
        lock.close()
        load.join()
        assert load.failed == 0 and len(load.acknowledged) == 300
        rows = wait_for_rows(relay, 300)
        one_row_each(rows, load.acknowledged)
        assert "database is locked" in relay.stop()  # the lock really held the writer back
        assert not (tmp_path / "usage-rejected.jsonl").exists()  # a lock refuses no row
    finally:
        if relay.process is not None and relay.process.poll() is None:
            relay.stop()


def test_sigkill_mid_load_then_restart_replays_the_journal(tmp_path, emulator) -> None:
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path / 'killed.db'}", "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1",
        # Nothing reaches the database before the kill: every row is only in the journal.
        "USAGE_FLUSH_SECONDS": "60", "USAGE_BATCH_SIZE": "100000",
    }  # fmt: skip
    relay = RelayProcess(env).start()
    load = Load(relay.url, total=300).start()
    load.wait_for(150)
    relay.stop(signal.SIGKILL)
    load.join()
    acknowledged = list(load.acknowledged)
    assert len(acknowledged) >= 150
    restarted = RelayProcess(env).start()
    try:
        rows = wait_for_rows(restarted, len(acknowledged))
        one_row_each(rows, acknowledged)
        assert len(rows) <= load.sent  # nothing invented
    finally:
        restarted.stop()
