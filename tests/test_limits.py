"""Rate limits (app/limits.py, the limits stage): requests and tokens a minute per relay key,
tag and deployment, refused with 429 in the caller's dialect, ``Retry-After`` and OpenAI's
``x-ratelimit-*`` headers; exact across the workers of one machine (a shared SQLite file in
DATA_DIR), and counted per instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.limits import Limit, Limiter, load_limits
from app.machine_state import MachineState
from app.settings import SettingsError
from tests.faults import emulated_relay
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)

MESSAGES = [{"role": "user", "content": "hi"}]
MODEL = "openai/chat_nonstream_basic"
USAGE = {"stream_options": {"include_usage": True}}


def limits_file(tmp_path: Path, limits: list[dict[str, Any]], **more: Any) -> str:
    path = tmp_path / f"providers-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"limits": limits, **more}))
    return str(path)


def fresh_minute(margin: float = 15.0) -> None:
    """Wait for a new minute when this one ends within ``margin`` seconds: windows are calendar
    minutes, and a test counting to a limit must not straddle two."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def chat(relay: Any, tag: str, path: str = "/v1/chat/completions", model: str = MODEL) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": False, "max_tokens": 10}
    return httpx.post(relay.url + path, json=body, headers={"X-Proxy-Tag": tag}, timeout=30)


def test_a_tags_request_limit_refuses_the_next_one_in_each_dialect(make_relay: Any, tmp_path: Path) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    relay = make_relay(providers_file=limits_file(tmp_path, [{"tag": tag, "requests_per_minute": 3}]))
    fresh_minute()
    passed = [chat(relay, tag) for _ in range(3)]
    assert [r.status_code for r in passed] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in passed] == ["2", "1", "0"]
    assert passed[0].headers["x-ratelimit-limit-requests"] == "3"
    refused = {path: chat(relay, tag, path) for path in ("/v1/chat/completions", "/api/chat", "/v1/messages")}
    for reply in refused.values():
        assert reply.status_code == 429, reply.text
        retry_after = int(reply.headers["retry-after"])
        assert 1 <= retry_after <= 60 and abs(retry_after - (60 - time.time() % 60)) < 2
        assert reply.headers["x-ratelimit-remaining-requests"] == "0"
        row = relay.row(reply.headers["x-request-id"])
        assert (row["outcome"], row["status"], row["tags"]) == ("rate_limited", 429, [tag])
    assert refused["/v1/chat/completions"].json()["error"]["type"] == "rate_limit_error"
    assert "rate limit of tag" in refused["/api/chat"].json()["error"]
    assert refused["/v1/messages"].json()["error"]["type"] == "rate_limit_error"
    assert chat(relay, f"other-{tag}").status_code == 200  # another tag has its own count


def test_a_token_limit_counts_the_tokens_the_provider_reported(make_relay: Any, tmp_path: Path) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    relay = make_relay(providers_file=limits_file(tmp_path, [{"tag": tag, "tokens_per_minute": 1000}]))
    fresh_minute()
    first = chat(relay, tag)
    assert first.status_code == 200, first.text
    reported = first.json()["usage"]["total_tokens"]
    limiter: Limiter = relay.app.services.limiter
    window = int(time.time() // 60)
    assert limiter._used(limiter._connection(), f"tag:{tag}", window) == (1, reported)
    streamed = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "openai/chat_stream_text_short", "messages": MESSAGES, "stream": True, **USAGE},
        headers={"X-Proxy-Tag": tag},
    )
    usage = [json.loads(x[6:])["usage"] for x in streamed.text.splitlines() if '"usage":{' in x][-1]
    used = limiter._used(limiter._connection(), f"tag:{tag}", window)
    assert used == (2, reported + usage["total_tokens"])
    tight = make_relay(providers_file=limits_file(tmp_path, [{"tag": tag + "x", "tokens_per_minute": reported}]))
    assert chat(tight, tag + "x").status_code == 200  # under the limit when it started
    refused = chat(tight, tag + "x")
    assert refused.status_code == 429 and f"{reported} tokens a minute" in refused.json()["error"]["message"]
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"


