"""The quirk rule set: shipped rules, database overrides applied live, vision and reasoning
checks, and parameters dropped only where a rule says so, never silently."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import httpx
import pytest

from app.quirks import QuirkBook, QuirkError, fold_system, load_file_rules, rule_from_dict
from app.stores.live import LiveConfig
from app.stores.models import QuirkOverride

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def chat(relay, model: str, **fields) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return httpx.post(relay.url + "/v1/chat/completions", json=body)


def test_shipped_rules_load_and_name_what_they_do() -> None:
    rules = load_file_rules()
    assert [r.name for r in rules][:2] == [
        "usage in OpenAI-compatible streams",
        "Mistral names the seed random_seed and refuses stream_options",
    ]
    book = QuirkBook(rules)
    names = [r.name for r in book.rules_for("openai", "openai_compat", "gpt-5.1")]
    assert "OpenAI reasoning models take max_completion_tokens and no sampling parameters" in names
    assert len(book.rules_for("openai", "openai_compat", "gpt-5-chat-latest")) == 1  # chat variant keeps sampling
    custom = (
        "custom OpenAI-compatible servers (llama.cpp, vLLM, LM Studio...) know max_tokens, not max_completion_tokens"
    )
    assert custom in [r.name for r in book.rules_for("lmstudio", "openai_compat", "qwen", "custom")]
    assert custom not in [r.name for r in book.rules_for("groq", "openai_compat", "qwen", "builtin")]


def test_a_models_rules_are_matched_once_and_a_new_book_sees_new_overrides() -> None:
    rules = load_file_rules()
    book = QuirkBook(rules)
    first = book.rules_for("openai", "openai_compat", "gpt-5.1")
    assert book.rules_for("openai", "openai_compat", "gpt-5.1") is first  # from the book's cache
    assert first == tuple(r for r in rules if r.matches("openai", "openai_compat", "gpt-5.1"))
    extra = rule_from_dict({"name": "mine", "match": {"model": "^gpt-5"}, "drop": ["seed"]})
    updated = book.with_overrides([extra])
    assert updated.rules_for("openai", "openai_compat", "gpt-5.1") == (*first, extra)
    assert book.rules_for("openai", "openai_compat", "gpt-5.1") == first  # the old book is untouched


def test_reasoning_model_parameters_are_renamed_and_dropped_visibly(relay, upstream) -> None:
    reply = chat(relay, "openai/o3-mini", max_tokens=50, temperature=0.2, top_p=0.9, seed=4)
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent
    assert "temperature" not in sent and "top_p" not in sent and sent["seed"] == 4
    assert reply.headers["x-relay-dropped-params"] == "temperature,top_p"


def test_untouched_when_no_rule_matches(relay, upstream) -> None:
    reply = chat(relay, "openai/gpt-4o", max_tokens=50, temperature=0.2, mystery_param={"x": 1})
    sent = upstream.last("/openai/v1/chat/completions").body
    assert (sent["max_tokens"], sent["temperature"], sent["mystery_param"]) == (50, 0.2, {"x": 1})
    assert "x-relay-dropped-params" not in reply.headers


def test_system_prompt_is_folded_never_dropped(relay, upstream) -> None:
    body = {"model": "openai/o1-mini", "messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "hello"},
    ]}  # fmt: skip
    httpx.post(relay.url + "/v1/chat/completions", json=body)
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["messages"] == [{"role": "user", "content": "Answer in French.\n\nhello"}]


def test_fold_system_with_content_parts_and_without_a_user_turn() -> None:
    body = {"messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": [IMAGE]}]}
    fold_system(body)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "rules"}, IMAGE]}]
    lonely = {"messages": [{"role": "system", "content": "only this"}]}
    fold_system(lonely)
    assert lonely["messages"] == [{"role": "user", "content": "only this"}]


def test_images_to_a_model_without_vision_are_a_clear_400(relay) -> None:
    body = {"model": "openai/gpt-3.5-turbo", "messages": [{"role": "user", "content": [IMAGE]}]}
    reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "model openai/gpt-3.5-turbo does not accept images"
    ollama = httpx.post(relay.url + "/api/chat", json={"model": "openai/gpt-3.5-turbo", "stream": False,
                        "messages": [{"role": "user", "content": "x", "images": ["iVBORw0KGgo="]}]})  # fmt: skip
    assert ollama.status_code == 400 and "does not accept images" in ollama.json()["error"]


def test_reasoning_effort_is_dropped_for_models_that_cannot_reason(relay, upstream) -> None:
    reply = chat(relay, "openai/gpt-4o", reasoning_effort="high")
    assert "reasoning_effort" not in upstream.last("/openai/v1/chat/completions").body
    assert reply.headers["x-relay-dropped-params"] == "reasoning_effort"
    chat(relay, "openai/o3-mini", reasoning_effort="high")
    assert upstream.last("/openai/v1/chat/completions").body["reasoning_effort"] == "high"


def test_database_overrides_apply_live_without_restart(make_relay, upstream) -> None:
    relay = make_relay(config_refresh_seconds=0.1)
    rule = {"name": "cap groq", "match": {"provider": "groq"}, "defaults": {"max_tokens": 77}, "drop": ["user"]}

    async def add() -> int:
        with relay.app.services.database.context:
            return (await QuirkOverride.create(rule=rule)).id

    override_id = relay.server.call(add)
    deadline = time.monotonic() + 5
    while not relay.app.services.quirks.overrides and time.monotonic() < deadline:
        time.sleep(0.05)
    reply = chat(relay, "groq/chat_nonstream_basic", user="alice")
    sent = upstream.last("/groq/").body
    assert sent["max_tokens"] == 77 and "user" not in sent
    assert reply.headers["x-relay-dropped-params"] == "user"

    async def disable() -> None:
        with relay.app.services.database.context:
            await QuirkOverride.filter(id=override_id).update(enabled=False)

    relay.server.call(disable)
    relay.server.call(relay.app.live.reload)
    chat(relay, "groq/chat_nonstream_basic", user="alice")
    assert "max_tokens" not in upstream.last("/groq/").body


def test_a_broken_override_is_skipped_not_fatal(make_relay) -> None:
    relay = make_relay()

    async def add_bad() -> int:
        with relay.app.services.database.context:
            return (await QuirkOverride.create(rule={"name": "bad", "match": {"model": "("}})).id

    bad_id = relay.server.call(add_bad)
    relay.server.call(relay.app.live.reload)
    assert all(r.name != "bad" for r in relay.app.services.quirks.overrides)

    async def cleanup() -> None:
        with relay.app.services.database.context:
            await QuirkOverride.filter(id=bad_id).delete()

    relay.server.call(cleanup)


@pytest.mark.parametrize(
    "raw",
    [{"name": "x", "match": {"model": "("}}, {"name": "x", "explode": True}, {"name": "x", "system": "drop"}],
)
def test_invalid_rules_are_refused(raw) -> None:
    with pytest.raises(QuirkError):
        rule_from_dict(raw)


def test_configuration_reloads_apply_one_at_a_time() -> None:
    """A periodic reload that read the configuration before an admin's change must not finish
    after the reload that change asked for, putting the old configuration back."""
    services = SimpleNamespace(resolver=SimpleNamespace(aliases={}), runtime=None, routes={})
    live = LiveConfig(services, discovery=None, interval=1.0)  # type: ignore[arg-type]
    steps: list[str] = []

    async def slow_reload(name: str) -> None:
        steps.append(f"{name} reads")
        await asyncio.sleep(0.05 if name == "periodic" else 0)
        steps.append(f"{name} applies")

    async def scenario() -> None:
        names = iter(["periodic", "after the change"])
        live._reload = lambda: slow_reload(next(names))  # type: ignore[method-assign]
        periodic = asyncio.create_task(live.reload())
        await asyncio.sleep(0)
        await live.reload()
        await periodic

    asyncio.run(scenario())
    assert steps == ["periodic reads", "periodic applies", "after the change reads", "after the change applies"]
