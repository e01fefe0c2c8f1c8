"""Tags from headers a trusted front end sets: an SSO proxy's ``X-Forwarded-User``, a team
header, a project header. Each configured header's value (comma-separated for several) becomes
tags, with the header's prefix in front, added to the tags the ``tags`` stage found (or, with
``replace``, instead of them). List it after ``tags``.

Options: ``headers``, a table of header name = tag prefix (``""`` for none); ``replace``
(default false); ``required`` (default false: a request without any of the headers is refused
with 403, for a relay that must only be reached through the proxy).
"""

from __future__ import annotations

from typing import ClassVar

from app.errors import BadRequest, Forbidden
from app.internal import Reply
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next, PipelineError
from app.tagging import MAX_TAGS, parse_tags


class HeaderTagStage:
    name: ClassVar[str] = "header_tags"
    passthrough_safe: ClassVar[bool] = True  # never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        table = ctx.option("headers", kind=dict)
        if not table:
            raise PipelineError(f"stage {ctx.name!r}: give at least one header, e.g. headers = {{ x-team = 'team:' }}")
        self.headers: list[tuple[str, str]] = []
        for header, prefix in table.items():
            if not isinstance(prefix, str):
                raise PipelineError(f"stage {ctx.name!r}: the prefix of header {header!r} must be a string")
            self.headers.append((str(header).strip().lower(), prefix))
        self.replace = ctx.option("replace", False)
        self.required = ctx.option("required", False)

    def tags_of(self, ex: Exchange) -> list[str]:
        found: list[str] = []
        for header, prefix in self.headers:
            value = ex.headers.get(header, "")
            for item in value.split(","):
                if item.strip():
                    found.append(prefix + item.strip())
        return parse_tags(",".join(found), source="the " + ", ".join(h for h, _ in self.headers) + " header(s)")

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        found = self.tags_of(ex)
        if not found and self.required:
            names = ", ".join(h for h, _ in self.headers)
            raise Forbidden(f"this relay only serves requests carrying one of these headers: {names}")
        if found:
            merged = found if self.replace else [*ex.tags, *(t for t in found if t not in ex.tags)]
            if len(merged) > MAX_TAGS:
                raise BadRequest(f"too many tags: at most {MAX_TAGS}, header tags included")
            ex.tags = merged
        return await call_next(ex)
