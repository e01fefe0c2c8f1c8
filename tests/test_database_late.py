"""A relay started while its database does not answer serves anyway: /health answers, /ready
says not ready, inference requests are served and their rows wait in the journal; once the
database answers it is migrated and connected in the background, /ready turns ready and every
row lands. A directory the relay may not write stops it at once with a clear error instead."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.faults import BODY, PrivatePostgres, RelayProcess
from tests.test_durability import one_row_each, wait_for_rows
from tests.test_workers import pids


def ready(url: str) -> bool:
    reply = httpx.get(url + "/ready", timeout=5)
    assert reply.status_code in (200, 503), reply.text
    return reply.status_code == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_starts_before_its_database_answers(tmp_path: Path, emulator, workers: str) -> None:
    postgres = PrivatePostgres()  # a fresh cluster, not started yet: nothing listens on its port
    relay = RelayProcess({
        "DATABASE_URL": postgres.url, "DATA_DIR": str(tmp_path), "WORKERS": workers, "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "USAGE_FLUSH_SECONDS": "0.05",
    })  # fmt: skip
    try:
        relay.start(timeout=60)
        if workers == "2":
            deadline = time.monotonic() + 30
            while len(pids(relay.url, 10)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(pids(relay.url)) == 2, "both workers serve without the database"
        reply = httpx.get(relay.url + "/ready", timeout=5)
        assert reply.status_code == 503 and reply.json()["checks"]["database"] is False
        served = []
        for _ in range(6):
            answer = httpx.post(relay.url + "/v1/chat/completions", json=BODY, timeout=30)
            assert answer.status_code == 200, answer.text
            served.append(answer.headers["x-request-id"])
        assert relay.process is not None and relay.process.poll() is None

        postgres.start()
        deadline = time.monotonic() + 60
        while not all(ready(relay.url) for _ in range(6)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(ready(relay.url) for _ in range(6)), "/ready never turned ready"
        rows = wait_for_rows(relay, len(served))
        one_row_each(rows, served)
        assert len(rows) == len(served)
    finally:
        log = relay.stop() if relay.process is not None else ""
        postgres.remove()
    assert "does not answer" in log and "Traceback" not in log, log[-3000:]
    assert "exited with" not in log  # no worker died for want of the database
    assert list(tmp_path.glob("usage-journal.*")) == []  # every row written


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_directory_it_cannot_write_is_a_clear_error(tmp_path: Path, workers: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cases = {  # what cannot be written: where the journal goes, and the SQLite file's directory
        "usage journal": {"DATA_DIR": str(blocker / "data")},
        "SQLite database": {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite://{blocker / 'relay.db'}"},
    }
    for what, env in cases.items():
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "app", "serve", "--workers", workers],
            env={**RelayProcess(env).env}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert f"{what}" in result.stderr and "cannot be written" in result.stderr
        assert "Traceback" not in result.stderr and "worker" not in result.stderr
        assert time.monotonic() - started < 20
