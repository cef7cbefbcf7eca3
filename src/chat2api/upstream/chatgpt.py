"""The ChatGPT web backend client: bootstrap, sentinel, conversation.

One ``ChatGPTBackend`` per app. A conversation takes three upstream calls
(spec sections 1.2, 3 and 4):

1. ``GET /`` once per base URL and ``BUILD_CACHE_SECONDS`` (the build id and
   script URLs feed the browser config of the sentinel tokens);
2. ``POST …/sentinel/chat-requirements`` with the requirements token ``p``;
   the answer may ask for a proof of work (solved off the event loop) or a
   human-verification challenge (not solved: a clear error instead);
3. ``POST …/conversation`` with the sentinel headers; the SSE body is handed
   back as raw bytes for ``chat2api.protocol`` to decode.

``CONVERSATION_ONLY`` skips 1–2, for gateways that do the sentinel themselves.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from chat2api.errors import (
    ChallengeRequired,
    ProofOfWorkTooHard,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from chat2api.sentinel import (
    BrowserProfile,
    PowSolver,
    build_config,
    is_too_hard,
    parse_home_page,
)
from chat2api.sentinel import requirements_token as make_requirements_token
from chat2api.settings import Settings
from chat2api.upstream.browser import document_headers, fetch_headers
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import (
    SessionPool,
    iter_body,
    json_body,
    map_transport_errors,
    open_stream,
)
from chat2api.upstream.transport import Reply, Session

log = logging.getLogger(__name__)

FALLBACK_BUILD = "prod-f8b0b5ba4b2a3a6ddbd8f5a4b9c79e1c12f0c53c"
FALLBACK_SCRIPT = "https://chatgpt.com/backend-api/sentinel/sdk.js"


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible name for a secret, safe to log."""
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=256)
def _authorization(access_token: str) -> str:
    # One header value per token, shared by all of its requests in flight:
    # an access token is 1-2 KB, and a burst has hundreds of requests waiting.
    # Only tokens in use at once need to share; 256 bounds what stays behind.
    return "Bearer " + access_token


