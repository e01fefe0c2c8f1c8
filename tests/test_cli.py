"""The ``llm-relay`` command: help, migrate, models, usage export, and serve end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.live import free_port


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "models", "usage"):
        assert command in result.stdout
    assert "--format" in cli("usage", "export", "--help").stdout


def test_bad_setting_is_a_clear_error() -> None:
    result = cli("models", env={"PORT": "eleven"})
    assert result.returncode == 2 and "PORT='eleven' is not a valid int" in result.stderr


def test_models_lists_configured_providers(tmp_path) -> None:
    result = cli("models", "--json", env={"GROQ_API_KEY": "k", "DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    models = {row["model"] for row in json.loads(result.stdout)}
    assert "groq/openai/gpt-oss-120b" in models
    assert not any(m.startswith("openai/") for m in models)


def test_usage_export_shows_the_rows(relay, db_url) -> None:
    tag = f"t-{uuid.uuid4().hex[:10]}"
    reply = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "deepseek/chat_nonstream_cache_hit_reasoning", "messages": [{"role": "user", "content": "x"}]},
        headers={"X-Proxy-Tag": tag},
    )
    request_id = reply.headers["x-request-id"]
    relay.rows(tag=tag)  # flushed
    as_csv = cli("usage", "export", "--format", "csv", env={"DATABASE_URL": db_url})
    assert as_csv.returncode == 0, as_csv.stderr
    row = next(r for r in csv.DictReader(io.StringIO(as_csv.stdout)) if r["request_id"] == request_id)
    assert (row["tags"], row["input_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]) == (
        tag,
        "563",
        "512",
        "60",
    )
    as_json = cli("usage", "export", "--format", "json", "--since", "1h", env={"DATABASE_URL": db_url})
    rows = {r["request_id"]: r for r in json.loads(as_json.stdout)}
    assert rows[request_id]["tags"] == [tag] and rows[request_id]["output_tokens"] == 116
    future = cli("usage", "export", "--format", "json", "--since", "2999-01-01", env={"DATABASE_URL": db_url})
    assert json.loads(future.stdout) == []


def test_serve_migrates_a_fresh_sqlite_database_and_answers(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "warning"}
    env["ADMIN_PORT"] = str(free_port())  # not 8080, which another relay on the machine may hold
    process = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the relay did not start"
                time.sleep(0.1)
        assert reply.text == "Ollama is running"
        assert (tmp_path / "data" / "llm-relay.db").exists()
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert models["object"] == "list"
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        status = process.wait(timeout=15)
        log = process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    assert status in (0, -15), log
    assert "Traceback" not in log


def test_usage_totals(relay, db_url) -> None:
    tag = f"t-{uuid.uuid4().hex[:10]}"
    for _ in range(2):
        httpx.post(
            relay.url + "/v1/chat/completions",
            json={"model": "xai/chat_nonstream_reasoning", "messages": [{"role": "user", "content": "x"}]},
            headers={"X-Proxy-Tag": tag},
        )
    relay.rows(tag=tag)  # flushed
    result = cli("usage", "totals", "--by", "tag", "--json", env={"DATABASE_URL": db_url})
    mine = next(row for row in json.loads(result.stdout) if row["key"] == tag)
    assert (mine["requests"], mine["cost_nanousd"], mine["output_tokens"]) == (2, 2 * 164_150, 2 * 322)
    table = cli("usage", "totals", env={"DATABASE_URL": db_url}).stdout
    assert table.splitlines()[0].split()[:2] == ["total", "requests"]


def test_usage_totals_never_show_unpriced_as_zero(relay, db_url) -> None:
    unpriced, failed, mixed = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("unpriced", "failed", "mixed"))
    for model, tags in (
        ("openai/chat_nonstream_basic", f"{unpriced},{mixed}"),  # a model the catalog does not price
        ("mystery-model", failed),  # a 404
        ("xai/chat_nonstream_reasoning", mixed),
    ):
        httpx.post(
            relay.url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
            headers={"X-Proxy-Tag": tags},
        )
    relay.rows(tag=mixed)  # flushed
    relay.rows(tag=failed)
    result = cli("usage", "totals", "--by", "tag", "--json", env={"DATABASE_URL": db_url})
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert (rows[unpriced]["cost_nanousd"], rows[unpriced]["unpriced_requests"]) == (None, 1)
    assert (rows[failed]["cost_nanousd"], rows[failed]["unpriced_requests"]) == (None, 1)
    assert (rows[mixed]["cost_nanousd"], rows[mixed]["unpriced_requests"]) == (164_150, 1)
    table = cli("usage", "totals", "--by", "tag", env={"DATABASE_URL": db_url}).stdout
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert lines[unpriced][-1] == "unpriced" and lines[failed][-1] == "unpriced"
    assert lines[mixed][3] == "1" and lines[mixed][-1] == "0.000164150"  # unpriced, then exact dollars


def test_a_port_already_taken_stops_the_first_start_before_it_makes_a_password(tmp_path) -> None:
    """The generated admin password is printed once: a first start that could not listen printed
    it among its errors, and the next, working start printed nothing."""
    env = {"DATA_DIR": str(tmp_path / "data"), "ADMIN_PASSWORD": ""}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for busy in (
            {"PORT": str(port), "ADMIN_PORT": str(free_port())},
            {"PORT": str(free_port()), "ADMIN_PORT": str(port)},
        ):
            refused = cli("serve", env={**env, **busy}, timeout=30)
            assert refused.returncode == 2, refused.stderr[-2000:]
            assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr and "Traceback" not in refused.stderr
            assert "generated admin password" not in refused.stderr
    host = cli("serve", env={**env, "HOST": "no-such-host.invalid"}, timeout=30)
    assert host.returncode == 2 and "(HOST, PORT)" in host.stderr and "Traceback" not in host.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("garbage", "is neither sqlite:///path nor postgres://"),
        ("sqlite://", "is neither sqlite:///path nor postgres://"),
        ("mysql://db.example/x", "is neither sqlite:///path nor postgres://"),
        ("postgres://postgres@127.0.0.1:{port}/x", "cannot open the database 127.0.0.1:{port}/x"),
    ],
)
def test_a_database_a_command_cannot_open_is_one_line(url: str, says: str) -> None:
    port = free_port()  # nothing listens there
    url, says = url.format(port=port), says.format(port=port)
    for command in (("migrate",), ("keys", "list"), ("usage", "totals"), ("admin", "reset-password")):
        result = cli(*command, env={"DATABASE_URL": url, "ADMIN_PASSWORD": ""}, timeout=60)
        assert result.returncode == 1 and says in result.stderr, (command, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    if not says.startswith("cannot open"):  # no database could ever be there: serve stops too, not waits
        served = cli("serve", env={"DATABASE_URL": url, "PORT": str(free_port()), "ADMIN_PORT": str(free_port())})
        assert served.returncode == 2 and says in served.stderr


def test_command_line_mistakes_are_one_line(tmp_path) -> None:
    env = {"DATA_DIR": str(tmp_path)}
    cases = [
        (("usage", "export", "-o", str(tmp_path / "no" / "such" / "dir.csv")), {}, "cannot write"),
        (("usage", "totals", "--since", "99999999999d"), {}, "before the year 1"),
        (("models",), {"PIPELINE_STAGES": "os:system"}, "stage 'os:system' failed to start"),
        (("models",), {"PROVIDERS_FILE": str(tmp_path / "latin1.yaml")}, "is not UTF-8 text"),
    ]
    (tmp_path / "latin1.yaml").write_bytes(b"providers: [caf\xe9]\n")
    for args, extra, says in cases:
        result = cli(*args, env={**env, **extra})
        assert result.returncode != 0 and says in result.stderr and "Traceback" not in result.stderr, (
            args,
            result.stderr,
        )


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path) -> None:
    """``llm-relay models | head -1``: the reader leaves early, as it may."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k"}
    listing = subprocess.Popen(
        [sys.executable, "-m", "app", "models"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert listing.stdout is not None and listing.stdout.readline()
    listing.stdout.close()
    _, errors = listing.communicate(timeout=60)
    assert listing.returncode == 0 and b"BrokenPipeError" not in errors, errors[-2000:]


def test_a_file_that_is_no_database_is_said_at_once(tmp_path) -> None:
    """Opening it through Tortoise hung a migration forever; serve retried it as if it were away."""
    (tmp_path / "relay.db").write_text("hi\n")
    env = {"DATABASE_URL": f"sqlite://{tmp_path / 'relay.db'}", "DATA_DIR": str(tmp_path)}
    migrating = cli("migrate", env=env, timeout=30)
    assert migrating.returncode == 1 and "cannot be read: file is not a database" in migrating.stderr
    serving = cli("serve", env={**env, "PORT": str(free_port()), "ADMIN_PORT": str(free_port())}, timeout=30)
    assert serving.returncode == 2 and "cannot be read: file is not a database" in serving.stderr
