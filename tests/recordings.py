"""Reading what a recording says, independently of the relay's own parsers, so tests compare
the relay's output with the recording rather than with itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Expected:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments JSON text)
    finish: str | None = None


def payloads(provider: str, name: str) -> list[dict[str, Any]]:
    """The JSON payloads of a recorded SSE stream, in order, without [DONE]."""
    text = (FIXTURES / provider / f"{name}.sse").read_text().replace("\r\n", "\n")
    out = []
    for block in text.split("\n\n"):
        data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
        if data and data[0] != "[DONE]":
            out.append(json.loads("\n".join(data)))
    return out


def body(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / f"{name}.json").read_text())


def _content_text(content: Any) -> tuple[str, str]:
    if isinstance(content, list):  # Mistral: text parts and thinking parts
        text = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        thinking = "".join(
            t.get("text", "") for p in content if p.get("type") == "thinking" for t in p.get("thinking", [])
        )
        return text, thinking
    return content or "", ""


def expected_stream(provider: str, name: str) -> Expected:
    exp = Expected()
    calls: dict[int, list[str]] = {}
    for chunk in payloads(provider, name):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text, thinking = _content_text(delta.get("content"))
            exp.text += text
            exp.reasoning += thinking + (delta.get("reasoning_content") or delta.get("reasoning") or "")
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), ["", ""])
                slot[0] += (call.get("function") or {}).get("name") or ""
                slot[1] += (call.get("function") or {}).get("arguments") or ""
            if choice.get("finish_reason"):
                exp.finish = choice["finish_reason"]
    exp.tool_calls = [(n, a) for n, a in (calls[i] for i in sorted(calls))]
    return exp


def expected_body(provider: str, name: str) -> Expected:
    data = body(provider, name)
    choice = data["choices"][0]
    message = choice.get("message") or {}
    text, thinking = _content_text(message.get("content"))
    reasoning = thinking + (message.get("reasoning_content") or message.get("reasoning") or "")
    calls = []
    for call in message.get("tool_calls") or []:
        args = call["function"].get("arguments")
        calls.append((call["function"]["name"], args if isinstance(args, str) else json.dumps(args)))
    return Expected(text or choice.get("text", ""), reasoning, calls, choice.get("finish_reason"))


def openai_dialect_says(client: Any, model: str, *, stream: bool, tag: str = "") -> Expected:
    """What the relay's OpenAI dialect tells an openai SDK client of ``model``'s recording (the
    dialect other tests check against the recordings themselves), to hold other dialects to."""
    messages = [{"role": "user", "content": "hello"}]
    headers = {"X-Proxy-Tag": tag} if tag else {}
    said = Expected()
    if not stream:
        completion = client.chat.completions.create(model=model, messages=messages, extra_headers=headers)
        message = completion.choices[0].message
        said.text, said.reasoning = message.content or "", getattr(message, "reasoning_content", None) or ""
        said.tool_calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
        said.finish = completion.choices[0].finish_reason
        return said
    calls: dict[int, list[str]] = {}
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, extra_headers=headers):
        for choice in chunk.choices:
            said.text += choice.delta.content or ""
            said.reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, ["", ""])
                slot[0] += call.function.name or ""
                slot[1] += call.function.arguments or ""
            said.finish = choice.finish_reason or said.finish
    said.tool_calls = [(name, arguments) for name, arguments in (calls[i] for i in sorted(calls))]
    return said
