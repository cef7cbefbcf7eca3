"""RefreshToken → AccessToken at the OAuth token endpoint (spec 7.2).

The mobile app's client id and redirect, JSON body; the endpoint's base URL
is ``OAUTH_BASE_URL`` so tests and private gateways can point it elsewhere.
A rotated RefreshToken in the answer replaces the old one, which stops
working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from chat2api.errors import UpstreamError, UpstreamUnavailable
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import SessionPool, json_body, map_transport_errors, sticky_proxy

CLIENT_ID = "app_LlGpXReQgckcGGUo2JrYvtJK"
REDIRECT_URI = "com.openai.chat://auth.openai.com/ios/com.openai.chat/callback"
DEFAULT_LIFETIME = 864000.0


class RefreshRejected(UpstreamError):
    """The OAuth endpoint refused the RefreshToken (revoked, expired, reused)."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "refresh_token_rejected"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A fresh AccessToken, its lifetime in seconds, and a rotated RefreshToken if any."""

    access_token: str
    expires_in: float
    refresh_token: str | None


class OAuthClient:
    """Exchanges RefreshTokens through the pooled HTTP sessions."""

    def __init__(self, sessions: SessionPool, base_url: str, proxies: Sequence[str] = ()) -> None:
        self._sessions = sessions
        self._base_url = base_url.rstrip("/")
        self._proxies = list(proxies)

    async def refresh(self, refresh_token: str, *, key: str | None = None) -> TokenGrant:
        """Exchange ``refresh_token``; raises ``RefreshRejected`` when it is refused.

        ``key`` (a pool account's id) sends it through that account's own proxy
        (``sticky_proxy``); without one, through the RefreshToken's.
        """
        proxy = sticky_proxy(self._proxies, key or refresh_token) if self._proxies else None
        session = self._sessions.session(self._base_url, proxy)
        body = {
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "redirect_uri": REDIRECT_URI,
            "refresh_token": refresh_token,
        }
        with map_transport_errors("refreshing an access token"):
            response, content = await session.fetch(
                "POST",
                self._base_url + "/oauth/token",
                data=json_body(body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=self._sessions.timeout,
            )
        if response.status_code in (400, 401, 403):
            reason = _oauth_error(content)
            raise RefreshRejected(f"The RefreshToken was refused ({reason}).")
        if response.status_code != 200:
            headers = response.headers.lower()
            raise error_from_response(response.status_code, headers, content, what="token refresh")
        try:
            data = orjson.loads(content)
            access = data["access_token"]
            lifetime = float(data.get("expires_in") or DEFAULT_LIFETIME)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable("The token endpoint sent an unreadable answer.") from exc
        rotated = data.get("refresh_token")
        return TokenGrant(
            access_token=str(access),
            expires_in=lifetime,
            refresh_token=str(rotated) if rotated and rotated != refresh_token else None,
        )


def _oauth_error(body: bytes) -> str:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "no reason given"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("code") or error.get("message")
        return str(error or "no reason given")[:80]
    return "no reason given"
