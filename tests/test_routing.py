"""Routes (app/routing.py, the route stage): a model name served by several deployments. The
first deployment is a raw-socket server failing on request (tests/fault_upstream.py: 429, 500,
a reset, a hang), the next the emulator replaying recordings; every inbound dialect, streamed
and not, is served by the next one with exactly one row, which names both."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.machine_state import MachineState
from app.routing import Cooldown, Deployment, DeploymentHealth, Route, load_routes
from app.settings import SettingsError
from tests.conftest import NATIVE, OPENAI_COMPATIBLE
from tests.test_metrics import scrape

# Models the catalog prices, which the emulator answers with these recordings (see ``routed``).
JSON_MODEL = "groq/openai/gpt-oss-20b"
STREAM_MODEL = "deepseek/deepseek-reasoner"
REPLAYED = {"groq": "chat_nonstream_basic", "deepseek": "chat_stream_reasoner"}
FAULTS = ["status:429", "status:500", "reset", "stall"]
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def routed(make_relay: Any, faulty: Any, emulator: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A relay whose ``openai`` provider is the faulty server and whose PROVIDERS_FILE holds
    the given routes; every other provider is the emulator."""
    emulator[0].fallback.update(REPLAYED)

    def make(routes: list[dict[str, Any]], **changes: Any) -> Any:
        path = tmp_path / "providers.yaml"
        path.write_text(yaml.safe_dump({"routes": routes}))
        upstream = emulator[1]
        urls = {
            **{name: f"{upstream}/{name}/v1" for name in OPENAI_COMPATIBLE},
            **{name: f"{upstream}/{name}" for name in NATIVE},
            "openai": faulty.url,
        }
        options = {"upstream_timeouts": "openai=1/1", "provider_base_urls": urls, **changes}
        return make_relay(providers_file=str(path), **options)

    yield make
    for provider in REPLAYED:
        emulator[0].fallback.pop(provider, None)


def fallback_routes(fault: str) -> list[dict[str, Any]]:
    return [
        {"name": "smart", "deployments": [f"openai/{fault}", JSON_MODEL]},
        {"name": "smart-stream", "deployments": [f"openai/{fault}", STREAM_MODEL]},
    ]


def ask(relay: Any, dialect: str, stream: bool) -> httpx.Response:
    model = "smart-stream" if stream else "smart"
    path, body = {
        "openai": ("/v1/chat/completions", {"model": model, "messages": MESSAGES}),
        "ollama": ("/api/chat", {"model": model, "messages": MESSAGES}),
        "anthropic": ("/v1/messages", {"model": model, "messages": MESSAGES, "max_tokens": 50}),
        "responses": ("/v1/responses", {"model": model, "input": "hi"}),
    }[dialect]
    return httpx.post(relay.url + path, json={**body, "stream": stream}, timeout=30)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("dialect", ["openai", "ollama", "anthropic", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_failing_first_deployment_is_served_by_the_next(routed: Any, fault: str, dialect: str, stream: bool) -> None:
    relay = routed(fallback_routes(fault))
    reply = ask(relay, dialect, stream)
    assert reply.status_code == 200, reply.text
    served = STREAM_MODEL if stream else JSON_MODEL
    assert reply.headers["x-relay-model"] == served and reply.headers["x-relay-route"] == "route"
    assert reply.headers["x-relay-attempts"] == "2"
    text = reply.text
    assert "error" not in text.lower().replace("error_", "") or dialect == "responses", text[:500]
    row = relay.row(reply.headers["x-request-id"])  # exactly one
    assert (row["outcome"], row["resolved_model"]) == ("ok", served)
    assert row["requested_model"] == ("smart-stream" if stream else "smart") and row["usage_reported"] is True
    assert row["cost_nanousd"] is not None and row["cost_nanousd"] > 0  # billed once, for what groq served
    attempts = json.loads(row["attempts"])
    assert [a["deployment"] for a in attempts] == [f"openai/{fault}"]
    expected_status = {"status:429": 429, "status:500": 500, "reset": 502, "stall": 504}[fault]
    assert attempts[0]["status"] == expected_status


def test_every_deployment_down_fails_with_the_last_status_naming_what_was_tried(routed: Any) -> None:
    relay = routed([{"name": "doomed", "deployments": ["openai/status:429", "openai/status:503"]}])
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "doomed", "messages": MESSAGES})
    assert reply.status_code == 503, reply.text
    message = reply.json()["error"]["message"]
    assert "openai/status:429 (429)" in message and "openai/status:503 (503)" in message
    assert reply.headers["x-relay-attempts"] == "2"
    assert (reply.headers["x-relay-route"], reply.headers["x-relay-model"]) == ("route", "openai/status:503")
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["status"], row["cost_nanousd"], row["route"]) == ("upstream_error", 503, None, "route")
    assert [a["status"] for a in json.loads(row["attempts"])] == [429, 503]


