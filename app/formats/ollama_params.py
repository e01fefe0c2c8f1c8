"""Sampling options, output formats, thinking and stop reasons between OpenAI and Ollama."""

from __future__ import annotations

from typing import Any

from app.errors import BadRequest
from app.formats.openai_chat import generation_fields

# OpenAI request field -> Ollama option of the same meaning.
_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
_LEVELS = ("low", "medium", "high")


def options_from_openai(body: dict[str, Any]) -> dict[str, Any]:
    options = generation_fields(body, _OPTION_NAMES, "num_predict", "stop")
    if (body.get("n") or 1) != 1:
        raise BadRequest("Ollama models return one choice: 'n' must be 1", param="n")
    return options


def openai_from_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise BadRequest("'options' must be an object", param="options")
    params = {name: options[ollama] for name, ollama in _OPTION_NAMES.items() if ollama in options}
    if "num_predict" in options and isinstance(options["num_predict"], int) and options["num_predict"] > 0:
        params["max_tokens"] = options["num_predict"]
    if options.get("stop"):
        params["stop"] = options["stop"]
    return params


def response_format_from_format(fmt: Any) -> dict[str, Any] | None:
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    raise BadRequest("'format' must be \"json\" or a JSON schema object", param="format")


def think_from_effort(effort: Any) -> bool | str | None:
    if effort in ("none", "minimal"):
        return False
    if effort in _LEVELS:
        return str(effort)
    if effort in ("xhigh", "max"):
        return "high"
    return None


def effort_from_think(think: Any) -> str | None:
    """A level maps to ``reasoning_effort`` and ``true`` to medium (models that can't reason drop
    it in the quirk stage); ``false`` leaves the model's default, since not every model can stop
    thinking."""
    if think is not None and not isinstance(think, bool) and think not in (*_LEVELS, "max"):
        raise BadRequest("'think' must be true, false, or one of low, medium, high", param="think")
    if isinstance(think, str):
        return "high" if think == "max" else think
    return "medium" if think is True else None


LOADING = ("load", "unload")  # what an Ollama server answers a request to load or unload a model


def done_reason(finish_reason: str | None) -> str:
    return finish_reason if finish_reason in ("length", *LOADING) else "stop"


def finish_reason(done_reason: str | None, saw_tool_calls: bool, *, loading: bool = False) -> str:
    """OpenAI's finish reason for Ollama's; ``loading`` keeps a load's or unload's own, for an
    Ollama-dialect caller (no other dialect has a word for them)."""
    if saw_tool_calls:
        return "tool_calls"
    if loading and done_reason in LOADING:
        return done_reason
    return "length" if done_reason == "length" else "stop"
