"""Upstream error responses, byte for byte as spec 6 describes them.

Each function returns the complete Starlette response for one failure, so
account states, sentinel refusals and injected faults all answer the same way.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

JSON = "application/json"

INVALID_JWT = {
    "detail": {
        "message": "Could not parse your authentication token. Please try signing in again.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_jwt",
    }
}
TOKEN_EXPIRED = {
    "detail": {
        "code": "token_expired",
        "message": "Your authentication token has expired. Please try signing in again.",
    }
}
UNUSUAL_ACTIVITY = {
    "detail": "Unusual activity has been detected from your device. Try again later."
}
SERVER_ERROR = {
    "detail": "Hmm...something seems to have gone wrong. Maybe try me again in a little bit."
}
RATE_LIMIT_MESSAGE = "You have sent too many messages to the model. Please try again later."
TURNSTILE_REQUIRED = {
    "detail": {
        "code": "turnstile_required",
        "message": "Human verification (Turnstile) is required for this request.",
    }
}
ARKOSE_REQUIRED = {
    "detail": {
        "code": "arkose_required",
        "message": "Human verification (Arkose) is required for this request.",
    }
}
SO_REQUIRED = {
    "detail": {
        "code": "so_required",
        "message": "Session observer verification is required for this request.",
    }
}
FORCE_LOGIN = {
    "detail": {
        "code": "force_login",
        "message": "Please log in again to continue.",
    }
}
CHALLENGES = {
    "turnstile": TURNSTILE_REQUIRED,
    "arkose": ARKOSE_REQUIRED,
    "so": SO_REQUIRED,
    "force_login": FORCE_LOGIN,
}
NOT_FOUND = {"detail": "Not Found"}
CLOUDFLARE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow"></head><body>
<div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">chatgpt.com</h1>
<div id="cf-please-wait"><p>Verifying you are human. This may take a few seconds.</p></div>
</div></div>
<script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'chatgpt.com',cType: 'managed'};
var a=document.createElement('script');
a.src='https://challenges.cloudflare.com/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1';
document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>
"""


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with `Content-Type` exactly `application/json`."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def invalid_jwt() -> Response:
    """401 for a bearer token that is not a readable JWT."""
    return json_response(401, INVALID_JWT)


def unauthorized() -> Response:
    """401 when `/backend-api` is called without a bearer token."""
    return json_response(401, {"detail": "Unauthorized"})


def token_expired() -> Response:
    """401 for a JWT whose `exp` has passed."""
    return json_response(401, TOKEN_EXPIRED)


def rate_limited(clears_in: int) -> Response:
    """429 model cap with `clears_in` seconds."""
    detail = {"clears_in": clears_in, "code": "model_cap_exceeded", "message": RATE_LIMIT_MESSAGE}
    return json_response(429, {"detail": detail})


def unusual_activity() -> Response:
    """403 anti-abuse block (2025–2026 wording)."""
    return json_response(403, UNUSUAL_ACTIVITY)


def server_error() -> Response:
    """500 overload answer."""
    return json_response(500, SERVER_ERROR)


def sentinel_rejected() -> Response:
    """403 with an empty body: proof missing, wrong, given up or reused; unknown token."""
    return Response(b"", status_code=403)


def challenge_required(kind: str) -> Response:
    """403 when a required challenge (`turnstile`, `arkose`, `so`, `force_login`) is unmet."""
    return json_response(403, CHALLENGES[kind])


def not_found() -> Response:
    """404 of an endpoint this deployment does not serve (E3 paths in era `e2`)."""
    return json_response(404, NOT_FOUND)


def cloudflare() -> Response:
    """403 Cloudflare managed-challenge page (HTML, not JSON)."""
    return Response(
        CLOUDFLARE_PAGE,
        status_code=403,
        media_type="text/html; charset=UTF-8",
        headers={
            "cf-mitigated": "challenge",
            "server": "cloudflare",
            "cf-ray": "8f00000000000000-SJC",
        },
    )


CONVERSATION_NOT_FOUND = {
    "detail": {
        "code": "conversation_not_found",
        "message": "Conversation not found or you do not have access to it.",
    }
}
MESSAGE_NOT_FOUND = {
    "detail": {
        "code": "message_not_found",
        "message": "The parent message was not found in this conversation.",
    }
}


def conversation_not_found() -> Response:
    """404 for an unknown conversation, or one another account owns (spec 6)."""
    return json_response(404, CONVERSATION_NOT_FOUND)


def message_not_found() -> Response:
    """404 when a follow-up's `parent_message_id` is not a node of its conversation."""
    return json_response(404, MESSAGE_NOT_FOUND)


def duplicate_message_id(message_id: str) -> Response:
    """400 when a kept turn reuses a message id its conversation already holds."""
    body = {
        "detail": {
            "code": "duplicate_message_id",
            "message": f"Message id {message_id} already exists in this conversation.",
        }
    }
    return json_response(400, body)
