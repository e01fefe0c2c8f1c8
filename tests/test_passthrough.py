"""Nothing the client sends is silently dropped: OpenAI fields reach OpenAI-compatible
providers as sent, Ollama fields reach Ollama servers, and each dialect's fields are
translated when the model lives on the other side."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from app.stores.queries import UsageFilter, usage_rows
from tests.cases import OTHER_COMPATIBLE
from tests.conftest import PNG as PNG_BYTES
from tests.recordings import FIXTURES, expected_body, expected_stream
from tests.servers import serving

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]


def test_openai_fields_pass_through_untouched(relay, upstream) -> None:
    body = {
        "model": "openai/chat_nonstream_basic",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            ]},
        ],
        "tools": TOOLS, "tool_choice": "auto", "response_format": {"type": "json_object"}, "n": 2,
        "stop": ["\n\n"], "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25,
        "reasoning_effort": "low", "user": "alice", "temperature": 0.2, "logprobs": True,
        "top_logprobs": 2, "metadata": {"k": "v"}, "some_new_field": {"nested": [1, 2]},
    }  # fmt: skip
    reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 200
    sent = upstream.last("/openai/v1/chat/completions")
    assert sent.body == {**body, "model": "chat_nonstream_basic", "stream": False}
    assert sent.headers["authorization"] == "Bearer test-key-openai"


def test_streaming_asks_upstream_for_usage_but_honours_the_client(relay, upstream) -> None:
    body = {"model": "groq/chat_stream_reasoning_x_groq_usage", "messages": [{"role": "user", "content": "x"}]}
    text = httpx.post(relay.url + "/v1/chat/completions", json={**body, "stream": True}).text
    assert upstream.last("/groq/").body["stream_options"] == {"include_usage": True}
    chunks = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    assert chunks and not any("usage" in chunk for chunk in chunks)  # x_groq stays Groq's own
    assert text.endswith("data: [DONE]\n\n")


def test_mistral_quirks(relay, upstream) -> None:
    body = {"model": "mistral/chat_nonstream_tool_call", "messages": [{"role": "user", "content": "x"}], "seed": 3}
    assert httpx.post(relay.url + "/v1/chat/completions", json=body).status_code == 200
    sent = upstream.last("/mistral/").body
    assert sent["random_seed"] == 3 and "seed" not in sent and "stream_options" not in sent


def test_ollama_fields_reach_ollama_servers(relay, upstream) -> None:
    body = {
        "model": "lab/llama3.2",
        "messages": [{"role": "user", "content": "what is this?", "images": [PNG]}],
        "options": {"num_ctx": 8192, "temperature": 0.1, "top_k": 20, "repeat_penalty": 1.1},
        "keep_alive": "10m", "think": True, "format": "json", "tools": TOOLS, "stream": True,
    }  # fmt: skip
    assert httpx.post(relay.url + "/api/chat", json=body).status_code == 200
    sent = upstream.last("/lab/api/chat").body
    assert sent["model"] == "llama3.2:latest" and sent["stream"] is True
    assert sent["options"] == {"num_ctx": 8192, "temperature": 0.1, "top_k": 20, "repeat_penalty": 1.1}
    assert (sent["keep_alive"], sent["think"], sent["format"], sent["tools"]) == ("10m", True, "json", TOOLS)
    assert sent["messages"] == [{"role": "user", "content": "what is this?", "images": [PNG]}]


def test_generate_fields_reach_ollama_servers(relay, upstream) -> None:
    body = {"model": "lab/codellama:13b", "prompt": "def add(", "suffix": "    return a + b", "raw": True,
            "options": {"num_predict": 32}, "keep_alive": 1800, "stream": False}  # fmt: skip
    assert httpx.post(relay.url + "/api/generate", json=body).status_code == 200
    sent = upstream.last("/lab/api/generate").body
    assert (sent["prompt"], sent["suffix"], sent["raw"], sent["keep_alive"]) == (
        "def add(",
        "    return a + b",
        True,
        1800,
    )
    assert sent["options"]["num_predict"] == 32


def test_ollama_request_to_openai_compatible_model_is_translated(relay, upstream) -> None:
    body = {
        "model": "openai/chat_nonstream_basic", "stream": False,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what?", "images": [PNG]}],
        "options": {"temperature": 0.3, "top_p": 0.9, "seed": 1, "num_predict": 64, "stop": ["END"]},
        "format": {"type": "object", "properties": {"a": {"type": "string"}}}, "think": "high", "tools": TOOLS,
    }  # fmt: skip
    assert httpx.post(relay.url + "/api/chat", json=body).status_code == 200
    sent = upstream.last("/openai/v1/chat/completions").body
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]},
    ]  # fmt: skip
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["stop"]) == (0.3, 0.9, 1, ["END"])
    assert sent["max_tokens"] == 64 and sent["reasoning_effort"] == "high" and sent["tools"] == TOOLS
    assert sent["response_format"]["json_schema"]["schema"] == body["format"]


def test_openai_request_to_ollama_model_is_translated(relay, upstream) -> None:
    body = {
        "model": "lab/llama3.2", "max_tokens": 50, "temperature": 0.4, "stop": "END",
        "response_format": {"type": "json_object"}, "tools": TOOLS,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "cold"},
        ],
    }  # fmt: skip
    assert httpx.post(relay.url + "/v1/chat/completions", json={**body, "stream": True}).status_code == 200
    sent = upstream.last("/lab/api/chat").body
    assert sent["options"] == {"temperature": 0.4, "num_predict": 50, "stop": ["END"]}
    assert sent["format"] == "json" and sent["tools"] == TOOLS and sent["stream"] is True
    assert sent["messages"] == [
        {"role": "user", "content": "look", "images": [PNG]},
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}, "id": "c1"}]},
        {"role": "tool", "content": "cold", "tool_call_id": "c1", "tool_name": "get_weather"},
    ]  # fmt: skip


def test_remote_image_urls_are_fetched_for_ollama(relay, upstream, image_server, make_relay) -> None:
    image = {"type": "image_url", "image_url": {"url": f"{image_server}/cat.png"}}
    body = {"model": "lab/llama3.2", "stream": False, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"}, image]}]}  # fmt: skip
    assert httpx.post(relay.url + "/v1/chat/completions", json=body).status_code == 200
    sent = upstream.last("/lab/api/chat").body["messages"][0]
    assert sent == {"role": "user", "content": "what?", "images": [base64.b64encode(PNG_BYTES).decode()]}
    small = make_relay(image_fetch_max_bytes=10)
    reply = httpx.post(small.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 400 and "larger than 10 bytes" in reply.json()["error"]["message"]


def test_openai_completions_reach_ollama_generate(relay, upstream, sdk) -> None:
    completion = sdk.openai(relay.url).completions.create(model="lab/llama3.2", prompt="Why is the sky blue?")
    assert completion.choices[0].text == "The sky is blue because it is the color of the sky."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 290)
    assert upstream.last("/lab/api/generate").body["prompt"] == "Why is the sky blue?"


def test_other_openai_compatible_recordings_through_ollama_dialect(make_relay, emulator, sdk) -> None:
    for case in OTHER_COMPATIBLE:
        relay = make_relay(provider_base_urls={"openai": f"{emulator[1]}/{case.provider}/v1"})
        client = sdk.ollama(relay.url)
        model = f"openai/{case.name}"
        if case.stream:
            parts = list(client.chat(model=model, messages=[{"role": "user", "content": "x"}], stream=True))
            text, final = "".join(p.message.content for p in parts), parts[-1]
            want = expected_stream(case.provider, case.name)
        else:
            final = client.chat(model=model, messages=[{"role": "user", "content": "x"}], stream=False)
            text, want = final.message.content, expected_body(case.provider, case.name)
        answer, _, sources = text.partition("\n\nSources:\n")  # cited sources are appended for Ollama clients
        assert answer == want.text, case.id
        recording = next((FIXTURES / case.provider).glob(f"{case.name}.*")).read_text()
        assert bool(sources) == ('"citations"' in recording), case.id
        assert (final.prompt_eval_count, final.eval_count) == (case.input, case.output), case.id


def test_errors_carry_a_request_id_too(relay) -> None:
    reply = httpx.post(relay.url + "/v1/chat/completions", content=b"{oops")
    assert reply.status_code == 400 and len(reply.headers["x-request-id"]) == 32


def test_usage_rows_are_flushed_on_shutdown(make_relay) -> None:
    relay = make_relay(usage_flush_seconds=60, usage_batch_size=1000)  # nothing is written before shutdown
    tag = f"t-{uuid.uuid4().hex[:10]}"
    body = {"model": "openai/chat_nonstream_basic", "messages": [{"role": "user", "content": "x"}]}
    for _ in range(5):
        httpx.post(relay.url + "/v1/chat/completions", headers={"X-Proxy-Tag": tag}, json=body)
    relay.server.stop()

    async def read() -> list[dict]:
        await relay.app.services.database.open(migrate_first=False)
        try:
            with relay.app.services.database.context:
                return [row async for row in usage_rows(UsageFilter(tag=tag))]
        finally:
            await relay.app.services.database.close()

    assert len(asyncio.run(read())) == 5


def test_image_urls_on_the_relays_own_network_are_refused_by_default(make_relay, upstream, image_server) -> None:
    """A caller must not make the relay fetch from loopback or the private network (a cloud
    metadata address, an internal service) and hand the bytes to a model."""
    relay = make_relay(image_fetch_private=False)
    before = len(upstream.requests)
    image = {"type": "image_url", "image_url": {"url": f"{image_server}/cat.png"}}
    body = {"model": "lab/llama3.2", "stream": False, "messages": [{"role": "user", "content": [image]}]}
    reply = httpx.post(relay.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 400 and "non-public address (127.0.0.1)" in reply.json()["error"]["message"]
    assert len(upstream.requests) == before  # nothing reached the model


def loopback_only(ip: Any) -> bool:
    """The image tests' idea of the public internet: 127.0.0.1, where their servers run."""
    return str(ip) == "127.0.0.1"


