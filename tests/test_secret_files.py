"""Every secret given only as <NAME>_FILE: the relay starts, uses each, and never shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from tests.live import free_port


def test_relay_runs_with_every_secret_from_files(tmp_path, emulator) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = {
        "OPENAI_API_KEY": "sk-from-a-file-0123456789",
        "ADMIN_PASSWORD": "a password from a file",
        "DATABASE_URL": f"sqlite://{tmp_path / 'from-file.db'}",
        "SESSION_SECRET": "a session secret from a file",
    }
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "_FILE"))}
    for name, value in values.items():
        (secrets / name.lower()).write_text(value + "\n")
        env[f"{name}_FILE"] = str(secrets / name.lower())
        env.pop(name, None)
    port, admin_port = free_port(), free_port()
    env.update(
        PORT=str(port), ADMIN_PORT=str(admin_port), LOG_LEVEL="warning", OPENAI_BASE_URL=f"{emulator[1]}/openai/v1"
    )
    process = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "the relay did not start"
                time.sleep(0.1)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "x"}]},
        )
        assert reply.status_code == 200
        assert (
            emulator[0].last("/openai/v1/chat/completions").headers["authorization"]
            == f"Bearer {values['OPENAI_API_KEY']}"
        )
        admin = f"http://127.0.0.1:{admin_port}"
        with httpx.Client(base_url=admin, headers={"Origin": admin}) as client:
            assert client.post("/api/login", json={"password": values["ADMIN_PASSWORD"]}).status_code == 200
            providers = client.get("/api/providers").text
            assert "OPENAI_API_KEY_FILE" in providers  # shown as configured, through a file
            for secret in values.values():
                assert secret not in providers
    finally:
        process.terminate()
        process.wait(timeout=15)
        log = process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    for secret in values.values():
        assert secret not in log
    assert (tmp_path / "from-file.db").exists()  # the database URL came from its file
    rows = subprocess.run(
        [sys.executable, "-m", "app", "usage", "export", "--format", "json"], env=env, capture_output=True, text=True
    )
    assert [r["requested_model"] for r in json.loads(rows.stdout)] == ["openai/chat_nonstream_basic"]
