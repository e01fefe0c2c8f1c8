"""The example stage package (examples/relay-prompt-log), installed with pip by tox: its stages
load by entry-point name and run in the configured position, streaming and not, in both
inbound dialects."""

from __future__ import annotations

import json
import uuid
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest

MESSAGES = [{"role": "user", "content": "Say hi"}]
AFTER_COST = '["tags", "resolve", "model_block", "quirks", "dispatch", "meter", "cost", "prompt_log"]'
BEFORE_DISPATCH = '["tags", "resolve", "prompt_log", "quirks", "dispatch", "meter", "cost"]'


def test_the_package_is_installed_with_its_entry_points() -> None:
    try:
        dist = distribution("llm-relay-prompt-log")
    except PackageNotFoundError:
        pytest.fail("pip install ./examples/relay-prompt-log (tox does it) before running the tests", pytrace=False)
    names = {ep.name for ep in dist.entry_points if ep.group == "llm_relay.stages"}
    assert names == {"prompt_log", "model_block"}
    assert "examples" not in str(dist.locate_file("relay_prompt_log"))  # a real install, not the source tree


def relay_with(make_relay, tmp_path: Path, stages: str, tag: str, extra: str = "") -> tuple[Any, Path]:
    log = tmp_path / f"{uuid.uuid4().hex[:6]}" / "prompts.jsonl"
    config = tmp_path / f"pipeline-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(f'stages = {stages}\n[options.prompt_log]\npath = "{log}"\ntags = ["{tag}"]\n{extra}')
    return make_relay(pipeline_file=str(config)), log


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def priced(upstream):
    """Real model ids (which the catalog prices) answered by recordings."""
    upstream.fallback["openai"] = "chat_nonstream_basic"
    upstream.fallback["anthropic"] = "messages_stream_text_simple"
    yield
    upstream.fallback.pop("openai", None)
    upstream.fallback.pop("anthropic", None)


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_log_after_cost_sees_the_charge(make_relay, tmp_path, sdk, priced, stream: bool) -> None:
    tag = f"ex-{uuid.uuid4().hex[:8]}"
    extra = '[options.model_block]\nrules = { nobody = ["*"] }\n'
    relay, log = relay_with(make_relay, tmp_path, AFTER_COST, tag, extra)
    assert relay.app.pipeline.names[-1] == "prompt_log"
    model = "anthropic/claude-haiku-4-5" if stream else "openai/gpt-4o"
    oa = sdk.openai(relay.url)
    if stream:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in oa.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, extra_headers={"X-Proxy-Tag": tag}
            )
            if c.choices
        )
    else:
        text = oa.chat.completions.create(model=model, messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag})
        text = text.choices[0].message.content
    ollama_reply = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag}).chat(
        model=model, messages=MESSAGES, stream=stream
    )
    ollama_text = "".join(p.message.content or "" for p in ollama_reply) if stream else ollama_reply.message.content
    # A request of another tag is not logged.
    oa.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)

    logged = records(log)
    assert [r["dialect"] for r in logged] == ["openai", "ollama"]
    rows = {r["request_id"]: r for r in relay.rows(tag=tag)}
    for record, reply_text in zip(logged, (text, ollama_text), strict=True):
        row = rows[record["request_id"]]
        assert record["cost_nanousd"] == row["cost_nanousd"] and row["cost_nanousd"] > 0
        assert (record["input_tokens"], record["output_tokens"]) == (row["input_tokens"], row["output_tokens"])
        assert record["reply"] == reply_text and reply_text
        assert record["prompt"] == MESSAGES and record["stream"] is stream and record["tags"] == [tag]
        assert record["model"] == row["resolved_model"]


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_log_before_dispatch_runs_before_metering(make_relay, tmp_path, sdk, priced, stream: bool) -> None:
    tag = f"ex-{uuid.uuid4().hex[:8]}"
    relay, log = relay_with(make_relay, tmp_path, BEFORE_DISPATCH, tag)
    model = "anthropic/claude-haiku-4-5" if stream else "openai/gpt-4o"
    reply = sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag}).chat(model=model, messages=MESSAGES, stream=stream)
    text = "".join(p.message.content or "" for p in reply) if stream else reply.message.content
    (record,) = records(log)
    assert record["reply"] == text and text
    assert record["cost_nanousd"] is None  # the cost stage, outside it, had not priced it yet
    assert relay.row(record["request_id"])["cost_nanousd"] > 0


def test_model_block_refuses_in_each_dialect(make_relay, tmp_path, sdk, priced) -> None:
    tag = f"ex-{uuid.uuid4().hex[:8]}"
    extra = f'[options.model_block]\nrules = {{ "{tag}" = ["openai/gpt-4*"] }}\n'
    relay, _log = relay_with(make_relay, tmp_path, AFTER_COST, "nobody", extra)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.openai(relay.url).chat.completions.create(
            model="openai/gpt-4o", messages=MESSAGES, extra_headers={"X-Proxy-Tag": tag}
        )
    assert "model openai/gpt-4o is not allowed for tag" in refused.value.message
    with pytest.raises(ollama.ResponseError) as ollama_refused:
        list(
            sdk.ollama(relay.url, headers={"X-Proxy-Tag": tag}).chat(
                model="openai/gpt-4o", messages=MESSAGES, stream=True
            )
        )
    assert ollama_refused.value.status_code == 403
    allowed = sdk.openai(relay.url).chat.completions.create(
        model="anthropic/claude-haiku-4-5", messages=MESSAGES, stream=True, extra_headers={"X-Proxy-Tag": tag}
    )
    assert "".join(c.choices[0].delta.content or "" for c in allowed if c.choices)
    assert sorted(r["status"] for r in relay.rows(tag=tag)) == [200, 403, 403]
