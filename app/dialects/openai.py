"""The OpenAI dialect: ``/v1`` requests in, chat/completion/embedding replies and SSE out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from app import estimate
from app.errors import BadRequest, RelayError
from app.formats.openai_chat import envelope, usage_body
from app.internal import Frames, StreamItem
from app.pipeline.core import Exchange
from app.pricing import dollars

log = logging.getLogger("llm_relay.openai")
DONE = b"data: [DONE]\n\n"


def _require(body: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        raise BadRequest(f"'{name}' is required", param=name)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise BadRequest(f"'{name}' must be {what}", param=name)
    return value


def check_request(kind: str, body: Any) -> bool:
    """Validate the fields the relay itself relies on; the rest goes to the provider as sent.
    Returns whether the client asked to stream."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    _require(body, "model", (str,), "a string")
    if kind == "chat":
        messages = _require(body, "messages", (list,), "a list of messages")
        if not messages:
            raise BadRequest("'messages' must not be empty", param="messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"messages[{index}] must be an object with a 'role'", param=f"messages[{index}]")
    elif kind == "completion":
        _require(body, "prompt", (str, list), "a string or a list")
    else:
        _require(body, "input", (str, list), "a string or a list")
    stream = body.get("stream")
    if stream is None:  # the spec's default, and null means it too
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object", param="stream_options")
    return stream and kind != "embedding"


def wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def error_body(err: RelayError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


def with_cost(ex: Exchange, usage: dict[str, Any]) -> dict[str, Any]:
    """The caller's cost in dollars as ``usage.cost`` (OpenRouter's convention), unless the
    provider already put its own there."""
    if "cost" in usage or ex.pricer is None:
        return usage
    charged = ex.pricer(ex)
    return usage if charged is None else {**usage, "cost": dollars(charged)}


def complete_choices(body: Any) -> Any:
    """The fields OpenAI's schema requires of every choice that other providers' replies lack:
    ``logprobs`` (null unless asked for) and a chat message's ``refusal``."""
    for choice in body.get("choices") or () if isinstance(body, dict) else ():
        if isinstance(choice, dict):
            choice.setdefault("logprobs", None)
            if isinstance(choice.get("message"), dict):
                choice["message"].setdefault("refusal", None)
    return body


def body_with_cost(ex: Exchange, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("usage"), dict) and ex.cost_nanousd is not None:
        if "cost" not in body["usage"]:
            return {**body, "usage": {**body["usage"], "cost": dollars(ex.cost_nanousd)}}
    return body


def _first_event(framed: bytes) -> dict[str, Any]:
    """The first JSON event of relayed bytes, for the id, model and time a chunk of the relay's
    own must share with the stream's."""
    for line in framed.split(b"\n"):
        if line.startswith(b"data: {"):
            try:
                event = orjson.loads(line[6:])
            except orjson.JSONDecodeError:
                return {}
            return event if isinstance(event, dict) else {}
    return {}


def _frame(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def sse(ex: Exchange, items: AsyncGenerator[StreamItem, None]) -> AsyncGenerator[bytes, None]:
    """Internal chunks as OpenAI SSE; usage only when the client asked for it."""
    sent_usage = False
    last: dict[str, Any] = {}
    framed = b""
    try:
        async for chunk in items:
            if isinstance(chunk, Frames):
                framed = chunk.data
                yield framed  # upstream events, already framed
                continue
            if not isinstance(chunk, dict):
                continue
            last = chunk
            if "usage" in chunk and chunk["usage"] is not None:
                if not ex.include_usage:
                    if not chunk.get("choices"):
                        continue
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
                else:
                    sent_usage = True
                    chunk = {**chunk, "usage": with_cost(ex, chunk["usage"])}
            if chunk.get("object") == "text_completion":
                complete_choices(chunk)  # a completion chunk's choice carries logprobs, null or not
            yield _frame(chunk)
        if ex.include_usage and not sent_usage:
            # The provider sent none (llama.cpp and some compatible servers never do): the
            # relay's own count, the one its row records, flagged there as an estimate.
            usage = estimate.usage_so_far(ex.usage, ex.body, ex.pieces)
            last = last or _first_event(framed)
            obj = last.get("object", "chat.completion.chunk")
            model = last.get("model") or (ex.target.model if ex.target else ex.requested_model)
            created = last.get("created", int(time.time()))
            final = envelope(last.get("id", f"chatcmpl-{ex.request_id}"), obj, created, model, [])
            yield _frame({**final, "usage": with_cost(ex, usage_body(usage))})
    except RelayError as err:
        yield _frame(error_body(err))
    except Exception as exc:  # a bug must still end the stream in the client's dialect
        log.exception("stream %s failed", ex.request_id)
        yield _frame({"error": {"message": f"internal error ({type(exc).__name__})", "type": "server_error"}})
    finally:
        await items.aclose()
    yield DONE