def test_a_deployment_at_its_limit_sends_a_route_to_the_next(make_relay: Any, tmp_path: Path) -> None:
    path = limits_file(
        tmp_path,
        [{"deployment": MODEL, "requests_per_minute": 1}],
        routes=[{"name": "spread", "deployments": [MODEL, "groq/chat_nonstream_basic"]}],
    )
    relay = make_relay(providers_file=path)
    fresh_minute()
    served = [chat(relay, "team", model="spread") for _ in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    assert [r.headers["x-relay-model"] for r in served] == [
        MODEL,
        "groq/chat_nonstream_basic",
        "groq/chat_nonstream_basic",
    ]
    assert [r.headers["x-relay-attempts"] for r in served] == ["1", "2", "2"]
    direct = chat(relay, "team")  # asked for by its own name, the deployment is still at its limit
    assert direct.status_code == 429 and "deployment" in direct.json()["error"]["message"]


def test_each_instance_counts_on_its_own(make_relay: Any, tmp_path: Path) -> None:
    """Two relays on one database, each with its own DATA_DIR: each lets the limit through, so
    the callers of N instances get up to N times the limit (README, Rate limits)."""
    tag = f"t-{uuid.uuid4().hex[:8]}"
    path = limits_file(tmp_path, [{"tag": tag, "requests_per_minute": 2}])
    relays = [make_relay(providers_file=path), make_relay(providers_file=path)]
    fresh_minute()
    codes = [chat(relay, tag).status_code for relay in relays for _ in range(3)]
    assert codes == [200, 200, 429, 200, 200, 429]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"tag": "a", "key": "b", "requests_per_minute": 1}, "exactly one"),
        ({"tag": "a"}, "requests_per_minute and/or"),
        ({"tag": "a", "requests_per_minute": 0}, "above 0"),
        ({"tag": "a", "requests_per_second": 1}, "mapping of"),
    ],
)
def test_a_bad_limit_is_a_clear_settings_error(tmp_path: Path, entry: dict[str, Any], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        load_limits(limits_file(tmp_path, [entry]))


def test_a_keys_limit_is_exact_across_two_workers(own_db: str, emulator: Any, tmp_path: Path) -> None:  # noqa: F811
    env = {**os.environ, "DATABASE_URL": own_db}
    made = subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--name", "ci-bot", "--tags", "ci"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = next(word for word in made.stdout.split() if word.startswith("rk-"))
    limits = limits_file(tmp_path, [{"key": "ci-bot", "requests_per_minute": 60}])
    relay = emulated_relay(own_db, tmp_path, emulator[1], WORKERS="2", PROVIDERS_FILE=limits)
    relay.start(timeout=60)
    try:
        body = {"model": MODEL, "messages": MESSAGES}
        headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 30
        while len({httpx.get(relay.url + "/health").json()["pid"] for _ in range(10)}) < 2:
            assert time.monotonic() < deadline, "the second worker never answered"
        fresh_minute(margin=30)

        def one(_: int) -> httpx.Response:
            return httpx.post(relay.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(one, range(61)))
        codes = sorted(r.status_code for r in replies)
        assert codes == [200] * 60 + [429], codes
        refused = next(r for r in replies if r.status_code == 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    finally:
        relay.stop()


def test_windows_older_than_the_last_minute_are_cleared_as_time_goes_on(tmp_path: Path) -> None:
    now = [1_000_000.0]
    state = MachineState(str(tmp_path))
    limiter = Limiter([Limit("tag", "t", 10, None)], state, clock=lambda: now[0])
    for minute in range(5):
        now[0] = 1_000_000.0 + 60 * minute
        limiter.admit(limiter.applying(["tag:t"]))
    windows = [row[0] for row in state.connection().execute("SELECT window FROM windows ORDER BY window")]
    assert windows == [1_000_000 // 60 + 3, 1_000_000 // 60 + 4]  # the last minute and this one
