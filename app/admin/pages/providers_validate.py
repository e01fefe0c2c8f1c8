"""Checking what an admin sends for a model's overrides: prices (Decimal, at least 0, within
the columns' precision), switches (yes / no / the catalog's word) and a quirk rule (checked by
the same code that applies it). Forms and JSON bodies end up in the same checks."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from app.admin.pages.providers_catalog import exact_pattern
from app.admin.pages.providers_common import Invalid, text
from app.quirks import QuirkError, rule_from_dict

# field -> (digits before the point, decimal places), as the price_override columns allow
DECIMALS = {
    "input_per_mtok": (9, 9),
    "cache_read_per_mtok": (9, 9),
    "cache_write_per_mtok": (9, 9),
    "output_per_mtok": (9, 9),
    "cache_read_multiplier": (6, 6),
    "cache_write_multiplier": (6, 6),
    "request_fee_usd": (9, 9),
}
PRICE_FIELDS = (*DECIMALS, "tier_threshold")
SWITCH_FIELDS = ("enabled", "vision", "reasoning", "tools")
QUIRK_FIELDS = ("rename", "drop", "defaults", "system", "stream_usage")
PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
TRUE = frozenset({"yes", "true", "on", "1", "enabled"})
FALSE = frozenset({"no", "false", "off", "0", "disabled"})
UNSET = frozenset({"", "default", "catalog", "null", "none"})


def _unknown(raw: Mapping[str, Any], allowed: tuple[str, ...], errors: dict[str, str]) -> None:
    extra = sorted(set(raw) - set(allowed))
    if extra:
        errors[""] = f"unknown fields {extra} (allowed: {list(allowed)})"


def _decimal(name: str, value: Any, errors: dict[str, str]) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise InvalidOperation
        number = Decimal(str(value).strip())
    except InvalidOperation:
        errors[name] = f"{value!r} is not a number"
        return None
    whole, places = DECIMALS[name]
    exponent = number.normalize().as_tuple().exponent if number.is_finite() else 0
    if not number.is_finite() or number < 0:
        errors[name] = "must be a number of at least 0"
    elif number >= Decimal(10) ** whole:
        errors[name] = f"must be below {10**whole:,}"
    elif isinstance(exponent, int) and -exponent > places:
        errors[name] = f"at most {places} decimal places"
    return number


def parse_price(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A price override's columns (USD per million tokens, multipliers of the input rate)."""
    errors: dict[str, str] = {}
    _unknown(raw, PRICE_FIELDS, errors)
    price: dict[str, Any] = {name: _decimal(name, raw.get(name), errors) for name in DECIMALS}
    threshold = raw.get("tier_threshold")
    price["tier_threshold"] = None
    if threshold is not None and text(threshold):
        try:
            if isinstance(threshold, (bool, float)):
                raise ValueError
            price["tier_threshold"] = int(text(threshold))
            if not 0 < price["tier_threshold"] < 2**62:
                errors["tier_threshold"] = "must be a whole number of tokens above 0"
        except ValueError:
            errors["tier_threshold"] = f"{threshold!r} is not a whole number of tokens"
    for kind in ("read", "write"):
        if price[f"cache_{kind}_per_mtok"] is not None and price[f"cache_{kind}_multiplier"] is not None:
            errors[f"cache_{kind}_multiplier"] = f"give a cache {kind} price or a multiplier, not both"
    if not errors and all(v is None for v in price.values()):
        errors[""] = "set at least one field, or remove the price override"
    if errors:
        raise Invalid(errors)
    return price


def parse_switch(name: str, value: Any, errors: dict[str, str], *, tristate: bool = True) -> bool | None:
    if isinstance(value, bool) or (value is None and tristate):
        return value
    word = text(value).lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    if tristate and word in UNSET:
        return None
    errors[name] = "must be yes or no" + (" (or empty for the catalog's word)" if tristate else "")
    return None


def parse_switches(raw: Mapping[str, Any]) -> dict[str, bool | None]:
    """enabled (yes/no, default yes) and vision/reasoning/tools (yes/no/None = the catalog's)."""
    errors: dict[str, str] = {}
    _unknown(raw, SWITCH_FIELDS, errors)
    enabled = raw.get("enabled", True)
    switches = {"enabled": parse_switch("enabled", True if enabled is None else enabled, errors, tristate=False)}
    for name in SWITCH_FIELDS[1:]:
        switches[name] = parse_switch(name, raw.get(name), errors)
    if errors:
        raise Invalid(errors)
    return switches


