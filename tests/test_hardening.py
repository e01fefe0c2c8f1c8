"""X-Forwarded-For is believed only from TRUSTED_PROXIES; provider keys never leak into
errors, logs or exports."""

from __future__ import annotations

import httpx
import pytest

from tests.faults import RelayProcess

BODY = {"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(("trusted", "client"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")])
def test_forwarded_for_only_from_trusted_proxies(tmp_path, emulator, trusted: str, client: str) -> None:
    relay = RelayProcess({
        "DATABASE_URL": f"sqlite://{tmp_path / 'xff.db'}", "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "TRUSTED_PROXIES": trusted, "USAGE_FLUSH_SECONDS": "0.05",
    }).start()  # fmt: skip
    try:
        reply = httpx.post(relay.url + "/v1/chat/completions", json=BODY, headers={"X-Forwarded-For": "203.0.113.9"})
        assert reply.status_code == 200
    finally:
        relay.stop()
    assert [r["client"] for r in relay.rows()] == [client]


def test_provider_key_never_in_errors_logs_or_exports(tmp_path, emulator) -> None:
    secret = "sk-proj-do-not-leak-0123456789abcdef"
    relay = RelayProcess({
        "DATABASE_URL": f"sqlite://{tmp_path / 'leak.db'}", "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": secret,
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "LOG_LEVEL": "debug",
    }).start()  # fmt: skip
    try:
        replies = [
            httpx.post(relay.url + "/v1/chat/completions", json=BODY),
            httpx.post(
                relay.url + "/v1/chat/completions", json={**BODY, "model": "openai/error_400_unsupported_system_role"}
            ),
            httpx.post(relay.url + "/v1/chat/completions", json={**BODY, "model": "openai/no-such-recording"}),
            httpx.post(relay.url + "/v1/chat/completions", content=b"{bad json"),
            httpx.get(relay.url + "/v1/models"),
        ]
    finally:
        log = relay.stop()
    assert all(secret not in r.text and secret not in str(r.headers) for r in replies)
    assert secret not in log and secret[-8:] not in log
    assert secret not in str(relay.rows())