@functools.lru_cache(maxsize=4096)
def _token_device_id(access_token: str) -> str:
    # uuid5 hashes with SHA-1 and builds a UUID object: worth caching per token.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "chat2api:" + access_token))


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the request runs as: an access token (and Team workspace) or nobody."""

    access_token: str | None = None
    account_id: str | None = None
    # The login-free identity: one per Credentials object (so the sentinel and
    # the conversation of one request agree), or a kept one to continue a
    # login-free conversation.
    device: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def anonymous(self) -> bool:
        return self.access_token is None

    @property
    def device_id(self) -> str:
        """The device id: stable per token; per request (or as kept) when login-free."""
        if self.access_token is None:
            return self.device
        return _token_device_id(self.access_token)

    def __repr__(self) -> str:  # never print the token itself
        who = "anonymous" if self.access_token is None else fingerprint(self.access_token)
        return f"Credentials({who}, account_id={self.account_id!r})"


@dataclass(frozen=True, slots=True)
class _HomeInfo:
    build_id: str
    scripts: tuple[str, ...]
    fetched_at: float


@dataclass(slots=True)
class Target:
    """One upstream base URL and the proxy to reach it through."""

    base_url: str
    proxy: str | None


@dataclass(slots=True)
class OpenedConversation:
    """A conversation whose upstream answered 200; ``body`` streams SSE bytes."""

    body: AsyncGenerator[bytes, None]
    response: Reply
    target: Target
    credentials: Credentials

    async def aclose(self) -> None:
        """Abort the upstream transfer if it is still running, and close ``body``.

        Closed here, ``body`` is not left to the event loop's finalizer hook
        (a task and a loop wake-up per answer).
        """
        await self.response.aclose()
        if not getattr(self.body, "ag_running", False):  # not from inside its own await
            await self.body.aclose()


class ChatGPTBackend:
    """Talks to the ChatGPT web backend for one app (see module docstring)."""

    def __init__(self, settings: Settings, sessions: SessionPool, solver: PowSolver) -> None:
        self._settings = settings
        self._sessions = sessions
        self._solver = solver
        self._profile = BrowserProfile.random()
        self._home: dict[str, _HomeInfo] = {}
        self._home_locks: dict[str, asyncio.Lock] = {}
        self._targets = itertools.cycle(settings.chatgpt_base_url)
        self._proxies = itertools.cycle(settings.proxy_url) if settings.proxy_url else None

    @property
    def user_agent(self) -> str:
        return self._profile.user_agent

    def next_target(self) -> Target:
        """Round-robin over CHATGPT_BASE_URL and, independently, PROXY_URL."""
        proxy = next(self._proxies) if self._proxies is not None else None
        return Target(next(self._targets), proxy)

    def _headers(self, target: Target, creds: Credentials, *, stream: bool) -> dict[str, str]:
        headers = {
            **fetch_headers(self._profile.user_agent),
            "Accept": "text/event-stream" if stream else "*/*",
            "Accept-Language": "en-US,en;q=0.9",
            "Content-Type": "application/json",
            "OAI-Device-Id": creds.device_id,
            "OAI-Language": "en-US",
            "Origin": target.base_url,
            "Referer": target.base_url + "/",
            "Priority": "u=1, i",
        }
        if creds.access_token is not None:
            headers["Authorization"] = _authorization(creds.access_token)
        if creds.account_id:
            headers["ChatGPT-Account-Id"] = creds.account_id
        if self._settings.auth_key:
            headers["authkey"] = self._settings.auth_key
        return headers

    @staticmethod
    def _prefix(creds: Credentials) -> str:
        return "/backend-anon" if creds.anonymous else "/backend-api"

    async def home_info(self, target: Target) -> _HomeInfo:
        """Build id and script URLs of the web app, cached per base URL."""
        ttl = self._settings.build_cache_seconds
        info = self._home.get(target.base_url)
        if info is not None and time.monotonic() - info.fetched_at < ttl:
            return info
        lock = self._home_locks.setdefault(target.base_url, asyncio.Lock())
        async with lock:  # single flight: one fetch however many requests wait
            info = self._home.get(target.base_url)
            if info is not None and time.monotonic() - info.fetched_at < ttl:
                return info
            info = await self._fetch_home(target)
            self._home[target.base_url] = info
            return info

    async def _fetch_home(self, target: Target) -> _HomeInfo:
        session = self._sessions.session(target.base_url, target.proxy)
        headers = dict(document_headers(self._profile.user_agent))
        if self._settings.auth_key:
            headers["authkey"] = self._settings.auth_key
        with map_transport_errors("fetching the home page"):
            response, page = await session.fetch(
                "GET",
                target.base_url + "/",
                headers=headers,
                timeout=self._sessions.timeout,
                follow_redirects=True,
            )
        html = page.decode("utf-8", "replace") if response.status_code == 200 else ""
        assets = parse_home_page(html)
        scripts = assets.scripts or (FALLBACK_SCRIPT,)
        if assets.build_id is None:
            log.warning(
                "home page of %s gave HTTP %s without a build id; using the fallback",
                target.base_url,
                response.status_code,
            )
            # Cache the fallback briefly so a broken page is not fetched per request.
            fallback_age = time.monotonic() - max(0.0, self._settings.build_cache_seconds - 60)
            return _HomeInfo(FALLBACK_BUILD, scripts, fallback_age)
        return _HomeInfo(assets.build_id, scripts, time.monotonic())

    def session(self, target: Target) -> Session:
        """The pooled session for ``target``."""
        return self._sessions.session(target.base_url, target.proxy)

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for plain upstream requests."""
        return self._sessions.timeout

    async def request_json(
        self,
        target: Target,
        method: str,
        path: str,
        *,
        credentials: Credentials,
        body: Any = None,
        what: str,
    ) -> dict[str, Any]:
        """One JSON call to the backend as ``credentials``; errors mapped, JSON object back."""
        with map_transport_errors(what):
            response, content = await self.session(target).fetch(
                method,
                target.base_url + path,
                data=json_body(body) if body is not None else None,
                headers=self._headers(target, credentials, stream=False),
                timeout=self._sessions.timeout,
            )
        if response.status_code not in (200, 201):
            raise error_from_response(
                response.status_code,
                response.headers.lower(),
                content,
                what=what,
            )
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamUnavailable(f"The upstream sent invalid JSON ({what}).") from exc
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"The upstream sent an unexpected answer ({what}).")
        return data

    async def sentinel_headers(
        self, target: Target, creds: Credentials
    ) -> tuple[dict[str, str], str | None]:
        """The sentinel headers for one conversation, and any challenge left unsolved."""
        home = await self.home_info(target)
        profile = replace(
            self._profile, script_src=random.choice(home.scripts), build_id=home.build_id
        )
        config = build_config(profile)
        data = await self.request_json(
            target,
            "POST",
            self._prefix(creds) + "/sentinel/chat-requirements",
            credentials=creds,
            body={"p": make_requirements_token(config)},
            what="sentinel chat-requirements",
        )
        if data.get("force_login"):
            raise UpstreamUnauthorized("The upstream requires a login for this device or account.")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable("The upstream's chat-requirements answer had no token.")
        out = {"OpenAI-Sentinel-Chat-Requirements-Token": token}
        arkose = data.get("arkose") or {}
        if isinstance(arkose, dict) and arkose.get("required"):
            raise ChallengeRequired(
                "The upstream requires an Arkose captcha, which chat2api does not solve. Use a "
                "CHATGPT_BASE_URL gateway that handles challenges, with CONVERSATION_ONLY=true."
            )
        turnstile = data.get("turnstile") or {}
        challenge = (
            "turnstile" if isinstance(turnstile, dict) and turnstile.get("required") else None
        )
        pow_ = data.get("proofofwork") or {}
        if isinstance(pow_, dict) and pow_.get("required"):
            seed, difficulty = str(pow_.get("seed", "")), str(pow_.get("difficulty", "")).lower()
            if not seed or not re.fullmatch(r"[0-9a-f]{1,64}", difficulty):
                raise UpstreamUnavailable("The upstream asked for a malformed proof of work.")
            if is_too_hard(difficulty, self._settings.pow_difficulty):
                raise ProofOfWorkTooHard(
                    f"Proof of work difficulty too high: {difficulty} (this deployment solves "
                    f"down to POW_DIFFICULTY={self._settings.pow_difficulty})."
                )
            out["OpenAI-Sentinel-Proof-Token"] = await self._solver.solve(seed, difficulty, config)
        return out, challenge

    async def open_conversation(
        self, creds: Credentials, body: dict[str, Any], target: Target | None = None
    ) -> OpenedConversation:
        """Start a conversation; returns once the upstream answered 200."""
        target = target or self.next_target()
        sentinel: dict[str, str] = {}
        challenge = None
        if not self._settings.conversation_only:
            sentinel, challenge = await self.sentinel_headers(target, creds)
        headers = self._headers(target, creds, stream=True) | sentinel
        session = self._sessions.session(target.base_url, target.proxy)
        response = await open_stream(
            session,
            target.base_url + self._prefix(creds) + "/conversation",
            data=json_body(body),
            headers=headers,
            idle_timeout=self._sessions.stream_timeout,
        )
        if response.status_code != 200:
            try:
                with map_transport_errors("reading an error answer"):
                    content = await response.aread()
            finally:
                await response.aclose()
            raise error_from_response(
                response.status_code,
                response.headers.lower(),
                content,
                what="conversation",
                challenge=challenge,
            )
        return OpenedConversation(iter_body(response), response, target, creds)
