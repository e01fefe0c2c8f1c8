"""A request's usage row is on file before its reply leaves."""

from __future__ import annotations

import httpx


def test_an_answered_request_has_its_row_in_the_journal(make_relay) -> None:
    """The writer holds its rows (a long flush interval), so the row can only be in the journal
    file, there before the reply left (read through the file, not the writer's mapping of it)."""
    relay = make_relay(usage_flush_seconds=60.0, usage_batch_size=10_000)
    for model, stream in (("chat_nonstream_basic", False), ("chat_stream_text_short", True)):
        body = {"model": f"openai/{model}", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
        assert reply.status_code == 200
        journal = relay.app.services.usage.journal_path
        assert journal is not None and reply.headers["x-request-id"].encode() in journal.read_bytes()