def test_a_client_error_does_not_move_on(routed: Any, faulty: Any) -> None:
    relay = routed([{"name": "picky", "deployments": ["openai/status:400", JSON_MODEL]}])
    before = faulty.hits["status:400"]
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "picky", "messages": MESSAGES})
    assert reply.status_code == 400 and reply.headers["x-relay-attempts"] == "1"
    assert reply.headers["x-relay-route"] == "route"
    assert faulty.hits["status:400"] == before + 1
    assert relay.row(reply.headers["x-request-id"])["provider"] == "openai"


def test_fallback_on_is_configurable(routed: Any) -> None:
    relay = routed([{"name": "strict", "deployments": ["openai/status:429", JSON_MODEL], "fallback_on": ["5xx"]}])
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "strict", "messages": MESSAGES})
    assert reply.status_code == 429 and reply.headers["x-relay-attempts"] == "1"


def test_a_cooled_down_deployment_is_skipped_until_it_recovers(routed: Any, faulty: Any) -> None:
    route = {
        "name": "cool",
        "deployments": ["openai/status:502", JSON_MODEL],
        "cooldown": {"failures": 2, "window": 30, "seconds": 1},
    }
    relay = routed([route])
    before = faulty.hits["status:502"]

    def served() -> str:
        reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "cool", "messages": MESSAGES})
        assert reply.status_code == 200, reply.text
        return reply.headers["x-relay-attempts"]

    assert [served(), served()] == ["2", "2"]  # two failures within the window: cooled down
    assert [served(), served()] == ["1", "1"]  # the healthy deployment first, the failing one untouched
    assert faulty.hits["status:502"] == before + 2
    health = relay.app.services.health
    state = health.state_of(relay.app.services.routes.values())["openai/status:502"]
    assert 0 < state["cooling_seconds"] <= 1
    cooling = scrape(relay.url)["llm_relay_deployment_cooling_seconds"]
    assert 0 < float(cooling['{route="cool",deployment="openai/status:502"}']) <= 1
    assert cooling[f'{{route="cool",deployment="{JSON_MODEL}"}}'] == "0"
    deadline = time.monotonic() + 3
    while health.cooling(["openai/status:502"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served() == "2" and faulty.hits["status:502"] == before + 3  # recovered: tried in turn again


def test_least_in_flight_spreads_requests_over_two_ollama_instances(
    make_relay: Any, emulator: Any, tmp_path: Path
) -> None:
    upstream = emulator[1]
    path = tmp_path / "providers.yaml"
    route = {"name": "llama", "strategy": "least_in_flight", "deployments": ["lab/llama3.2", "lab2/llama3.2"]}
    path.write_text(yaml.safe_dump({"routes": [route]}))
    relay = make_relay(providers_file=str(path), ollama_instances=f"lab={upstream}/lab,lab2={upstream}/lab2")
    served = {"lab": 0, "lab2": 0}
    for _ in range(40):
        reply = httpx.post(relay.url + "/api/chat", json={"model": "llama", "messages": MESSAGES, "stream": False})
        assert reply.status_code == 200, reply.text
        served[reply.headers["x-relay-model"].split("/")[0]] += 1
    assert abs(served["lab"] - served["lab2"]) <= 4, served  # within 10% of 40


def test_health_orders_by_strategy_and_recovery(tmp_path: Path) -> None:
    now = [1000.0]
    health = DeploymentHealth(MachineState(str(tmp_path)), clock=lambda: now[0])
    a, b, c = Deployment("p/a"), Deployment("p/b"), Deployment("p/c")
    route = Route("r", (a, b, c), "ordered", cooldown=Cooldown(failures=1, window=10, seconds=5))
    health.failed(route, a)
    now[0] += 1.0
    health.failed(route, b)
    assert health.order(route)[0] == [c, a, b]  # healthy first, then the first to recover
    health.failed(route, c)
    assert health.order(route)[0] == [a, b, c]  # all cooling: the one that recovers first leads
    now[0] += 4.5
    ordered, cooling = health.order(route)
    assert ordered == [a, b, c] and "p/a" not in cooling and cooling["p/b"] == pytest.approx(0.5)
    other_worker = DeploymentHealth(MachineState(str(tmp_path)), clock=lambda: now[0])
    assert other_worker.order(route)[1] == cooling  # the workers of a machine share it
    d, e = Deployment("p/d"), Deployment("p/e")
    least = Route("l", (d, e), "least_in_flight")
    health.in_flight.update({"p/d": 3, "p/e": 1})
    assert [health.order(least)[0][0] for _ in range(3)] == [e, e, e]
    health.in_flight["p/d"] = 1
    firsts = [health.order(least)[0][0] for _ in range(4)]
    assert firsts in ([d, e, d, e], [e, d, e, d])  # ties take turns


def test_failures_outside_the_window_do_not_add_up(tmp_path: Path) -> None:
    now = [1000.0]
    health = DeploymentHealth(MachineState(str(tmp_path)), clock=lambda: now[0])
    a = Deployment("p/a")
    route = Route("r", (a,), cooldown=Cooldown(failures=2, window=10, seconds=5))
    health.failed(route, a)
    now[0] += 11
    health.failed(route, a)
    assert health.cooling(["p/a"]) == {}  # one failure in each window
    assert health.state_of([route])["p/a"]["recent_failures"] == 1  # the older one is out of the window
    now[0] += 1
    health.failed(route, a)
    assert health.cooling(["p/a"]) == {"p/a": 5.0}
    b = Deployment("p/b")
    health.failed(Route("s", (b,), cooldown=Cooldown(failures=3, window=10)), b)
    now[0] += 11
    assert health.state_of([Route("s", (b,), cooldown=Cooldown(window=10))])["p/b"]["recent_failures"] == 0


def test_weighted_draws_follow_the_weights(tmp_path: Path) -> None:
    health = DeploymentHealth(MachineState(str(tmp_path)), rng=random.Random(7))
    heavy, light = Deployment("p/heavy", weight=3), Deployment("p/light", weight=1)
    route = Route("w", (heavy, light), "weighted")
    firsts = [health.order(route)[0][0] for _ in range(2000)]
    assert 0.72 < firsts.count(heavy) / len(firsts) < 0.78
    assert all(sorted(health.order(route)[0], key=lambda d: d.model) == [heavy, light] for _ in range(10))


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"name": "r", "deployments": []}, "non-empty list"),
        ({"name": "r", "deployments": ["a/b"], "strategy": "random"}, "strategy must be one of"),
        ({"name": "r", "deployments": [{"model": "a/b", "weight": 0}]}, "weight"),
        ({"name": "r", "deployments": ["a/b"], "fallback_on": ["sometimes"]}, "fallback_on"),
        ({"name": "r", "deployments": ["a/b"], "cooldown": {"seconds": -1}}, "above 0"),
        ({"name": "r@x", "deployments": ["a/b"]}, "no '@'"),
        ({"name": "r", "deployments": ["a/b"], "retries": 3}, "unknown keys"),
    ],
)
def test_a_bad_route_is_a_clear_settings_error(tmp_path: Path, entry: dict[str, Any], needle: str) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"routes": [entry]}))
    with pytest.raises(SettingsError, match=needle):
        load_routes(str(path))