def _names(value: Any, field: str, errors: dict[str, str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[field] = "must be a list of parameter names"
        return []
    bad = [v for v in value if not PARAM.fullmatch(v)]
    if bad:
        errors[field] = f"not parameter names: {bad}"
    return list(value)


# Request parameters a provider reads as numbers: a default of text for them is a typo that
# every request would carry upstream (a 400 there, or worse, a value taken as zero).
NUMERIC_PARAMETERS = frozenset(
    {
        "max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "top_p", "top_k", "min_p",
        "seed", "n", "frequency_penalty", "presence_penalty", "repeat_penalty", "num_ctx", "num_predict",
    }
)  # fmt: skip


def _number_or_catalog(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("catalog:")
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_quirk(raw: Mapping[str, Any], provider: str, model: str) -> dict[str, Any]:
    """A quirk rule that matches exactly this model; ``name`` and ``match`` are set here."""
    errors: dict[str, str] = {}
    _unknown(raw, (*QUIRK_FIELDS, "name", "match"), errors)
    rule: dict[str, Any] = {
        "name": f"admin: {provider}/{model}",
        "match": {"provider": provider, "model": exact_pattern(model)},
    }
    rename = raw.get("rename") or {}
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        errors["rename"] = "must map parameter names to new names"
    else:
        _names([*rename, *rename.values()], "rename", errors)
        if rename:
            rule["rename"] = dict(rename)
    drop = _names(raw.get("drop"), "drop", errors)
    if drop:
        rule["drop"] = drop
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        errors["defaults"] = "must map parameter names to values"
    else:
        _names(list(defaults), "defaults", errors)
        for name, value in defaults.items():
            if name in NUMERIC_PARAMETERS and not _number_or_catalog(value):
                errors["defaults"] = f"{name} takes a number (or catalog:<field>), not {value!r}"
        if defaults:
            rule["defaults"] = dict(defaults)
    if raw.get("system") not in (None, "", "fold", False):
        errors["system"] = "must be 'fold' (move system messages into the first user turn) or empty"
    elif raw.get("system") == "fold":
        rule["system"] = "fold"
    stream_usage = parse_switch("stream_usage", raw.get("stream_usage"), errors)
    if stream_usage is not None:
        rule["stream_usage"] = stream_usage
    if not errors and set(rule) == {"name", "match"}:
        errors[""] = "the rule changes nothing: rename, drop, set a default or fold the system prompt"
    if not errors:
        try:
            rule_from_dict(rule)
        except QuirkError as exc:
            errors[""] = str(exc)
    if errors:
        raise Invalid(errors)
    return rule


def quirk_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The quirk form's text fields as a rule's parts: ``old=new`` and ``name=value`` lines
    (a value is JSON when it parses as JSON, else text), names separated by commas or spaces."""
    errors: dict[str, str] = {}

    def pairs(field: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in form.get(field, "").splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                errors[field] = f"write one name=value per line, not {line.strip()!r}"
                continue
            found[name.strip()] = value.strip()
        return found

    defaults: dict[str, Any] = {}
    for name, value in pairs("defaults").items():
        try:
            defaults[name] = json.loads(value)
        except ValueError:
            defaults[name] = value
    raw = {
        "rename": pairs("rename"),
        "drop": form.get("drop", "").replace(",", " ").split(),
        "defaults": defaults,
        "system": "fold" if text(form.get("system")).lower() in {"fold", *TRUE} else None,
        "stream_usage": form.get("stream_usage") or None,
    }
    if errors:
        raise Invalid(errors)
    return raw


def quirk_as_form(rule: Mapping[str, Any] | None) -> dict[str, str]:
    rule = rule or {}
    stream_usage = rule.get("stream_usage")
    return {
        "rename": "\n".join(f"{k}={v}" for k, v in (rule.get("rename") or {}).items()),
        "drop": ", ".join(rule.get("drop") or ()),
        "defaults": "\n".join(f"{k}={_as_text(v)}" for k, v in (rule.get("defaults") or {}).items()),
        "system": "fold" if rule.get("system") == "fold" else "",
        "stream_usage": "" if stream_usage is None else ("yes" if stream_usage else "no"),
    }


def _as_text(value: Any) -> str:
    """A default as the form shows it: text as is, unless it would read back as JSON."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value)
