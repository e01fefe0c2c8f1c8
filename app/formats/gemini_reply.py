"""Gemini ``GenerateContentResponse`` objects as internal (OpenAI-shaped) bodies and chunks.

A stream is a series of whole responses, each carrying the new parts of every candidate and
the usage so far, so one translator serves both the whole reply and each streamed piece.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import orjson

from app.formats.gemini_request import join_call_id
from app.formats.openai_chat import embedding_list, envelope, source_fields, tool_call, usage_body
from app.internal import Reply, StreamItem, Usage, token_count

# Stopped by a filter, whatever it was checking: the caller sees one content_filter.
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)


def _count(meta: dict[str, Any], name: str) -> int:
    return token_count(meta.get(name))


def search_count(data: dict[str, Any]) -> int:
    """Google Search queries behind a grounded answer (at least one when it was grounded)."""
    count = 0
    for candidate in data.get("candidates") or ():
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
        if isinstance(grounding, dict):
            count += max(len(grounding.get("webSearchQueries") or ()), 1)
    return count


def usage_from_gemini(meta: dict[str, Any], searches: int = 0) -> Usage:
    """promptTokenCount already holds the cached part; tool-use prompt tokens (Google's own
    search results, say) are billed as input but counted apart; thoughts are billed as output
    but left out of candidatesTokenCount."""
    prompt = _count(meta, "promptTokenCount")
    tool = _count(meta, "toolUsePromptTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    return Usage(
        input=prompt + tool,
        output=_count(meta, "candidatesTokenCount") + thoughts,
        reasoning=thoughts,
        cached_input=min(_count(meta, "cachedContentTokenCount"), prompt),
        tool_prompt=tool,
        web_search_requests=searches,
        service_tier=str(meta["serviceTier"]).lower() if meta.get("serviceTier") else None,
        reported=True,
    )


def finish_reason(reason: str, saw_calls: bool) -> str:
    if reason in FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if saw_calls and reason == "STOP" else "stop"


def sources(data: dict[str, Any]) -> dict[str, Any]:
    """Google Search grounding as the top-level citations/search_results of the internal form."""
    results: dict[str, str] = {}  # url -> title, first seen first
    for candidate in data.get("candidates") or ():
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
        for chunk in (grounding or {}).get("groundingChunks") or ():
            web = chunk.get("web") if isinstance(chunk, dict) else None
            if isinstance(web, dict) and isinstance(web.get("uri"), str):
                results.setdefault(web["uri"], str(web.get("title") or ""))
    return source_fields(results)


class ReplyTranslator:
    """Gemini responses -> internal chat (or text completion) bodies and chunks, for one
    request. Tool call ids are made here (Gemini's calls have none) and carry the thought
    signature of their part."""

    def __init__(self, *, request_id: str, model: str, chat: bool = True) -> None:
        self.chat = chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id
        self.model = model
        self.created = int(time.time())
        self._prefix = f"call_{request_id[-8:]}_"
        self._calls = 0  # across candidates, so every id in the reply is unique
        self._searches = 0  # Google Search queries grounding ran, billed per query or per prompt
        self._calls_of: dict[int, int] = {}  # candidate index -> calls so far
        self._started: set[int] = set()

    def _envelope(self, data: dict[str, Any], choices: list[dict[str, Any]], obj: str) -> dict[str, Any]:
        return envelope(self.id, obj, self.created, data.get("modelVersion") or self.model, choices)

    def _message(self, candidate: dict[str, Any], index: int, *, stream: bool) -> dict[str, Any]:
        """The text, thoughts and function calls of one candidate's parts."""
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        content = candidate.get("content")
        # MAX_TOKENS (and filters) may end a candidate with a content that has no parts at all.
        for part in (content.get("parts") if isinstance(content, dict) else None) or ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                calls.append(self._tool_call(part, index, stream=stream))
            elif isinstance(part.get("text"), str) and part["text"]:
                # (Gemini 3 may end a thought with an empty part that only holds a signature.)
                (thoughts if part.get("thought") else text).append(part["text"])
        out: dict[str, Any] = {}
        if text:
            out["content"] = "".join(text)
        if thoughts:
            out["reasoning_content"] = "".join(thoughts)
        if calls:
            out["tool_calls"] = calls
        return out

    def _tool_call(self, part: dict[str, Any], index: int, *, stream: bool) -> dict[str, Any]:
        function = part["functionCall"]
        position = self._calls_of.get(index, 0)
        self._calls_of[index] = position + 1
        call_id = join_call_id(f"{self._prefix}{self._calls}", part.get("thoughtSignature"))
        self._calls += 1
        args = function.get("args")
        call = tool_call(call_id, str(function.get("name") or ""), orjson.dumps(args or {}).decode())
        return {"index": position, **call} if stream else call

    def _finish(self, candidate: dict[str, Any], index: int) -> str | None:
        reason = candidate.get("finishReason")
        if not isinstance(reason, str) or not reason:
            return None
        return finish_reason(reason, self._calls_of.get(index, 0) > 0)

    def chunk(self, data: dict[str, Any]) -> list[StreamItem]:
        """One streamed response: a chunk (when it says anything), then its usage so far."""
        items: list[StreamItem] = []
        choices: list[dict[str, Any]] = []
        for candidate in data.get("candidates") or ():
            if not isinstance(candidate, dict):
                continue
            index = int(candidate.get("index") or 0)
            delta = self._message(candidate, index, stream=True)
            finish = self._finish(candidate, index)
            if not delta and finish is None:
                continue
            if index not in self._started:
                self._started.add(index)
                delta = {"role": "assistant", **delta}
            choices.append(self._choice(index, delta, finish, key="delta"))
        if not data.get("candidates") and _blocked(data):
            choices.append(self._choice(0, {"role": "assistant", "content": ""}, "content_filter", key="delta"))
        found = sources(data)
        if choices or found:
            items.append(
                {**self._envelope(data, choices, "chat.completion.chunk" if self.chat else "text_completion"), **found}
            )
        self._searches = max(self._searches, search_count(data))
        meta = data.get("usageMetadata")
        if isinstance(meta, dict):
            items.append(usage_from_gemini(meta, self._searches))
        return items

    def whole(self, data: Any) -> Reply:
        data = data if isinstance(data, dict) else {}
        choices: list[dict[str, Any]] = []
        for candidate in data.get("candidates") or ():
            if not isinstance(candidate, dict):
                continue
            index = int(candidate.get("index") or 0)
            message = {"role": "assistant", **self._message(candidate, index, stream=False)}
            # OpenAI's shape: content is null beside tool calls, "" when there is nothing.
            message.setdefault("content", None if message.get("tool_calls") else "")
            choices.append(self._choice(index, message, self._finish(candidate, index) or "stop", key="message"))
        if not choices:
            reason = "content_filter" if _blocked(data) else "stop"
            choices.append(self._choice(0, {"role": "assistant", "content": ""}, reason, key="message"))
        meta = data.get("usageMetadata")
        usage = usage_from_gemini(meta, search_count(data)) if isinstance(meta, dict) else None
        body = {
            **self._envelope(data, choices, "chat.completion" if self.chat else "text_completion"),
            **sources(data),
        }
        if usage is not None:
            body["usage"] = usage_body(usage)
        return Reply(body=body, usage=usage)

    def _choice(self, index: int, message: dict[str, Any], finish: str | None, *, key: str) -> dict[str, Any]:
        if self.chat:
            return {"index": index, key: message, "finish_reason": finish}
        # A text completion: the text, and the thoughts beside it as the other adapters do.
        choice: dict[str, Any] = {"index": index, "text": message.get("content") or "", "finish_reason": finish}
        if message.get("reasoning_content"):
            choice["reasoning_content"] = message["reasoning_content"]
        return choice


def _blocked(data: dict[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def embedding_reply(data: Any, model: str, encoding_format: Any = None) -> Reply:
    """batchEmbedContents -> an OpenAI embedding list; base64 when asked, as OpenAI does
    (little-endian float32)."""
    data = data if isinstance(data, dict) else {}
    vectors: list[Any] = [list((e or {}).get("values") or []) for e in data.get("embeddings") or ()]
    if encoding_format == "base64":
        vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
    meta = data.get("usageMetadata")
    usage = Usage(input=_count(meta, "promptTokenCount"), reported=True) if isinstance(meta, dict) else Usage()
    return Reply(body=embedding_list(vectors, model, usage.input), usage=usage)
