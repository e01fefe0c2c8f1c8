"""Gemini's request parameters from OpenAI's: function declarations and their JSON Schemas,
tool choice, sampling, output format and thinking."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.formats.openai_chat import generation_fields, json_format

# reasoning_effort -> thinkingBudget. "minimal" is 512, not 0: 2.5 Pro cannot stop thinking
# (budget 0 is a 400 there) and 512 is the floor of Flash-Lite; "xhigh" stays at 24576, the
# largest budget 2.5 Flash accepts.
BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
# The fields of Gemini's Schema object (a subset of OpenAPI 3.0). Anything else is refused
# with "Invalid JSON payload received. Unknown name ...": notably additionalProperties,
# $schema, strict, $ref/$defs (inlined below), const (becomes enum), oneOf/allOf,
# exclusiveMinimum/exclusiveMaximum, multipleOf, uniqueItems and examples.
SCHEMA_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
_MAX_REF_DEPTH = 24


def function_declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    declaration: dict[str, Any] = {"name": function.get("name", "")}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if isinstance(parameters, dict) and parameters:
        declaration["parameters"] = gemini_schema(parameters)
    return declaration


def function_calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return {"mode": "ANY", "allowedFunctionNames": [name]} if name else {"mode": "ANY"}
    return {"mode": {"none": "NONE", "required": "ANY"}.get(str(choice), "AUTO")}


def gemini_schema(schema: Any, defs: Mapping[str, Any] | None = None, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema cut down to what Gemini's Schema accepts; local $refs are inlined."""
    if not isinstance(schema, dict):
        return {}
    if defs is None:
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if not isinstance(target, dict) or depth >= _MAX_REF_DEPTH:
            return {"type": "object"}  # a recursive or foreign reference: the most we can say
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return gemini_schema({**target, **rest}, defs, depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: gemini_schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value[0] if isinstance(value, list) and value else value, defs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [gemini_schema(sub, defs, depth + 1) for sub in value]
        elif key == "allOf" and isinstance(value, list) and len(value) == 1:
            out.update(gemini_schema(value[0], defs, depth + 1))
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            out.update(_type_list(value))
        elif key in SCHEMA_KEYS:
            out[key] = value
    return out


def _type_list(types: list[Any]) -> dict[str, Any]:
    """``["string", "null"]`` is a nullable string; several real types become anyOf."""
    real = [t for t in types if t != "null"]
    out: dict[str, Any] = {"nullable": True} if len(real) < len(types) else {}
    if len(real) == 1:
        out["type"] = real[0]
    elif real:
        out["anyOf"] = [{"type": t} for t in real]
    return out


def generation_config(body: Mapping[str, Any], catalog: Mapping[str, Any] | None) -> dict[str, Any]:
    config = generation_fields(body, _SAMPLING, "maxOutputTokens", "stopSequences")
    config.update(_response_format(body.get("response_format")))
    thinking = thinking_config(body, catalog)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "n": "candidateCount",
}


def _response_format(response_format: Any) -> dict[str, Any]:
    """JSON mode, with the schema when the request gives one."""
    wanted = json_format(response_format)
    if wanted is None:
        return {}
    out: dict[str, Any] = {"responseMimeType": "application/json"}
    if isinstance(wanted, dict):
        out["responseSchema"] = gemini_schema(wanted)
    return out


def thinking_config(body: Mapping[str, Any], catalog: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Thoughts are always asked for when the model thinks, or the caller would never see them
    (Gemini returns thought summaries only on request)."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        if thinking.get("type") == "enabled" and isinstance(budget, int):
            return {"thinkingBudget": budget, "includeThoughts": True}
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort in BUDGETS:
        budget = BUDGETS[effort]
        return {"thinkingBudget": 0} if budget == 0 else {"thinkingBudget": budget, "includeThoughts": True}
    # Without an explicit request, only a model known to think gets asked: older models
    # (2.0 Flash) refuse a thinkingConfig outright.
    if catalog and catalog.get("supports_reasoning"):
        return {"includeThoughts": True}
    return None
