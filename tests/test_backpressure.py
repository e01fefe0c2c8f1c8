"""A slow reader does not make the relay buffer the stream: while the client stops reading,
the relay stops reading the upstream (which then blocks on its own writes), so memory stays
bounded; when the client reads again the whole stream arrives and is metered. Both dialects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fault_upstream import FaultyUpstream

SIZE_MB = 160  # far more than every socket buffer on the path together (a few MB each)


@pytest.fixture(scope="module")
def firehose() -> Iterator[FaultyUpstream]:
    server = FaultyUpstream()
    yield server
    server.stop()


def settled(firehose: FaultyUpstream, model: str, quiet: float = 0.5, limit: float = 15.0) -> int:
    """What the upstream has sent once its count stops moving (the path's buffers are full)."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = firehose.sent[model]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.05)
    return firehose.sent[model]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"stream": True, "stream_options": {"include_usage": True}}),
        ("/api/chat", {"stream": True}),
    ],
)
def test_a_paused_reader_pauses_the_upstream(make_relay, firehose, path: str, body: dict) -> None:
    relay = make_relay(provider_base_urls={"openai": firehose.url}, upstream_timeouts="openai=60/120")
    tag = f"bp-{uuid.uuid4().hex[:8]}"
    model = f"firehose:{SIZE_MB}-{tag}"  # its own counter
    request = {"model": f"openai/{model}", "messages": [{"role": "user", "content": "go"}], **body}
    total = SIZE_MB * 1024 * 1024
    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", relay.url + path, json=request, headers={"X-Proxy-Tag": tag}) as reply,
    ):
        assert reply.status_code == 200
        chunks = reply.iter_raw(65536)
        received = len(next(chunks))
        paused = settled(firehose, model)  # the client reads nothing now
        # Everything that left the upstream sits in socket buffers and the relay's small
        # read and write buffers; without backpressure all of it would have gone.
        assert paused < total // 4, f"the upstream sent {paused >> 20} MB to a client that reads nothing"
        for chunk in chunks:
            received += len(chunk)
    assert firehose.sent[model] >= total
    assert received >= firehose.events[model] * 8192  # every chunk's content reached the client
    row = relay.rows(tag=tag)[0]
    assert (row["status"], row["outcome"]) == (200, "ok")
    assert row["output_tokens"] == firehose.events[model]  # the upstream's usage report arrived