def fetch_image(url: str, answer: Any = None, timeout: float = 10.0) -> tuple[str, str]:
    """image_base64 through the relay's upstream client, with a loopback server answering
    ``answer`` (its URL replaces ``{server}`` in ``url``); only 127.0.0.1 counts as public."""
    from app.adapters.client import UpstreamClient
    from app.adapters.images import ImageLimits, image_base64

    async def fetch() -> tuple[str, str]:
        http = UpstreamClient(public=loopback_only)
        try:
            if answer is None:
                return await image_base64(http, url, ImageLimits(timeout=timeout))
            async with serving(answer) as server:
                return await image_base64(http, url.format(server=server), ImageLimits(timeout=timeout))
        finally:
            await http.aclose()

    return asyncio.run(fetch())


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:127.0.0.1]/x.png", "::ffff:7f00:1"),
        ("http://10.1.2.3/x.png", "10.1.2.3"),
        ("{server}/hop", "127.0.0.2"),  # allowed, but it redirects to another address
    ],
)
def test_every_hop_of_an_image_fetch_is_checked(url: str, refused: str) -> None:
    from app.errors import BadRequest

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/hop":
            return httpx.Response(302, headers={"location": "http://127.0.0.2:9/secret"})
        return httpx.Response(200, content=PNG_BYTES, headers={"content-type": "image/png"})

    with pytest.raises(BadRequest) as caught:
        fetch_image(url, answer)
    assert f"non-public address ({refused})" in caught.value.message


