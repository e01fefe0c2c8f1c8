"""The bodies of all requests in flight are bounded together (MAX_INFLIGHT_BODY_BYTES): a request
whose body would pass the bound gets a 503 in its own dialect, with Retry-After, before its body
is read, and leaves a usage row like every inference request; a body over MAX_BODY_BYTES whose
length is declared is refused with a 413 just as early. The requests admitted are served."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults import RelayProcess
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)
from tests.test_metrics import scrape
from tests.test_workers import until

MB = 1_000_000
TAG = "big-bodies"


def body_of(size: int, path: str) -> bytes:
    """A valid request of exactly ``size`` bytes for the endpoint's dialect."""
    shape: dict[str, Any] = {"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": ""}]}
    if path == "/v1/messages":
        shape["max_tokens"] = 5
    if path == "/api/chat":
        shape["stream"] = False
    padding = size - len(json.dumps(shape))
    shape["messages"][0]["content"] = "x" * padding
    data = json.dumps(shape).encode()
    assert len(data) == size
    return data


def begin(relay: RelayProcess, path: str, size: int) -> http.client.HTTPConnection:
    """A request whose headers, Content-Length included, are sent, and none of its body yet."""
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    connection.putrequest("POST", path)
    for name, value in (("Content-Type", "application/json"), ("Content-Length", str(size)), ("X-Proxy-Tag", TAG)):
        connection.putheader(name, value)
    connection.endheaders()
    return connection


def holding(relay: RelayProcess, size: int) -> None:
    """Wait until the relay counts ``size`` bytes of bodies in flight."""
    gauge = "llm_relay_request_body_bytes_in_flight"
    until(lambda: scrape(relay.url).get(gauge, {}).get("") == str(size), 10, f"the relay never held {size} bytes")


def answer(connection: http.client.HTTPConnection) -> tuple[int, dict[str, str], Any]:
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(data)


@pytest.fixture
def relay(own_db, emulator, tmp_path: Path) -> Iterator[RelayProcess]:  # noqa: F811
    started = RelayProcess({
        "DATABASE_URL": own_db, "DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": f"{emulator[1]}/openai/v1", "USAGE_FLUSH_SECONDS": "0.05",
        "MAX_BODY_BYTES": str(4 * MB), "MAX_INFLIGHT_BODY_BYTES": str(8 * MB),
    }).start()  # fmt: skip
    yield started
    started.stop()


def test_bodies_past_the_bound_are_refused_before_they_are_read(relay: RelayProcess) -> None:
    # Two requests of 3 MB hold 6 of the 8 MB while their bodies are still on the way.
    held = [begin(relay, "/v1/chat/completions", 3 * MB) for _ in range(2)]
    holding(relay, 6 * MB)
    refused: dict[str, tuple[int, dict[str, str], Any]] = {}
    for path in ("/v1/chat/completions", "/api/chat", "/v1/messages"):
        # The answer comes though not one byte of the body was sent: nothing of it was buffered.
        refused[path] = answer(begin(relay, path, 3 * MB))
    for path, (status, headers, body) in refused.items():
        assert status == 503 and headers["retry-after"] == "1", (path, body)
        assert "MAX_INFLIGHT_BODY_BYTES" in json.dumps(body)
    assert "MAX_INFLIGHT_BODY_BYTES" in refused["/v1/chat/completions"][2]["error"]["message"]
    assert refused["/v1/chat/completions"][2]["error"]["code"] == "overloaded"
    assert "MAX_INFLIGHT_BODY_BYTES" in refused["/api/chat"][2]["error"]
    assert refused["/v1/messages"][2]["type"] == "error"
    assert refused["/v1/messages"][2]["error"]["type"] == "overloaded_error"

    # A body past MAX_BODY_BYTES is refused as early, whatever else is in flight.
    too_large = answer(begin(relay, "/v1/chat/completions", 5 * MB))
    assert too_large[0] == 413 and "larger than" in too_large[2]["error"]["message"]

    # The held requests are served once their bodies arrive; then their bytes are free again.
    served = []
    for connection in held:
        connection.send(body_of(3 * MB, "/v1/chat/completions"))
        status, headers, _ = answer(connection)
        assert status == 200
        served.append(headers["x-request-id"])
    after = httpx.post(relay.url + "/api/chat", content=body_of(3 * MB, "/api/chat"), timeout=30)
    assert after.status_code == 200, after.text

    # Every inference request has its row: the refused ones with their tag and why.
    ids = {path: reply[1]["x-request-id"] for path, reply in refused.items()}
    rows = {row["request_id"]: row for row in relay.rows()}
    for path, request_id in ids.items():
        row = rows[request_id]
        assert (row["outcome"], row["status"], row["endpoint"]) == ("overloaded", 503, path)
        assert row["tags"] == [TAG] and "MAX_INFLIGHT_BODY_BYTES" in row["error"]
    row = rows[too_large[1]["x-request-id"]]
    assert (row["outcome"], row["status"]) == ("client_error", 413)
    assert all(rows[request_id]["outcome"] == "ok" for request_id in served)
    holding(relay, 0)


def test_a_chunked_body_is_refused_once_it_passes_the_bound(relay: RelayProcess) -> None:
    held = [begin(relay, "/v1/chat/completions", 3 * MB) for _ in range(2)]
    holding(relay, 6 * MB)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the relay learns its size as it reads
        data = body_of(3 * MB, "/v1/chat/completions")
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    reply = httpx.post(relay.url + "/v1/chat/completions", content=chunks(), timeout=30)
    assert reply.status_code == 503 and "MAX_INFLIGHT_BODY_BYTES" in reply.json()["error"]["message"]
    for connection in held:
        connection.close()
    holding(relay, 0)  # the held requests' bytes are counted out when their clients leave
    assert httpx.post(relay.url + "/v1/chat/completions", content=chunks(), timeout=30).status_code == 200


def test_the_bound_must_fit_one_body() -> None:
    import subprocess
    import sys

    env = RelayProcess({"MAX_BODY_BYTES": str(4 * MB), "MAX_INFLIGHT_BODY_BYTES": str(3 * MB)}).env
    result = subprocess.run([sys.executable, "-m", "app", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "MAX_INFLIGHT_BODY_BYTES" in result.stderr
