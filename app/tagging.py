"""Tags for cost attribution: parsing and validation, shared by the tag stage and the API."""

from __future__ import annotations

import re

from app.errors import BadRequest

TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,63}")
MAX_TAGS = 16
_SECRET_PREFIXES = ("rk-", "sk-", "sk_", "gsk_", "xai-", "pplx-", "aiza", "ghp_", "glpat-", "eyj")


def parse_tags(raw: str, *, source: str) -> list[str]:
    tags: list[str] = []
    for item in raw.split(","):
        tag = item.strip()
        if not tag:
            continue
        if not TAG_PATTERN.fullmatch(tag):
            raise BadRequest(
                f"invalid tag {tag[:80]!r} in {source}: use 1-64 letters, digits and . _ : / @ + - "
                "(starting with a letter or digit)"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"too many tags in {source}: at most {MAX_TAGS}")
    return tags


def split_model_tag(model: str) -> tuple[str, str]:
    name, at, suffix = model.rpartition("@")
    return (name, suffix) if at and name else (model, "")


def bearer_tags(authorization: str) -> list[str]:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 64:
        return []
    if token.lower().startswith(_SECRET_PREFIXES):
        return []
    try:
        return parse_tags(token, source="the bearer token")
    except BadRequest:
        return []
