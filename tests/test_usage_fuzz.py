"""Whatever an upstream puts in its usage block, the caller gets an answer in its dialect (never
a 500) and the request gets exactly one usage row. The faulty upstream (tests/fault_upstream.py)
replays the recorded OpenAI reply and stream with the usage block hypothesis makes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fault_upstream import FaultyUpstream

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
COUNTS = {
    name: SCALARS | VALUES
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cost", "cached_tokens", "reasoning_tokens")
}
DETAILS = st.fixed_dictionaries({}, optional=COUNTS) | VALUES
USAGE = VALUES | st.fixed_dictionaries(
    {}, optional={**COUNTS, "prompt_tokens_details": DETAILS, "completion_tokens_details": DETAILS}
)


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyUpstream]:
    server = FaultyUpstream()
    yield server
    server.stop()


def test_any_usage_block_is_answered_and_recorded(make_relay, faulty) -> None:
    relay = make_relay(provider_base_urls={"openai": faulty.url})
    tag = f"fuzz-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []

    @given(usage=USAGE, stream=st.booleans())
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    def one(usage: Any, stream: bool) -> None:
        body = {
            "model": "openai/usage-echo",
            "stream": stream,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": json.dumps(usage)}],
        }
        reply = httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag}, timeout=10)
        assert reply.status_code in (200, 502), reply.text[:300]
        if stream and reply.status_code == 200:
            assert reply.text.rstrip().endswith("data: [DONE]")
        else:
            reply.json()  # a whole reply or an error object: JSON either way
        seen.append(reply.headers["x-request-id"])

    one()
    rows = relay.rows(tag=tag)
    assert sorted(row["request_id"] for row in rows) == sorted(seen)  # one row each, none lost, none twice
