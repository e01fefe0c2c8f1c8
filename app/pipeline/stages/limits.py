"""Rate limits (app/limits.py): requests and tokens per minute per relay key, tag and
deployment. Listed after ``resolve``, so a deployment's limit is known; on a route a
deployment at its limit sends the request to the next deployment, while a key's or a tag's
limit is counted once per request, not once per attempt."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from app.internal import Reply
from app.limits import Limit, Limiter
from app.pipeline.context import StageContext
from app.pipeline.core import Exchange, Next
from app.pipeline.helpers import after_reply


class LimitStage:
    name: ClassVar[str] = "limits"
    passthrough_safe: ClassVar[bool] = True  # never looks at the stream

    def __init__(self, ctx: StageContext) -> None:
        self.limiter: Limiter = ctx.services.limiter

    async def __call__(self, ex: Exchange, call_next: Next) -> Reply:
        limiter = self.limiter
        if not limiter.limits:
            return await call_next(ex)
        caller: list[Limit] | None = ex.state.get("caller_limits")
        if caller is None:  # the first attempt of the request: the key's and tags' limits count it
            subjects = [f"tag:{tag}" for tag in ex.tags]
            key = ex.state.get("api_key_name")
            if key:
                subjects.append(f"key:{key}")
            caller = limiter.applying(subjects)
            headers = limiter.admit(caller)
            ex.state["caller_limits"] = caller
            ex.state["ratelimit_headers"] = headers
        deployment = limiter.applying([f"deployment:{ex.target.label}"] if ex.target is not None else [])
        deployment_headers = limiter.admit(deployment)
        reply = await call_next(ex)
        reply.headers.update(ex.state.get("ratelimit_headers") or deployment_headers)
        return await after_reply(ex, reply, partial(_count_tokens, limiter, caller + deployment, reply))


def _count_tokens(
    limiter: Limiter, limits: list[Limit], reply: Reply, ex: Exchange, error: BaseException | None
) -> None:
    """The tokens the provider reported, once the reply is over: a whole body's own usage (the
    meter stage, an outer one, has not read it yet), or what a stream's usage events said."""
    usage = reply.usage if reply.stream is None and reply.usage is not None else ex.usage
    if usage.reported:
        limiter.charge(limits, usage.prompt_total + usage.output)
