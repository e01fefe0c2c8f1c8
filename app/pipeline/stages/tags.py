"""Tag extraction: who a request's cost is attributed to.

Priority: the ``X-Proxy-Tag`` header, then a ``model@tag`` suffix (always stripped from the
model name, even when the header wins), then the bearer token. A comma-separated list gives
several tags; each is trimmed, checked and de-duplicated. A bad tag in the header or the
suffix is the caller's error; a bearer token that isn't a valid tag, or looks like a real
API key, is simply not used, so secrets never land in the usage table.
"""

from __future__ import annotations

from typing import ClassVar

from app.pipeline.core import Exchange, Next, Reply
from app.services import Services
from app.tagging import bearer_tags, parse_tags, split_model_tag


class TagStage:
    name: ClassVar[str] = "tags"
    passthrough_safe: ClassVar[bool] = True  # handles Frames, or never looks at the stream

    def __init__(self, services: Services) -> None:
        pass

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        model = ex.body.get("model")
        suffix = ""
        if isinstance(model, str):
            model, suffix = split_model_tag(model)
            ex.body["model"] = model
        header = ex.headers.get("x-proxy-tag", "")
        if header.strip():
            ex.tags = parse_tags(header, source="the X-Proxy-Tag header")
        elif suffix:
            ex.tags = parse_tags(suffix, source="the model name")
        else:
            ex.tags = bearer_tags(ex.headers.get("authorization", ""))
        return await call_next(ex)
