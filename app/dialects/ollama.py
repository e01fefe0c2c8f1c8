"""The Ollama dialect: ``/api`` requests in, NDJSON lines and Ollama-shaped bodies out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from app import estimate
from app.errors import BadRequest, RelayError
from app.formats.images import data_url
from app.formats.ollama_messages import messages_from_ollama, tool_calls_to_ollama
from app.formats.ollama_params import (
    done_reason,
    effort_from_think,
    openai_from_options,
    response_format_from_format,
)
from app.internal import StreamItem
from app.pipeline.core import Exchange

log = logging.getLogger("llm_relay.ollama")


def model_of(body: Any) -> str:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model") or body.get("name")
    if model is None or model == "":
        raise BadRequest("'model' is required")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a model's name")
    return model


def _stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream")
    if stream is None:  # left out or null: Ollama streams by default
        return True
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    return stream


def _common(body: Any) -> dict[str, Any]:
    """What chat and generate requests share: the model, the options, the format and think."""
    internal: dict[str, Any] = {"model": model_of(body), **openai_from_options(body.get("options"))}
    response_format = response_format_from_format(body.get("format"))
    if response_format:
        internal["response_format"] = response_format
    effort = effort_from_think(body.get("think"))
    if effort:
        internal["reasoning_effort"] = effort
    return internal


def parse_chat(body: Any) -> tuple[dict[str, Any], bool]:
    internal = _common(body)
    internal["messages"] = messages_from_ollama(body.get("messages") or [])
    if not internal["messages"] and body.get("messages") != []:
        raise BadRequest("'messages' must not be empty")  # [] itself loads or unloads the model
    if body.get("tools"):
        if not isinstance(body["tools"], list):
            raise BadRequest("'tools' must be a list")
        internal["tools"] = body["tools"]
    return internal, _stream(body)


def parse_generate(body: Any) -> tuple[dict[str, Any], bool]:
    internal = _common(body)
    prompt = body.get("prompt")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": str(body["system"])})
    images = body.get("images") or []
    if not isinstance(images, list):
        raise BadRequest("'images' must be a list of base64-encoded images")
    if images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        parts += [{"type": "image_url", "image_url": {"url": data_url(str(i))}} for i in images]
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": prompt})
    internal["messages"] = messages
    return internal, _stream(body)


def is_load_request(body: dict[str, Any], *, generate: bool) -> bool:
    """An empty prompt, or an empty conversation, asks Ollama to load (or, with keep_alive 0,
    unload) a model."""
    if generate:
        return not body.get("prompt") and not body.get("images")
    return body.get("messages") == []


def load_reply(ex: Exchange, finish: str | None, *, generate: bool) -> dict[str, Any]:
    """The one object Ollama answers a load or unload with: no counts, no timings; the reason
    the server gave, else the one the request asked for."""
    unload = ex.native is not None and ex.native.get("keep_alive") in (0, "0", "0s")
    reason = finish if finish in ("load", "unload") else "unload" if unload else "load"
    piece = _piece(ex.body.get("model", ex.requested_model), "", "", generate=generate)
    return {**piece, "done": True, "done_reason": reason}


def parse_embed(body: Any, *, legacy: bool) -> dict[str, Any]:
    model = model_of(body)
    value = body.get("prompt") if legacy else body.get("input")
    if not isinstance(value, (str, list)):
        raise BadRequest("'prompt' must be a string" if legacy else "'input' must be a string or a list")
    internal: dict[str, Any] = {"model": model, "input": value}
    if isinstance(body.get("dimensions"), int):
        internal["dimensions"] = body["dimensions"]
    return internal


def error_body(err: RelayError) -> dict[str, Any]:
    return {"error": err.message}


def timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def metrics(ex: Exchange) -> dict[str, Any]:
    """The final line's counts and timings: Ollama's own when the model ran on Ollama."""
    now = time.perf_counter()
    # A whole reply arrives at once, so its first token says nothing of when reading the prompt
    # ended: all its time is counted as generation, which gives clients a believable rate.
    first = ex.first_token_at if ex.stream and ex.first_token_at else ex.started
    total, prompt = int((now - ex.started) * 1e9), int((first - ex.started) * 1e9)
    measured = {
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_duration": prompt,
        "eval_duration": total - prompt,
    }
    usage = estimate.usage_so_far(ex.usage, ex.body, ex.pieces)  # the row's estimate when none was reported
    return {
        **measured,
        **(ex.usage.durations or {}),
        "prompt_eval_count": usage.prompt_total,
        "eval_count": usage.output,
    }


def _line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def _piece(
    model: str, content: str, thinking: str, calls: list[dict[str, Any]] | None = None, *, generate: bool
) -> dict[str, Any]:
    """One reply object without its ``done``: /api/generate's ``response``, or /api/chat's ``message``."""
    if generate:
        out: dict[str, Any] = {"model": model, "created_at": timestamp(), "response": content}
        if thinking:
            out["thinking"] = thinking
        return out
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    return {"model": model, "created_at": timestamp(), "message": message}


class _Collector:
    """Gathers tool-call fragments (Ollama sends each call whole, OpenAI streams pieces) and
    the web sources a provider cited, which Ollama's format has no field for."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.sources: dict[str, str] = {}  # url -> title, in citation order

    def add_sources(self, payload: dict[str, Any]) -> None:
        for result in payload.get("search_results") or ():
            if isinstance(result, dict) and isinstance(result.get("url"), str):
                self.sources.setdefault(result["url"], str(result.get("title") or ""))
        for url in payload.get("citations") or ():
            if isinstance(url, str):
                self.sources.setdefault(url, "")

    def ollama_calls(self) -> list[dict[str, Any]]:
        """The calls gathered, whole and in order, as Ollama's ``tool_calls``."""
        return tool_calls_to_ollama([self.calls[i] for i in sorted(self.calls)])

    @property
    def sources_text(self) -> str:
        """The web sources as a numbered Markdown list, the way Ollama clients can show them."""
        if not self.sources:
            return ""
        numbered = enumerate(self.sources.items(), 1)
        lines = [f"{i}. [{title}]({url})" if title else f"{i}. {url}" for i, (url, title) in numbered]
        return "\n\nSources:\n" + "\n".join(lines)

    def add(self, choice: dict[str, Any]) -> tuple[str, str]:
        delta = choice.get("delta") or choice.get("message") or {}
        for call in delta.get("tool_calls") or ():
            slot = self.calls.setdefault(
                call.get("index", len(self.calls)), {"function": {"name": "", "arguments": ""}}
            )
            if call.get("id"):
                slot["id"] = call["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        text = delta.get("content") if "content" in delta else choice.get("text")
        return text or "", delta.get("reasoning_content") or choice.get("reasoning_content") or ""


async def ndjson(
    ex: Exchange, items: AsyncGenerator[StreamItem, None], *, generate: bool
) -> AsyncGenerator[bytes, None]:
    """Internal chunks as Ollama NDJSON: one line per piece of text, then the final line."""
    piece = partial(_piece, ex.body.get("model", ex.requested_model), generate=generate)
    collected = _Collector()
    try:
        async for chunk in items:
            if not isinstance(chunk, dict):
                continue
            collected.add_sources(chunk)
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue  # Ollama has no n > 1
                content, thinking = collected.add(choice)
                if content or thinking:
                    yield _line({**piece(content, thinking), "done": False})
        if collected.sources:
            yield _line({**piece(collected.sources_text, ""), "done": False})
        if collected.calls and not generate:
            yield _line({**piece("", "", collected.ollama_calls()), "done": False})
        final = {**piece("", ""), "done": True, "done_reason": done_reason(collected.finish), **metrics(ex)}
        yield _line(final)
    except RelayError as err:
        yield _line(error_body(err))
    except Exception as exc:
        log.exception("stream %s failed", ex.request_id)
        yield _line({"error": f"internal error ({type(exc).__name__})"})
    finally:
        await items.aclose()


def whole(ex: Exchange, body: dict[str, Any], *, generate: bool) -> dict[str, Any]:
    """A non-streaming internal chat body as Ollama's single reply object."""
    collected = _Collector()
    content, thinking = "", ""
    for choice in body.get("choices") or ():
        if choice.get("index", 0) == 0:
            content, thinking = collected.add(choice)
    collected.add_sources(body)
    calls = collected.ollama_calls() if collected.calls and not generate else None
    model = ex.body.get("model", ex.requested_model)
    out = _piece(model, content + collected.sources_text, thinking, calls, generate=generate)
    return {**out, "done": True, "done_reason": done_reason(collected.finish), **metrics(ex)}


def embed_body(ex: Exchange, body: dict[str, Any], *, legacy: bool) -> dict[str, Any]:
    vectors = [item.get("embedding") for item in body.get("data") or () if isinstance(item, dict)]
    if legacy:
        return {"embedding": vectors[0] if vectors else []}
    timings = metrics(ex)
    return {
        "model": ex.body.get("model", ex.requested_model),
        "embeddings": vectors,
        "total_duration": timings["total_duration"],
        "load_duration": timings["load_duration"],
        "prompt_eval_count": ex.usage.prompt_total,
    }