def test_redirects_between_public_addresses_are_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old.png":
            return httpx.Response(301, headers={"location": "/moved.png"})
        return httpx.Response(200, content=PNG_BYTES, headers={"content-type": "image/png"})

    assert fetch_image("{server}/old.png", answer) == ("image/png", base64.b64encode(PNG_BYTES).decode())


def test_an_image_is_fetched_from_the_address_that_was_checked() -> None:
    """DNS rebinding: the name is looked up once, by the resolver that checks the answer, and
    the connection goes to an address from that answer. A name that resolves to a public and a
    private address at once is refused, and nothing is connected to."""
    import socket

    from app.errors import BadRequest

    lookups: list[str] = []
    asked: list[str] = []

    class RebindingLoop(asyncio.SelectorEventLoop):
        async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in ("rebind.test", "public.test"):
                return await super().getaddrinfo(host, port, *args, **kwargs)
            lookups.append(host)
            addresses = ["127.0.0.1"] if host == "public.test" else ["127.0.0.1", "127.0.0.2"]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in addresses]

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, content=PNG_BYTES, headers={"content-type": "image/png"})

    async def fetch(name: str) -> tuple[str, str]:
        from app.adapters.client import UpstreamClient
        from app.adapters.images import ImageLimits, image_base64

        http = UpstreamClient(public=loopback_only)
        try:
            async with serving(answer) as server:
                url = server.replace("127.0.0.1", name) + f"/{name}.png"
                return await image_base64(http, url, ImageLimits(timeout=2.0))
        finally:
            await http.aclose()

    with asyncio.Runner(loop_factory=RebindingLoop) as runner:
        assert runner.run(fetch("public.test"))[0] == "image/png"
        with pytest.raises(BadRequest) as caught:
            runner.run(fetch("rebind.test"))
    assert "non-public address (127.0.0.2)" in caught.value.message
    assert lookups == ["public.test", "rebind.test"] and asked == ["/public.test.png"]


def test_image_fetch_timeout_is_a_deadline_for_the_whole_download() -> None:
    """A server dripping the image a byte at a time never stays silent long enough for a read
    timeout; IMAGE_FETCH_TIMEOUT still ends the download."""
    import time

    from app.errors import BadRequest

    async def drip(request: httpx.Request) -> httpx.Response:
        async def body() -> Any:
            for byte in PNG_BYTES:
                await asyncio.sleep(0.2)
                yield bytes([byte])

        return httpx.Response(200, content=body(), headers={"content-type": "image/png"})

    started = time.monotonic()
    with pytest.raises(BadRequest) as caught:
        fetch_image("{server}/slow.png", drip, timeout=1.0)
    assert "not done within 1 s" in caught.value.message
    assert time.monotonic() - started < 3