def test_a_route_declared_twice_is_a_clear_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        yaml.safe_dump({"routes": [{"name": "Chat", "deployments": ["a/b"]}, {"name": "chat", "deployments": ["c/d"]}]})
    )
    with pytest.raises(SettingsError, match="routes\\[1\\]: a route named 'chat' is already declared"):
        load_routes(str(path))


def test_the_pipeline_page_shows_each_deployments_health(make_admin: Any, faulty: Any, tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    route = {"name": "shown", "deployments": ["openai/status:503", JSON_MODEL], "cooldown": {"failures": 1}}
    path.write_text(yaml.safe_dump({"routes": [route]}))
    admin = make_admin(
        providers_file=str(path), provider_base_urls={"openai": faulty.url, "groq": "http://127.0.0.1:9"}
    )
    reply = httpx.post(admin.relay.url + "/v1/chat/completions", json={"model": "shown", "messages": MESSAGES})
    assert reply.status_code == 502  # both failed: the second is unreachable
    stage = next(s for s in admin.client.get("/api/pipeline").json()["stages"] if s["name"] == "route")
    shown = next(r for r in stage["status"]["routes"] if r["name"] == "shown")  # routes other tests left may show too
    states = {d["model"]: d for d in shown["deployments"]}
    assert 29 < states["openai/status:503"]["cooling_seconds"] <= 30 and states[JSON_MODEL]["cooling_seconds"] > 29
    page = admin.client.get("/pipeline").text
    assert 'id="route-shown"' in page and "cooling down" in page and "openai/status:503" in page


def test_ollama_group_serves_a_bare_name_from_every_instance_that_has_it(make_relay: Any, emulator: Any) -> None:
    upstream = emulator[1]
    instances = f"lab={upstream}/lab,lab2={upstream}/lab2"
    body = {"model": "llama3.2", "messages": MESSAGES, "stream": False}
    apart = make_relay(ollama_instances=instances)
    refused = httpx.post(apart.url + "/api/chat", json=body)
    assert refused.status_code == 400 and "served by several providers" in refused.json()["error"]
    relay = make_relay(ollama_instances=instances, ollama_group=True)
    served = {"lab": 0, "lab2": 0}
    for _ in range(40):
        reply = httpx.post(relay.url + "/api/chat", json=body)
        assert reply.status_code == 200, reply.text
        served[reply.headers["x-relay-model"].split("/")[0]] += 1
    assert abs(served["lab"] - served["lab2"]) <= 4, served  # within 10% of 40
    emulator[0].down.add("lab2")
    try:
        replies = [httpx.post(relay.url + "/api/chat", json=body) for _ in range(4)]
    finally:
        emulator[0].down.discard("lab2")
    assert all(r.status_code == 200 and r.headers["x-relay-model"].startswith("lab/") for r in replies)
    assert "2" in {r.headers["x-relay-attempts"] for r in replies}  # lab2 was tried, failed, moved on


def test_ollama_groups_show_in_the_admin_ui_and_metrics(make_admin: Any, emulator: Any) -> None:
    upstream = emulator[1]
    admin = make_admin(ollama_instances=f"lab={upstream}/lab,lab2={upstream}/lab2", ollama_group=True)
    group = admin.relay.app.services.ollama_groups()["llama3.2:latest"]
    assert {d.model.split("/")[0] for d in group.deployments} == {"lab", "lab2"}
    emulator[0].down.add("lab2")
    try:  # one instance fails, so its state is more than a default; ties take turns, so two requests
        body = {"model": "llama3.2", "messages": MESSAGES}
        replies = [httpx.post(admin.relay.url + "/api/chat", json=body) for _ in range(2)]
    finally:
        emulator[0].down.discard("lab2")
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    failed = next(d.model for d in group.deployments if d.model.startswith("lab2/"))
    stage = next(s for s in admin.client.get("/api/pipeline").json()["stages"] if s["name"] == "route")
    (shown,) = [r for r in stage["status"]["routes"] if r["name"] == group.name]
    assert {d["model"]: d["recent_failures"] for d in shown["deployments"]}[failed] == 1
    metrics = scrape(admin.relay.url)["llm_relay_deployment_recent_failures"]
    assert metrics[f'{{route="{group.name}",deployment="{failed}"}}'] == "1"
    page = admin.client.get("/routes").text
    assert f'id="route-{group.name}"' in page and "OLLAMA_GROUP" in page and failed in page


def test_a_prompt_too_long_moves_to_the_routes_larger_context_deployment(routed: Any, faulty: Any) -> None:
    route = {"name": "long", "deployments": ["openai/context-length"], "context_fallback": JSON_MODEL}
    relay = routed([route, {"name": "short", "deployments": ["openai/context-length", JSON_MODEL]}])
    reply = httpx.post(relay.url + "/v1/chat/completions", json={"model": "long", "messages": MESSAGES})
    assert reply.status_code == 200, reply.text
    assert (reply.headers["x-relay-model"], reply.headers["x-relay-attempts"]) == (JSON_MODEL, "2")
    attempts = json.loads(relay.row(reply.headers["x-request-id"])["attempts"])
    assert attempts[0]["status"] == 400 and "maximum context length" in attempts[0]["error"]
    # Without a larger deployment named, it is the caller's error: the next deployment is no bigger.
    refused = httpx.post(relay.url + "/v1/chat/completions", json={"model": "short", "messages": MESSAGES})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    assert refused.headers["x-relay-attempts"] == "1"
    assert relay.app.services.health.cooling(["openai/context-length"]) == {}  # no fault of the deployment's


def test_nothing_is_retried_once_the_reply_has_begun(routed: Any, faulty: Any, emulator: Any) -> None:
    relay = routed([{"name": "begun", "deployments": ["openai/midstream-reset", STREAM_MODEL]}])
    asked = len(emulator[0].requests)
    body = {"model": "begun", "messages": MESSAGES, "stream": True}
    reply = httpx.post(relay.url + "/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200 and reply.headers["x-relay-attempts"] == "1"
    assert '"error"' in reply.text  # the stream ends with an error frame
    assert len(emulator[0].requests) == asked  # the next deployment was never asked
    row = relay.row(reply.headers["x-request-id"])
    assert (row["outcome"], row["resolved_model"], row["attempts"]) == (
        "upstream_error",
        "openai/midstream-reset",
        None,
    )
