"""The one error tree of the relay, rendered in each client's dialect by :mod:`app.dialects`.

::

    RelayError
    ├── ClientError                  the caller sent something we cannot serve (4xx)
    │   ├── BadRequest               400: malformed JSON, wrong types, missing fields
    │   │   └── Untranslatable       400: only a provider of the client's own API can take it
    │   ├── AuthenticationError      401: REQUIRE_API_KEY and no valid key
    │   ├── ModelNotFound            404: no provider serves that model and no default is set
    │   ├── Forbidden                403: a stage refuses this caller or model
    │   ├── QuotaExceeded            429: a tag's budget is spent (spend_limit stage)
    │   ├── RateLimited              429: a rate limit of the relay's own (limits stage)
    │   ├── PayloadTooLarge          413
    │   └── UnsupportedMediaType     415
    ├── ShuttingDown                 503: the relay stopped before the request finished
    ├── Overloaded                   503: request bodies in flight take all MAX_INFLIGHT_BODY_BYTES
    └── UpstreamError                the provider failed us; the status keeps its meaning
        ├── UpstreamStatusError      the provider answered with an error status (401, 404, 429, 5xx...)
        ├── UpstreamUnavailable      502: connection refused, reset, DNS
        ├── UpstreamTimeout          504
        ├── UpstreamProtocolError    502: the provider sent something we cannot parse
        └── UpstreamLimitExceeded    502: the provider's reply breaks a limit (size, headers, line)

Errors raised before a response starts become an HTTP status; errors raised while a stream
is under way become the dialect's final error frame.
"""

from __future__ import annotations

from collections.abc import Mapping


class RelayError(Exception):
    """Base of every error the relay reports to a client."""

    status = 500
    type = "server_error"
    code: str | None = None
    outcome = "error"
    headers: Mapping[str, str] = {}  # sent with the error response (not with a mid-stream error frame)

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if headers:
            self.headers = {**self.headers, **headers}


class ClientError(RelayError):
    status = 400
    type = "invalid_request_error"
    outcome = "client_error"


class BadRequest(ClientError):
    pass


class Untranslatable(BadRequest):
    """Part of a client's request that only a provider speaking the client's own API can take
    (an Anthropic server tool, a Responses API built-in tool): such a provider gets the request
    as written, any other answers with this 400."""


class AuthenticationError(ClientError):
    """401: the relay requires an API key and this request has no valid one."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFound(ClientError):
    status = 404
    code = "model_not_found"


class Forbidden(ClientError):
    """403: a stage's policy refuses this request (a model blocked for a tag, say)."""

    status = 403
    type = "permission_error"
    code = "forbidden"


class QuotaExceeded(ClientError):
    """429 that retrying will not cure: a budget is spent. OpenAI's SDKs honour
    ``x-should-retry: false`` and do not retry it."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"
    headers: Mapping[str, str] = {"x-should-retry": "false"}


class RateLimited(ClientError):
    """429 from the relay's own rate limits (app/limits.py): retrying after ``Retry-After`` works."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    outcome = "rate_limited"
    scope = "key"  # key | tag | deployment: a deployment's limit sends a route to its next one


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"


class ShuttingDown(RelayError):
    status = 503
    code = "shutting_down"
    outcome = "shutdown"
    headers: Mapping[str, str] = {"retry-after": "1"}  # another instance, or this one restarted, will serve it


class Overloaded(RelayError):
    status = 503
    code = "overloaded"
    outcome = "overloaded"
    headers: Mapping[str, str] = {"retry-after": "1"}  # bodies in flight end within seconds, as a rule


class UpstreamError(RelayError):
    status = 502
    type = "upstream_error"
    outcome = "upstream_error"


class UpstreamStatusError(UpstreamError):
    """The provider answered with an error status; the caller sees the same status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after: float | None = None  # what the provider's Retry-After asked for
        # A provider's 2xx/3xx can't be an error to the caller; anything odd becomes 502.
        self.status = status if 400 <= status <= 599 else 502
        if type:
            self.type = type
        elif self.status == 429:
            self.type = "rate_limit_error"
        elif self.status in (401, 403):
            self.type = "authentication_error"
        elif self.status < 500:
            self.type = "invalid_request_error"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamLimitExceeded(UpstreamError):
    """The reply is larger than the relay takes (its body, a header, a line of a stream)."""

    code = "upstream_limit_exceeded"


class NotSupported(RelayError):
    """The relay cannot serve this (yet): a provider family without an adapter, say."""

    status = 501
    type = "not_implemented"
    outcome = "client_error"
