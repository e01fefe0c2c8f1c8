"""The internal (OpenAI Chat Completions) request as a Gemini ``generateContent`` body.

Pure functions: images arrive already resolved to (mime type, base64) by the adapter, which
alone may fetch URLs. Thought signatures ride in tool call ids (``<id>~ts~<signature>``, see
docs/internal-format.md) and are put back on the ``functionCall`` part they came with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from app.errors import BadRequest
from app.formats.gemini_params import function_calling_config, function_declaration, generation_config
from app.formats.images import image_url
from app.formats.openai_chat import call_arguments

SIGNATURE_MARK = "~ts~"
# Gemini-native request fields a client may send through the OpenAI dialect (extra_body):
# they have no OpenAI equivalent, so they pass through as written.
NATIVE_FIELDS = ("safetySettings", "cachedContent")
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "ogg": "audio/ogg"}


def split_call_id(call_id: str) -> tuple[str, str | None]:
    base, mark, signature = call_id.partition(SIGNATURE_MARK)
    return base, (signature or None) if mark else None


def join_call_id(call_id: str, signature: str | None) -> str:
    return f"{call_id}{SIGNATURE_MARK}{signature}" if signature else call_id


def build_request(
    body: Mapping[str, Any],
    images: Mapping[str, tuple[str, str]],
    catalog: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The generateContent body for a chat request."""
    system, contents = contents_from_messages(body.get("messages") or [], images)
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    choice = body.get("tool_choice")
    declarations = [
        function_declaration(t) for t in tools or () if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    gemini_tools: list[dict[str, Any]] = [{"functionDeclarations": declarations}] if declarations else []
    if body.get("web_search_options") is not None:
        gemini_tools.append({"googleSearch": {}})
    if gemini_tools:
        request["tools"] = gemini_tools
    if declarations and choice is not None:
        request["toolConfig"] = {"functionCallingConfig": function_calling_config(choice)}
    config = generation_config(body, catalog)
    if config:
        request["generationConfig"] = config
    for name in NATIVE_FIELDS:
        if body.get(name) is not None:
            request[name] = body[name]
    return request


def contents_from_messages(
    messages: list[Any], images: Mapping[str, tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents). System and developer messages are gathered
    wherever they stand, as Gemini has one instruction; consecutive tool results become one
    user turn, which is how Gemini pairs parallel function calls with their responses."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the responses
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system += [p for p in _parts(message.get("content"), images, index) if p.get("text")]
        elif role == "user":
            contents.append({"role": "user", "parts": _parts(message.get("content"), images, index)})
        elif role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message, images, index, names)})
        elif role == "tool":
            part = _function_response(message, names, index)
            last = contents[-1] if contents else None
            if last is not None and last["role"] == "user" and all("functionResponse" in p for p in last["parts"]):
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise BadRequest(f"messages[{index}]: unknown role {role!r}", param=f"messages[{index}].role")
    # Gemini refuses a turn without parts (an assistant message that was only reasoning).
    return system, [c for c in contents if c["parts"]]


def _parts(content: Any, images: Mapping[str, tuple[str, str]], index: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list", param=f"messages[{index}]")
    return [p for p in (_part(part, images, index) for part in content) if p is not None]


def _part(part: Any, images: Mapping[str, tuple[str, str]], index: int) -> dict[str, Any] | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        text = str(part.get("text") or "")
        return {"text": text} if text else None
    if kind == "image_url":
        url = image_url(part)
        if url not in images:  # only an empty or missing url was not fetched beforehand
            raise BadRequest(f"messages[{index}]: an image_url part needs a url", param=f"messages[{index}]")
        mime, data = images[url]
        return {"inlineData": {"mimeType": mime, "data": data}}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        mime = _AUDIO_MIME.get(str(audio.get("format")), f"audio/{audio.get('format')}")
        return {"inlineData": {"mimeType": mime, "data": audio.get("data", "")}}
    raise BadRequest(
        f"messages[{index}]: content part {kind!r} cannot be sent to a Gemini model",
        param=f"messages[{index}].content",
    )


def _model_parts(
    message: dict[str, Any], images: Mapping[str, tuple[str, str]], index: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    # reasoning_content is left out: Gemini's thought text is a summary it never reads back;
    # what it needs is the signature, carried by the tool call id.
    parts = _parts(message.get("content"), images, index)
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            raise BadRequest(f"messages[{index}].tool_calls must hold objects", param=f"messages[{index}]")
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        call_id = str(call.get("id") or "")
        names[call_id] = name
        arguments = call_arguments(function, name)
        args = arguments if isinstance(arguments, dict) else {"value": arguments}  # args must be an object
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        signature = split_call_id(call_id)[1]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], names: dict[str, str], index: int) -> dict[str, Any]:
    call_id = str(message.get("tool_call_id") or "")
    name = names.get(call_id) or message.get("name")
    if not name:
        raise BadRequest(
            f"messages[{index}]: tool result {call_id!r} answers no earlier tool call", param=f"messages[{index}]"
        )
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return {"functionResponse": {"name": name, "response": {"result": content if content is not None else ""}}}


def completion_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A /v1/completions prompt as one user turn (Gemini has no raw completion endpoint)."""
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("Gemini models take one prompt string", param="prompt")
    return [{"role": "user", "content": prompt}]


def embed_request(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The batchEmbedContents body: one request per input string."""
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadRequest("Gemini embeddings take a string or a list of strings", param="input")
    extra: dict[str, Any] = {}
    if isinstance(body.get("dimensions"), int):
        extra["outputDimensionality"] = body["dimensions"]
    return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": t}]}, **extra} for t in texts]}


def function_calls(contents: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(content index, part) of every functionCall part in model turns."""
    for index, content in enumerate(contents):
        if content.get("role") == "model":
            for part in content.get("parts") or ():
                if "functionCall" in part:
                    yield index, part
