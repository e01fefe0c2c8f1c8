"""An emulated upstream that replays recorded provider traffic byte for byte.

Routes (``{p}`` is a provider directory under ``tests/fixtures``):
- ``POST /{p}/.../chat/completions``, ``/completions``, ``/embeddings``, ``/v1/messages``,
  ``/v1/responses``: the request's ``model`` names the recording, e.g.
  ``chat_stream_text_short``; ``/gemini/v1beta/models/{recording}:{method}`` for Gemini. A ``slow:`` prefix paces
  the replay one SSE event per ``SLOW_GAP`` seconds (to test disconnects mid-stream).
- A model ``<a>~<b>`` calls a tool, then answers: recording ``a``, or ``b`` once the request
  carries a tool's result (a ``tool`` message, a ``function_call_output`` item).
- ``GET /{p}/.../models``: the recordings of ``p`` as an OpenAI model list.
- ``POST /{p}/v1/messages/count_tokens``: ``{"input_tokens": 1000 + len(messages)}``.
- ``POST /{p}/.../responses/input_tokens``: ``{"object": "response.input_tokens", "input_tokens":
  2000 + the length of the request's ``input`` as JSON}``.
- ``/{instance}/api/...``: an Ollama server. ``/api/tags``, ``/api/show``, ``/api/ps``,
  ``/api/version``, ``/api/embed`` answer with the recorded documentation examples;
  ``/api/chat`` and ``/api/generate`` replay the recording the model names, else the
  recorded stream or reply that matches the ``stream`` flag. ``/api/pull`` streams the progress
  lines of Ollama's API documentation; ``/api/delete`` answers 200 for a model ``/api/tags``
  lists (which stays listed) and 404 for any other.

Every request is kept in ``requests``; a client that drops a paced stream is noted in
``disconnects`` with the time the emulator saw it go.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = {(e["provider"], Path(e["file"]).stem): e for e in json.loads((FIXTURES / "manifest.json").read_text())}
SLOW_GAP = 0.2
CHUNK = 61  # replay in small pieces so parsers see lines split anywhere


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Emulator:
    requests: list[Received] = field(default_factory=list)
    disconnects: list[float] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # Ollama instances that answer 503
    # provider -> recording replayed for a model that names none (so real model ids, which the
    # catalog prices, can be used in tests)
    fallback: dict[str, str] = field(default_factory=dict)

    def last(self, path_part: str = "") -> Received:
        return next(r for r in reversed(self.requests) if path_part in r.path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw) if raw else None
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(scope["method"], scope["path"], headers, body))
        parts = scope["path"].strip("/").split("/")
        if "api" in parts and parts[0] in self.down:
            await _json(send, 503, {"error": f"{parts[0]} is down"})
        elif "api" in parts:
            await self._ollama(parts[parts.index("api") + 1], body or {}, receive, send)
        elif scope["method"] == "GET" and parts[-1] == "models":
            # No provider's model list was recorded in OpenAI's shape; this follows the
            # ListModelsResponse schema of the OpenAI OpenAPI spec, listing the recordings.
            names = sorted({stem for provider, stem in MANIFEST if provider == parts[0]})
            data = [{"id": n, "object": "model", "created": 0, "owned_by": parts[0]} for n in names]
            await _json(send, 200, {"object": "list", "data": data})
        elif parts[-1] == "count_tokens":
            # No count_tokens reply was recorded; this is the shape of Anthropic's documented
            # example ({"input_tokens": N}), with N made from the request so tests see it passed.
            await _json(send, 200, {"input_tokens": 1000 + len((body or {}).get("messages") or ())})
        elif parts[-2:] == ["responses", "input_tokens"]:
            # No reply was recorded; this is the TokenCountsResource schema of OpenAI's OpenAPI
            # spec, with a count made from the request so tests see it passed.
            count = 2000 + len(json.dumps((body or {}).get("input")))
            await _json(send, 200, {"object": "response.input_tokens", "input_tokens": count})
        elif ":" in parts[-1]:  # Gemini: /gemini/v1beta/models/{model}:{method}
            model, _, method = parts[-1].partition(":")
            stream = method == "streamGenerateContent"
            await self._replay(parts[0], model, receive, send, stream if "Content" in method else None)
        else:
            # OpenAI's Responses recordings live beside its Chat Completions ones, in openai-responses.
            responses = parts[-1] == "responses" and (FIXTURES / f"{parts[0]}-responses").is_dir()
            await self._replay(
                f"{parts[0]}-responses" if responses else parts[0],
                _turn(body or {}),
                receive,
                send,
                (body or {}).get("stream", False),
            )

    async def _replay(self, provider: str, model: str, receive: Any, send: Any, stream: Any = None) -> None:
        slow = model.startswith("slow:")
        name = model.removeprefix("slow:")
        entry = MANIFEST.get((provider, name)) or _unlisted(provider, name)
        if entry is None and provider in self.fallback:
            entry = MANIFEST.get((provider, self.fallback[provider]))
        if entry is None:
            await _json(send, 404, {"error": {"message": f"no recording {provider}/{name}", "type": "not_found"}})
            return
        if (
            stream is not None
            and entry["status"] == 200
            and bool(stream)
            != (entry["file"].endswith((".sse", ".ndjson")) or ":streamGenerateContent" in entry["uri"])
        ):
            # A real server answers in the framing the request asked for; so must the relay ask right.
            message = f"recording {name} is {'not ' if stream else ''}a stream, but the request said stream={stream}"
            await _json(send, 400, {"error": {"message": message, "type": "emulator_mismatch"}})
            return
        data = (FIXTURES / provider / entry["file"]).read_bytes()
        content_type = entry["content_type"].replace(" (not recorded)", "")
        await send(
            {
                "type": "http.response.start",
                "status": entry["status"],
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        if slow:
            await self._paced(data, receive, send)
            return
        for start in range(0, len(data), CHUNK):
            await send({"type": "http.response.body", "body": data[start : start + CHUNK], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _paced(self, data: bytes, receive: Any, send: Any) -> None:
        events = [e + b"\n\n" for e in data.split(b"\n\n") if e.strip()]
        gone = asyncio.ensure_future(receive())
        try:
            for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                done, _ = await asyncio.wait({gone}, timeout=SLOW_GAP)
                if done:
                    self.disconnects.append(time.monotonic())
                    return
            await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()

    async def _ollama(self, endpoint: str, body: dict[str, Any], receive: Any, send: Any) -> None:
        docs = {
            "tags": "api_tags_docs",
            "show": "api_show_docs",
            "ps": "api_ps_docs",
            "version": "api_version_docs",
            "embed": "api_embed_docs",
        }
        if endpoint in docs:
            await _json(send, 200, json.loads((FIXTURES / "ollama" / f"{docs[endpoint]}.json").read_text()))
            return
        if endpoint == "pull":
            await _pull(send)
            return
        if endpoint == "delete":
            await _delete(str(body.get("model", "")), send)
            return
        model = str(body.get("model", "")).split(":")[0]
        stream = body.get("stream", True)
        name = model if ("ollama", model) in MANIFEST else None
        if name is None:
            # An empty prompt or conversation loads the model; with keep_alive 0 it unloads it.
            unload = "unload" if body.get("keep_alive") in (0, "0", "0s") else "load"
            if endpoint == "generate":
                name = "api_generate_nonstream_docs" if body.get("prompt") else f"api_generate_{unload}_docs"
            elif not body.get("messages"):
                name = f"api_chat_{unload}_docs"
            else:
                name = "api_chat_stream_truncated" if stream else "api_chat_nonstream_tool_calls"
        framed = endpoint == "chat" and "load" not in name  # a load's answer is one object, streamed or not
        await self._replay("ollama", name, receive, send, stream if framed else None)


async def _json(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


# The progress objects of "Pull a Model" in Ollama's API documentation
# (../shared/fixtures/specs/ollama_api.md), in its order: these are documentation examples, not
# a recording. Sent PULL_GAP seconds apart so a progress display can be watched moving.
PULL_PROGRESS = (
    {"status": "pulling manifest"},
    {"status": "pulling digestname", "digest": "digestname", "total": 2142590208, "completed": 241970},
    {"status": "verifying sha256 digest"},
    {"status": "writing manifest"},
    {"status": "removing any unused layers"},
    {"status": "success"},
)
PULL_GAP = 0.05


async def _pull(send: Any) -> None:
    headers = [(b"content-type", b"application/x-ndjson")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for line in PULL_PROGRESS:
        await send({"type": "http.response.body", "body": json.dumps(line).encode() + b"\n", "more_body": True})
        await asyncio.sleep(PULL_GAP)
    await send({"type": "http.response.body", "body": b""})


async def _delete(model: str, send: Any) -> None:
    """The documentation says: 200 when deleted, 404 when the model doesn't exist (its body is
    not documented; this is the ``{"error": ...}`` object Ollama sends with its errors)."""
    tags = json.loads((FIXTURES / "ollama" / "api_tags_docs.json").read_text())["models"]
    full = model if ":" in model else f"{model}:latest"
    if any(m["name"] == full for m in tags):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _json(send, 404, {"error": f"model '{model}' not found"})


def _unlisted(provider: str, name: str) -> dict[str, Any] | None:
    """A recording not (yet) in the manifest: served as 200 in the framing its suffix says."""
    for suffix, content_type in ((".json", "application/json"), (".sse", "text/event-stream")):
        if (FIXTURES / provider / f"{name}{suffix}").exists():
            return {"file": f"{name}{suffix}", "status": 200, "content_type": content_type, "uri": ""}
    return None


def _turn(body: dict[str, Any]) -> str:
    """The recording a request names. ``<a>~<b>`` is a model that calls a tool, then answers:
    recording a, or b once the request carries a tool's result."""
    model = str(body.get("model", ""))
    first, sep, second = model.partition("~")
    if not sep:
        return model
    items = [*(body.get("messages") or ()), *(body.get("input") or () if isinstance(body.get("input"), list) else ())]
    answered = any(
        isinstance(i, dict) and (i.get("role") == "tool" or str(i.get("type", "")).endswith("call_output"))
        for i in items
    )
    return second if answered else first
