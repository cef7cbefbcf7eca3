"""The one error tree of chat2api.

Every failure a client can see is one of these classes; the API layer turns
any of them into the OpenAI error envelope ``{"error": {"message", "type",
"param", "code"}}`` with the class's HTTP status, so OpenAI SDKs classify it
(400 BadRequest, 401 Authentication, 403 PermissionDenied, 404 NotFound,
429 RateLimit, 5xx InternalServer).

    Chat2APIError
    ├── InvalidRequest                 400 invalid_request_error
    │   ├── ModelNotFound              404
    │   └── RequestTooLarge            413 body beyond MAX_REQUEST_BYTES
    ├── AuthenticationFailed           401 (the client's own key)
    ├── TooManyAttempts                429 failed logins from one address, for a while
    ├── PoolError                      the account pool cannot serve now
    │   ├── NoUsableAccount            503 empty pool, or every account dead
    │   └── PoolBusy                   503 every usable account at its limit
    ├── StoreUnavailable               503 the store (SQLite, Redis) cannot be used now
    ├── ModelOutputError               502 the answer broke the request's contract
    │                                      (response_format, tool_choice) after a
    │                                      correction round
    └── UpstreamError                  failures of the ChatGPT backend
        ├── UpstreamUnauthorized       401 token invalid or expired
        ├── UpstreamRateLimited        429 (+ Retry-After when known)
        ├── UpstreamForbidden          403 unusual activity / proof rejected
        ├── ChallengeRequired          403 turnstile / arkose needed
        ├── CloudflareChallenge        503 the edge served a challenge page
        ├── ProofOfWorkTooHard         403 difficulty above POW_DIFFICULTY
        ├── ProofOfWorkTimeout         503 no answer within the time budget
        ├── UpstreamRejected           4xx the upstream refused the request body
        ├── UpstreamModelUnavailable   404 the account cannot use the model (CHECK_MODEL)
        ├── UpstreamUnavailable        502 5xx, malformed or truncated answer
        ├── UpstreamConnectError       502 connection refused / reset
        └── UpstreamTimeout            504

Messages never contain a token or key: callers pass fingerprints only.
``retryable`` tells the pool whether another account might succeed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Chat2APIError(Exception):
    """Base class: carries what the OpenAI error envelope needs."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error envelope for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(Chat2APIError):
    """The client's request is malformed or names something unsupported."""

    status_code = 400
    error_type = "invalid_request_error"


class UnsupportedParameter(InvalidRequest):
    """An explicit ask chat2api cannot honour, refused rather than silently ignored."""

    default_code = "unsupported_parameter"

    def __init__(self, param: str, why: str) -> None:
        super().__init__(f"'{param}' is not supported by chat2api: {why}", param=param)


class ModelNotFound(InvalidRequest):
    status_code = 404
    default_code = "model_not_found"


class RequestTooLarge(InvalidRequest):
    """The request body is larger than ``MAX_REQUEST_BYTES``."""

    status_code = 413
    default_code = "request_too_large"


class AuthenticationFailed(Chat2APIError):
    """The key the client sent is not accepted by this deployment."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PoolError(Chat2APIError):
    """The account pool cannot serve this request right now."""

    status_code = 503
    error_type = "server_error"


class NoUsableAccount(PoolError):
    default_code = "no_usable_account"


class PoolBusy(PoolError):
    default_code = "accounts_busy"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", "1")


class TooManyAttempts(Chat2APIError):
    """Too many failed admin or gateway logins from one address: wait before the next."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))


class StoreUnavailable(Chat2APIError):
    """The store cannot be read or written (Redis down, disk full): an outage, not a bug."""

    status_code = 503
    error_type = "server_error"
    default_code = "store_unavailable"
    retryable = False

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", "5")


class ModelOutputError(Chat2APIError):
    """The model answered, but not as the request demanded, even when asked again.

    Codes: ``invalid_structured_output`` (``response_format`` / ``text.format``),
    ``tool_choice_not_followed`` (``tool_choice`` ``"required"`` or a named function).
    """

    status_code = 502
    error_type = "server_error"
    default_code = "invalid_structured_output"


class UpstreamError(Chat2APIError):
    """The ChatGPT backend (or the path to it) failed."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"


class UpstreamUnauthorized(UpstreamError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "upstream_unauthorized"


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "upstream_rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(max(1, round(retry_after))))


class UpstreamForbidden(UpstreamError):
    status_code = 403
    error_type = "permission_error"
    default_code = "upstream_unusual_activity"
    retryable = True


class ChallengeRequired(UpstreamError):
    status_code = 403
    error_type = "permission_error"
    default_code = "upstream_challenge_required"


class CloudflareChallenge(UpstreamError):
    status_code = 503
    default_code = "upstream_cloudflare_challenge"
    retryable = True


class ProofOfWorkTooHard(UpstreamError):
    status_code = 403
    error_type = "permission_error"
    default_code = "pow_difficulty_too_high"
    retryable = True


class ProofOfWorkTimeout(UpstreamError):
    status_code = 503
    default_code = "pow_timeout"
    retryable = True


class UpstreamRejected(UpstreamError):
    """The upstream refused the request itself (4xx other than 401/403/429)."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "upstream_rejected"


class UpstreamModelUnavailable(UpstreamError):
    """The upstream says this account cannot use the model; another account may."""

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"
    retryable = True


class UpstreamUnavailable(UpstreamError):
    status_code = 502
    default_code = "upstream_unavailable"
    retryable = True


class UpstreamConnectError(UpstreamError):
    status_code = 502
    default_code = "upstream_connect_error"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"
    retryable = True
