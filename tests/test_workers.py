"""``llm-relay serve --workers 2`` as in production: both workers take connections on one
port, every request leaves exactly one row, /metrics on any worker counts them all, an admin
change made through the first worker reaches both within seconds, both agree on a tag's spend,
a killed worker is started again, and SIGTERM drains everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.faults import RelayProcess, emulated_relay
from tests.live import free_port
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)
from tests.test_metrics import scrape
from tests.test_stage_spend_limit import COST

MESSAGES = [{"role": "user", "content": "hi"}]


def pids(url: str, tries: int = 60) -> set[int]:
    """The workers that answer, a new connection each time (the kernel spreads them)."""
    return {httpx.get(url + "/health", timeout=5).json()["pid"] for _ in range(tries)}


def until(check, timeout: float, message: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(message)


def test_two_workers(own_db, emulator, tmp_path: Path) -> None:  # noqa: F811
    admin_port = free_port()
    budgeted = f"wb-{uuid.uuid4().hex[:8]}"
    budget = Decimal(COST) * Decimal("2.5") / 10**9  # room for two and a half gpt-4o requests
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        'stages = ["tags", "spend_limit", "resolve", "quirks", "dispatch", "meter", "cost"]\n'
        f'[options.spend_limit]\nbudgets = {{ "{budgeted}" = "{budget}" }}\nrefresh_seconds = 0.2\n'
    )
    relay = emulated_relay(
        own_db,
        tmp_path,
        emulator[1],
        WORKERS="2",
        ADMIN_ENABLED="true",
        ADMIN_PORT=str(admin_port),
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        CONFIG_REFRESH_SECONDS="1",
        PIPELINE_FILE=str(pipeline),
    )
    relay.start(timeout=60)
    try:
        until(lambda: len(pids(relay.url, 10)) == 2, 30, "the second worker never answered")
        workers = pids(relay.url)
        assert len(workers) == 2 and relay.process is not None and relay.process.pid not in workers

        # Work spread over both workers; exactly one row per request.
        tag = f"w-{uuid.uuid4().hex[:8]}"
        body = {"model": "openai/chat_nonstream_basic", "messages": MESSAGES}

        def one(_: int) -> str:
            reply = httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag}, timeout=30)
            assert reply.status_code == 200
            return reply.headers["x-request-id"]

        with ThreadPoolExecutor(12) as pool:
            ids = list(pool.map(one, range(120)))
        assert len(set(ids)) == 120

        def counted() -> bool:
            found = [m["llm_relay_requests_total"] for m in (scrape(relay.url) for _ in range(6))]
            label = '{provider="openai",model="openai/chat_nonstream_basic",outcome="ok"}'
            return all(series.get(label) == "120" for series in found)

        until(counted, 10, "/metrics on some worker does not count every worker's requests")

        def written() -> bool:  # the usage writers' own figures: whichever worker answers, the instance's
            found = [m["llm_relay_usage_rows_written_total"][""] for m in (scrape(relay.url) for _ in range(6))]
            return found == ["120"] * 6

        until(written, 10, "/metrics on some worker shows only its own usage rows written")

        # An admin change through worker 0 reaches both workers.
        with httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port}", headers={"Origin": f"http://127.0.0.1:{admin_port}"}
        ) as admin:
            login = admin.post("/api/login", json={"password": ADMIN_PASSWORD})
            assert login.status_code == 200
            admin.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            changed = admin.put("/api/default-model", json={"model": "openai/chat_nonstream_basic"})
            assert changed.status_code == 200, changed.text

        def everywhere() -> bool:
            answers = [
                httpx.post(relay.url + "/v1/chat/completions", json={**body, "model": "no-such-model-w"}, timeout=30)
                for _ in range(12)
            ]
            return all(a.status_code == 200 for a in answers)

        took = until(everywhere, 10, "the new default model did not reach every worker")
        assert took < 5

        # Both workers agree on a tag's spend: once three requests have spent the budget, every
        # worker refuses the next ones.
        emulator[0].fallback["openai"] = "chat_nonstream_basic"
        try:
            priced = {**body, "model": "openai/gpt-4o"}
            served = [
                httpx.post(relay.url + "/v1/chat/completions", json=priced, headers={"X-Proxy-Tag": budgeted})
                for _ in range(3)
            ]
            assert [r.status_code for r in served] == [200, 200, 200]

            def refused_everywhere() -> bool:
                answers = [
                    httpx.post(relay.url + "/v1/chat/completions", json=priced, headers={"X-Proxy-Tag": budgeted})
                    for _ in range(10)
                ]
                return all(a.status_code == 429 for a in answers)

            until(refused_everywhere, 10, "a worker still serves a tag whose budget is spent")
        finally:
            emulator[0].fallback.pop("openai", None)

        # A worker that dies is started again.
        victim = next(iter(workers))
        os.kill(victim, signal.SIGKILL)
        until(lambda: victim not in (now := pids(relay.url, 20)) and len(now) == 2, 60, "the worker was not restarted")
    finally:
        log = relay.stop()
    assert relay.process.returncode == 0, log[-3000:]
    rows = [r for r in relay.rows() if tag in r["tags"]]
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert list(tmp_path.glob("usage-journal.*")) == []  # every row written: nothing left to replay


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    relay = RelayProcess(
        {"WORKERS": "2", "DATABASE_URL": f"sqlite://{tmp_path / 'relay.db'}", "DATA_DIR": str(tmp_path)}
    )
    relay.start(timeout=60)
    assert relay.process is not None
    workers: set[int] = set()
    try:
        until(lambda: len(pids(relay.url, 10)) == 2, 30, "the second worker never answered")
        workers = pids(relay.url)
        relay.process.kill()  # SIGKILL: the parent cannot stop its workers itself
        relay.process.wait(10)
        until(lambda: all(gone(pid) for pid in workers), 10, "a worker outlived its parent")
    finally:
        relay.stop()
        for pid in workers:  # what the test started, should it fail
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
    with pytest.raises(httpx.ConnectError):
        httpx.get(relay.url + "/health", timeout=2)  # nobody serves the port any more
    with socket.socket() as sock:  # and a new instance can take it
        sock.bind(("127.0.0.1", relay.port))


def test_a_configuration_no_worker_can_start_with_stops_them_all(tmp_path: Path) -> None:
    env = RelayProcess({
        "WORKERS": "2", "DATABASE_URL": f"sqlite://{tmp_path / 'relay.db'}", "DATA_DIR": str(tmp_path),
        "PIPELINE_STAGES": "tags,no_such_stage,dispatch,cost",
    }).env  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "app", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot start: unknown stage 'no_such_stage'" in result.stderr
    assert "starting it again" not in result.stderr and "Traceback" not in result.stderr
