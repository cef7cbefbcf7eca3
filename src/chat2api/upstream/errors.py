"""Upstream HTTP status and body → the chat2api error tree, in one place."""

from __future__ import annotations

from typing import Any

import orjson

from chat2api.errors import (
    ChallengeRequired,
    CloudflareChallenge,
    UpstreamError,
    UpstreamForbidden,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)

_CF_MARKERS = (b"cf-please-wait", b"cf_chl_opt", b"challenges.cloudflare.com", b"Just a moment")
_MAX_DETAIL = 300


def _detail(body: bytes, content_type: str) -> tuple[str, dict[str, Any]]:
    """The human message and the structured ``detail`` of an upstream error body."""
    if "json" not in content_type and not body.lstrip().startswith((b"{", b"[")):
        return "", {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", {}
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, str):
        return detail[:_MAX_DETAIL], {}
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("error") or detail.get("code") or ""
        return str(message)[:_MAX_DETAIL], detail
    return "", {}


def _retry_after(headers: dict[str, str], detail: dict[str, Any]) -> float | None:
    clears_in = detail.get("clears_in")
    if isinstance(clears_in, int | float) and clears_in >= 0:
        return float(clears_in)
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


_CHALLENGE_NAMES = {
    "turnstile": "a Turnstile human-verification challenge",
    "arkose": "an Arkose captcha",
    "so": "the session-observer (so) browser check",
    "force_login": "a login for this device or account (force_login)",
}


_CHALLENGE_CODES = {
    "turnstile_required": "turnstile",
    "arkose_required": "arkose",
    "so_required": "so",
    "force_login": "force_login",
}


def challenge_required(challenge: str) -> ChallengeRequired:
    """The error for a challenge chat2api does not solve; ``challenge`` names it.

    ``challenge`` is one name of ``turnstile``, ``arkose``, ``so``,
    ``force_login``, or several joined with ``+``.
    """
    named = " and ".join(_CHALLENGE_NAMES.get(c, c) for c in challenge.split("+"))
    return ChallengeRequired(
        f"The upstream requires {named} ({challenge}), which chat2api does not solve. Use a "
        "CHATGPT_BASE_URL gateway that handles challenges, with CONVERSATION_ONLY=true."
    )


def error_from_response(
    status: int,
    headers: dict[str, str],
    body: bytes,
    *,
    what: str,
    challenge: str | None = None,
) -> UpstreamError:
    """Classify a non-2xx upstream answer.

    ``headers`` have lower-case names. ``challenge`` names a human-verification
    challenge (``turnstile``/``arkose``/``so``) the requirements said was needed;
    a 403 then means that challenge was the reason.
    """
    content_type = headers.get("content-type", "")
    if headers.get("cf-mitigated") == "challenge" or (
        status in (403, 503) and "html" in content_type and any(m in body for m in _CF_MARKERS)
    ):
        return CloudflareChallenge(
            f"The upstream edge answered {what} with a Cloudflare challenge page; "
            "use a proxy (PROXY_URL) or a CHATGPT_BASE_URL gateway that passes it."
        )
    message, detail = _detail(body, content_type)
    suffix = f": {message}" if message else ""
    if status == 401:
        return UpstreamUnauthorized(
            f"The upstream refused the account's access token ({what}){suffix}"
        )
    if status == 403:
        code = str(detail.get("code", "")).lower()
        named = f"{code} {message}".lower()
        if challenge is None:
            challenge = _CHALLENGE_CODES.get(code) or next(
                (c for c in ("turnstile", "arkose") if c in named), None
            )
        if challenge is not None:
            return challenge_required(challenge)
        if not body.strip():
            return UpstreamForbidden(
                f"The upstream rejected the sentinel proof ({what}).",
                code="upstream_sentinel_rejected",
            )
        return UpstreamForbidden(f"The upstream refused the request ({what}){suffix}")
    if status == 429:
        retry_after = _retry_after(headers, detail)
        return UpstreamRateLimited(
            f"The upstream rate-limited this account ({what}){suffix}", retry_after=retry_after
        )
    if 400 <= status < 500:
        return UpstreamRejected(f"The upstream rejected the request with HTTP {status}{suffix}")
    return UpstreamUnavailable(f"The upstream failed with HTTP {status} ({what}){suffix}")
