"""The setups the bench measures, and how each is started, checked and stopped.

Every gateway runs pinned to core 0 and listens on 127.0.0.1 only; the upstream and the load
generator share core 1. A gateway that is not installed is reported as such, never faked.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
GATEWAY_CPU = "0"
LOAD_CPU = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL clients post to
    model: str
    paced_model: str
    headers: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)  # empty: nothing to start (direct)
    env: dict[str, str] = field(default_factory=dict)
    health: str = ""
    version: str = ""
    missing: str = ""  # why this target cannot run
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, out: Path, timeout: float = 120) -> float:
        """Start the gateway pinned to its core; returns the seconds it took to answer its health check."""
        if not self.command:
            return 0.0
        self.log = out / f"{self.name}.log"
        began = time.perf_counter()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["taskset", "-c", GATEWAY_CPU, *self.command],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches its workers too
            )
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            if ok(self.health):
                return time.perf_counter() - began
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} within {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except OSError:
        return False


def start_upstream(out: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (out / "upstream.log").open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, sys.executable, str(HERE / "upstream.py"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if ok(base + "/health"):
            return process, base
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the bench upstream did not start; see {out / 'upstream.log'}")


def peer_missing(name: str) -> str:
    failed = PEERS / f"{name}.failed"
    if failed.exists():
        return "install failed: " + failed.read_text().strip()
    if not (PEERS / f"{name}.ok").exists():
        return "not installed (bench/peers.sh)"
    return ""


def direct(upstream: str) -> Target:
    url = upstream + "/v1/chat/completions"
    return Target("direct", url, "gpt-4o-mini", "gpt-4o-mini-paced", {"Authorization": "Bearer sk-bench"})


def postgres_database(server: str, name: str, *, drop: bool = False) -> str:
    """Create (or drop) a database of the bench's own on a PostgreSQL server; returns its URL."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return f"{server}/{name}"


ROUTE = "bench-route"  # --route: the model name clients ask for, served by two deployments


def route_file(out: Path) -> Path:
    """Two routes of two deployments each, the first of which serves: what a route adds."""
    path = out / "providers.yaml"
    path.write_text(
        "routes:\n"
        f"  - name: {ROUTE}\n    deployments: [openai/gpt-4o-mini, openai/gpt-4o]\n"
        f"  - name: {ROUTE}-paced\n    deployments: [openai/gpt-4o-mini-paced, openai/gpt-4o-paced]\n"
    )
    return path


def relay(upstream: str, out: Path, *, tracked: bool = True, database_url: str = "", routed: bool = False) -> Target:
    """LLM Relay as deployed: ``llm-relay serve`` on SQLite, admin off, the upstream as the
    ``openai`` provider. ``tracked=False`` is a what-if for RESULTS.md: the same relay with usage
    rows switched off (the admin's ``usage_tracking`` setting), to show what writing them costs.
    ``routed=True`` asks for a two-deployment route instead of the model itself."""
    port = free_port()
    database = out / ("relay.db" if tracked else "relay-untracked.db")
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_ENABLED": "false",
        "DATABASE_URL": database_url or f"sqlite://{database}",
        "DATA_DIR": str(out),
        "OPENAI_API_KEY": "sk-bench-upstream",
        "OPENAI_BASE_URL": upstream + "/v1",
        "LOG_LEVEL": os.environ.get("BENCH_RELAY_LOG_LEVEL", "warning"),
    }
    if routed:
        env["PROVIDERS_FILE"] = str(route_file(out))
    script = Path(sys.executable).parent / "llm-relay"
    if not tracked:
        subprocess.run([str(script), "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
        with sqlite3.connect(database) as db:  # what the admin UI's switch writes
            db.execute(
                "INSERT INTO relay_setting (key, value, updated_at) VALUES ('usage_tracking', ?, ?)",
                ('{"value": false}', datetime.now(UTC).isoformat()),
            )
    base = f"http://127.0.0.1:{port}"
    from app import __version__

    name = "llm-relay" if tracked else "llm-relay-untracked"
    return Target(
        name + ("-pg" if database_url else ""),
        base + "/v1/chat/completions",
        ROUTE if routed else "openai/gpt-4o-mini",
        f"{ROUTE}-paced" if routed else "openai/gpt-4o-mini-paced",
        {"Authorization": "Bearer bench-team"},  # a bearer that is a tag: the tag path runs too
        [str(script), "serve"],
        env,
        base + "/api/version",
        __version__,
    )


def floor(upstream: str) -> Target:
    port = free_port()
    python = PEERS / "floor-venv" / "bin" / "python"
    command = [str(python), str(HERE / "floor.py"), "--port", str(port), "--upstream", upstream + "/v1"]
    base = f"http://127.0.0.1:{port}"
    target = Target("floor", base + "/v1/chat/completions", "gpt-4o-mini", "gpt-4o-mini-paced", {}, command)
    target.health, target.missing = base + "/health", peer_missing("floor")
    target.version = _marker("floor")
    return target


def litellm(upstream: str, out: Path) -> Target:
    port = free_port()
    config = out / "litellm.yaml"
    models = "".join(
        f"  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n"
        f"      api_base: {upstream}/v1\n      api_key: sk-bench-upstream\n"
        for name in ("gpt-4o-mini", "gpt-4o-mini-paced")
    )
    # No database, no Redis, no callbacks, no retries: LiteLLM's leanest proxy.
    config.write_text(
        f"model_list:\n{models}litellm_settings:\n  callbacks: []\n  num_retries: 0\n  request_timeout: 30\n"
        "  telemetry: false\ngeneral_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n"
    )
    key = "sk-bench-master"
    venv = PEERS / "litellm-venv" / "bin"
    command = [str(venv / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--num_workers", "1"]
    env = {"LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    base = f"http://127.0.0.1:{port}"
    target = Target("litellm", base + "/v1/chat/completions", "gpt-4o-mini", "gpt-4o-mini-paced")
    target.headers = {"Authorization": f"Bearer {key}"}
    target.command, target.env, target.health = command, env, base + "/health/liveliness"
    target.missing, target.version = peer_missing("litellm"), _marker("litellm")
    return target


def portkey(upstream: str) -> Target:
    port = free_port()
    server = PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    base = f"http://127.0.0.1:{port}"
    target = Target("portkey", base + "/v1/chat/completions", "gpt-4o-mini", "gpt-4o-mini-paced")
    # Portkey routes per request: these headers send it to the bench upstream as an OpenAI provider.
    target.headers = {
        "Authorization": "Bearer sk-bench-upstream",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream + "/v1",
    }
    target.command, target.health = ["node", str(server), f"--port={port}", "--headless"], base + "/"
    target.missing, target.version = peer_missing("portkey"), _marker("portkey")
    return target


def _marker(name: str) -> str:
    marker = PEERS / f"{name}.ok"
    return marker.read_text().strip() if marker.exists() else ""
