"""schemathesis drives the inbound API from its own OpenAPI document (GET /openapi.json):
whatever it sends, the relay answers without a server error, in the caller's dialect."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis

from app.main import create_app
from tests.conftest import Relay, relay_settings
from tests.live import LiveServer


@pytest.fixture(scope="module")
def fuzzed_relay(db_url, emulator) -> Iterator[Relay]:
    # A default model so that requests naming nothing known still reach the (emulated) upstream.
    app = create_app(relay_settings(db_url, emulator[1], default_model="openai/chat_nonstream_basic"), migrate=False)
    server = LiveServer(app).start()
    yield Relay(app, server)
    server.stop()


def check(case, response) -> None:
    assert response.status_code < 500, (case.method, case.path, case.body, response.status_code, response.text[:300])
    content_type = response.headers.get("content-type") or [""]
    if response.status_code >= 400 and content_type[0].startswith("application/json"):
        body = response.json()
        if case.path.startswith("/api/"):
            assert isinstance(body.get("error"), str), body
        elif case.path.startswith("/v1/messages"):
            assert body.get("type") == "error" and body["error"].get("type") and body["error"].get("message"), body
        elif case.path.startswith("/v1/"):
            assert isinstance(body.get("error"), dict) and body["error"].get("message"), body


def test_no_server_errors(fuzzed_relay: Relay) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_relay.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        strategy = hypothesis.strategies.one_of(
            operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
            operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),  # wrong types, missing fields
        )

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=20, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
        def fuzz(case) -> None:
            check(case, case.call())

        fuzz()


def test_the_document_is_served(fuzzed_relay: Relay) -> None:
    import httpx

    document = httpx.get(fuzzed_relay.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.") and "/v1/chat/completions" in document["paths"]
