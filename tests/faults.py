"""Real processes for fault tests: the relay as a subprocess, a private PostgreSQL cluster that
can be stopped and started, and a steady load that keeps the request ids it was answered with."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.live import free_port

PG_BIN = Path(os.environ.get("RELAY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
BODY = {"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "x"}]}


class RelayProcess:
    """``llm-relay serve`` in its own process, as in production."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        self.env = {**clean, "PORT": str(self.port), "ADMIN_ENABLED": "false", "LOG_LEVEL": "warning", **env}
        self.process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty relay would fill a pipe nobody reads, and stall.
        self._log = tempfile.NamedTemporaryFile(prefix="relay-log-", suffix=".txt", delete=False)

    def start(self, timeout: float = 30) -> RelayProcess:
        command = [sys.executable, "-m", "app", "serve"]
        self.process = subprocess.Popen(command, env=self.env, stderr=self._log, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the relay did not start: {self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)
        self._log.close()  # the file stays, for log()
        return self.log()

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def rows(self) -> list[dict[str, Any]]:
        import json

        result = subprocess.run(
            [sys.executable, "-m", "app", "usage", "export", "--format", "json"],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))


class Load:
    """Requests sent steadily from a few threads; keeps the ids of those answered 200."""

    def __init__(self, url: str, total: int, threads: int = 8) -> None:
        self.url, self.total, self.threads = url, total, threads
        self.acknowledged: list[str] = []
        self.failed = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _one(self, client: httpx.Client) -> None:
        try:
            reply = client.post(self.url + "/v1/chat/completions", json=BODY, timeout=30)
        except httpx.HTTPError:
            with self._lock:
                self.failed += 1
            return
        with self._lock:
            if reply.status_code == 200:
                self.acknowledged.append(reply.headers["x-request-id"])
            else:
                self.failed += 1

    def _worker(self) -> None:
        with httpx.Client() as client:
            while True:
                with self._lock:
                    if self.sent >= self.total:
                        return
                    self.sent += 1
                self._one(client)

    def start(self) -> Load:
        self._pool = ThreadPoolExecutor(self.threads)
        for _ in range(self.threads):
            self._pool.submit(self._worker)
        return self

    def wait_for(self, answered: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) + self.failed < answered and time.monotonic() < deadline:
            time.sleep(0.01)

    def join(self) -> None:
        assert self._pool is not None
        self._pool.shutdown(wait=True)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, on a free port, that the test may stop and start."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="relay-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *command: str | Path) -> None:
        args = [str(c) for c in command]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            args = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", self.dir / "data", "-o", options, "-w", "-l", self.dir / "log", "start"
        )

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def emulated_relay(database_url: str, data_dir: Path, emulator_url: str, **env: str) -> RelayProcess:
    """``llm-relay serve`` on this database and data directory, its ``openai`` provider the
    emulator; ``env`` adds to or overrides the environment."""
    return RelayProcess(
        {
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": f"{emulator_url}/openai/v1",
            **env,
        }
    )
