"""The ChatGPT web backend client: bootstrap, sentinel, conversation, in two eras.

One ``ChatGPTBackend`` per app. Both eras start with ``GET /`` once per base
URL and ``BUILD_CACHE_SECONDS`` (the build id and script URLs feed the
browser config of the sentinel tokens; E3 also sends the build as
``OAI-Client-Version``). Then (spec sections 1, 3 and 4):

* E2: ``POST …/sentinel/chat-requirements`` with the requirements token
  ``p`` (the answer may ask for a SHA3 proof of work, solved off the event
  loop), then ``POST …/conversation`` with the sentinel headers.
* E3: ``POST …/sentinel/chat-requirements/prepare`` → ``prepare_token`` and
  an FNV proof of work (``~S``) → ``…/finalize`` → the requirements token
  (and ``so_token``); ``POST …/f/conversation/prepare`` (``X-Conduit-Token:
  no-token``) → the conduit token; ``POST …/f/conversation`` with both. An
  empty 403 there (a proof or conduit token refused) gets one fresh round.
  A dropped stream is resumed (``resume``) and an abandoned one stopped
  (``stop``).

Which era a base URL gets is ``UPSTREAM_PROTOCOL`` (``eras.EraChoice``). A
human-verification challenge is never solved (``requirements``). The SSE
body is handed back as raw bytes for ``chat2api.protocol`` to decode.
``CONVERSATION_ONLY`` skips the sentinel calls, for gateways that do them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from chat2api.errors import (
    UpstreamError,
    UpstreamForbidden,
    UpstreamRejected,
    UpstreamUnavailable,
)
from chat2api.sentinel import (
    BrowserProfile,
    ConfigLayout,
    ConfigTemplate,
    PowSolver,
    parse_home_page,
)
from chat2api.settings import Settings
from chat2api.upstream.browser import document_headers, fetch_headers
from chat2api.upstream.catalog import ModelCatalog
from chat2api.upstream.e3 import conversation_body as e3_conversation_body
from chat2api.upstream.e3 import prepare_body
from chat2api.upstream.eras import Era, EraChoice
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import (
    SessionPool,
    iter_body,
    json_body,
    map_transport_errors,
    open_stream,
    sticky_choice,
    sticky_proxy,
)
from chat2api.upstream.requirements import read_requirements
from chat2api.upstream.transport import Reply, Session
from chat2api.values import Credentials
from chat2api.values import fingerprint as fingerprint  # the old import path, still used

log = logging.getLogger(__name__)

FALLBACK_BUILD = "prod-f8b0b5ba4b2a3a6ddbd8f5a4b9c79e1c12f0c53c"
FALLBACK_SCRIPT = "https://chatgpt.com/backend-api/sentinel/sdk.js"


@functools.lru_cache(maxsize=256)
def _authorization(access_token: str) -> str:
    # One header value per token, shared by all of its requests in flight:
    # an access token is 1-2 KB, and a burst has hundreds of requests waiting.
    # Only tokens in use at once need to share; 256 bounds what stays behind.
    return "Bearer " + access_token


@dataclass(frozen=True, slots=True)
class _HomeInfo:
    build_id: str
    scripts: tuple[str, ...]
    fetched_at: float
    client_version: str = "prod-0000000000000000000000000000000000000000"
    build_number: str | None = None


@dataclass(slots=True)
class Target:
    """One upstream base URL and the proxy to reach it through."""

    base_url: str
    proxy: str | None
    impersonate: str | None = None  # the account's own, of IMPERSONATE's list


@dataclass(slots=True)
class OpenedConversation:
    """A conversation whose upstream answered 200; ``body`` streams SSE bytes."""

    body: AsyncGenerator[bytes, None]
    response: Reply
    target: Target
    credentials: Credentials
    era: Era = "e2"
    home: _HomeInfo | None = None  # E3: what its resume and stop calls send again
    conduit: str = "no-token"  # E3: the conduit token of the send, which a resume shows

    async def aclose(self) -> None:
        """Abort the upstream transfer if it is still running, and close ``body``.

        Closed here, ``body`` is not left to the event loop's finalizer hook
        (a task and a loop wake-up per answer).
        """
        await self.response.aclose()
        if not getattr(self.body, "ag_running", False):  # not from inside its own await
            await self.body.aclose()


MAX_PROFILES = 10_000  # accounts whose browser profile is kept in memory
MAX_HEADER_SETS = 512  # (account, base URL, kind of call) whose headers are kept
MAX_TEMPLATES = 4096  # (account, era) whose sentinel config template is kept, ~1 KB each


class ChatGPTBackend:
    """Talks to the ChatGPT web backend for one app (see module docstring)."""

    def __init__(self, settings: Settings, sessions: SessionPool, solver: PowSolver) -> None:
        self._settings = settings
        self._sessions = sessions
        self._solver = solver
        self._profile = BrowserProfile.random()
        self._profiles: dict[str, BrowserProfile] = {}  # per account (``profile_for``)
        # The sentinel config of each (account, era): (its profile, the template).
        self._templates: dict[tuple[str | None, Era], tuple[BrowserProfile, ConfigTemplate]] = {}
        self._home: dict[str, _HomeInfo] = {}
        self._header_sets: dict[tuple[str | bool | None, ...], dict[str, str]] = {}
        self._home_locks: dict[str, asyncio.Lock] = {}
        self._targets = itertools.cycle(settings.chatgpt_base_url)
        self._proxies = itertools.cycle(settings.proxy_url) if settings.proxy_url else None
        self._proxy_session = uuid.uuid4().hex[:16]  # `{}` of requests without an account
        self._eras = EraChoice(settings.upstream_protocol)
        self._session_id = str(uuid.uuid4())  # OAI-Session-Id: one per process, as per tab
        self._stopping: set[asyncio.Task[None]] = set()  # stop_conversation calls under way
        self._catalog = ModelCatalog()

    @property
    def eras(self) -> EraChoice:
        """The era each base URL is spoken to in."""
        return self._eras

    @property
    def user_agent(self) -> str:
        return self._profile.user_agent

    def next_target(self, creds: Credentials | None = None) -> Target:
        """Round-robin over CHATGPT_BASE_URL; the proxy is the account's own (``sticky_proxy``).

        Without an account (login-free, the home page) PROXY_URL is rotated.
        """
        base = next(self._targets)
        sticky = creds.sticky if creds is not None else None
        browsers = self._settings.impersonate_list
        browser = (
            sticky_choice(browsers, sticky, "impersonate") if sticky and len(browsers) > 1 else None
        )
        if self._proxies is None:
            return Target(base, None, browser)
        if sticky is None:
            return Target(base, next(self._proxies).replace("{}", self._proxy_session))
        return Target(base, sticky_proxy(self._settings.proxy_url, sticky), browser)

    def profile_for(self, creds: Credentials | None) -> BrowserProfile:
        """The browser an account shows for its life: user agent (of USER_AGENTS) and page."""
        key = creds.sticky if creds is not None else None
        if key is None:
            return self._profile
        profile = self._profiles.get(key)
        if profile is None:
            agents = self._settings.user_agents
            agent = sticky_choice(agents, key, "user-agent") if agents else self._profile.user_agent
            seed = int(hashlib.sha256(("chat2api-page:" + key).encode()).hexdigest()[:16], 16)
            profile = BrowserProfile.random(random.Random(seed), user_agent=agent)
            if len(self._profiles) >= MAX_PROFILES:
                self._profiles.pop(next(iter(self._profiles)))
            self._profiles[key] = profile
        return profile

    def config_layout(self, creds: Credentials, home: _HomeInfo, era: Era) -> ConfigLayout:
        """The sentinel config the account's page shows now, with one of its scripts.

        Its template is kept per account and era while the account's profile
        and the page's build id stay the same.
        """
        profile = self.profile_for(creds)
        key = (creds.sticky, era)
        entry = self._templates.get(key)
        if entry is None or entry[0] is not profile or entry[1].profile.build_id != home.build_id:
            template = ConfigTemplate(replace(profile, build_id=home.build_id), era=era)
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.pop(next(iter(self._templates)))
            self._templates[key] = entry = (profile, template)
        return entry[1].layout(random.choice(home.scripts))

    def user_agent_for(self, creds: Credentials | None) -> str:
        """The user agent of ``creds``' account (the process's without one)."""
        return self.profile_for(creds).user_agent

    def _headers(
        self, target: Target, creds: Credentials, *, stream: bool, home: _HomeInfo | None = None
    ) -> Mapping[str, str]:
        """A backend call's headers (E3's with ``home``); shared, so only read or copied.

        An account's are made once (``MAX_HEADER_SETS`` kept): everything in
        them follows from the key. A login-free request has a device id of its
        own, so its headers are made each time.
        """
        if creds.access_token is None:
            return self._make_headers(target, creds, stream, home)
        key = (
            creds.access_token,
            creds.account_id,
            creds.key,
            target.base_url,
            stream,
            None if home is None else home.client_version,
            None if home is None else home.build_number,
        )
        headers = self._header_sets.get(key)
        if headers is None:
            headers = self._make_headers(target, creds, stream, home)
            if len(self._header_sets) >= MAX_HEADER_SETS:
                self._header_sets.pop(next(iter(self._header_sets)))
            self._header_sets[key] = headers
        return headers

    def _make_headers(
        self, target: Target, creds: Credentials, stream: bool, home: _HomeInfo | None
    ) -> dict[str, str]:
        headers = {
            **fetch_headers(self.profile_for(creds).user_agent),
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
        if home is not None:
            headers["OAI-Client-Version"] = home.client_version
            if home.build_number is not None:
                headers["OAI-Client-Build-Number"] = home.build_number
            headers["OAI-Session-Id"] = self._session_id
        return headers

    @staticmethod
    def _prefix(creds: Credentials) -> str:
        return "/backend-anon" if creds.anonymous else "/backend-api"

    async def home_info(self, target: Target, creds: Credentials | None = None) -> _HomeInfo:
        """Build id and script URLs of the web app, cached per base URL.

        Fetched as the account that needs it (its proxy, browser and user
        agent), so the upstream never sees the account in another browser.
        """
        ttl = self._settings.build_cache_seconds
        info = self._home.get(target.base_url)
        if info is not None and time.monotonic() - info.fetched_at < ttl:
            return info
        lock = self._home_locks.setdefault(target.base_url, asyncio.Lock())
        async with lock:  # single flight: one fetch however many requests wait
            info = self._home.get(target.base_url)
            if info is not None and time.monotonic() - info.fetched_at < ttl:
                return info
            info = await self._fetch_home(target, self.profile_for(creds).user_agent)
            self._home[target.base_url] = info
            return info

    async def _fetch_home(self, target: Target, user_agent: str) -> _HomeInfo:
        session = self.session(target)
        headers = dict(document_headers(user_agent))
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
            return _HomeInfo(FALLBACK_BUILD, scripts, fallback_age, FALLBACK_BUILD)
        version = assets.client_version or (
            assets.build_id if assets.build_id.startswith("prod-") else FALLBACK_BUILD
        )
        return _HomeInfo(assets.build_id, scripts, time.monotonic(), version, assets.build_number)

    def session(self, target: Target) -> Session:
        """The pooled session for ``target``."""
        return self._sessions.session(target.base_url, target.proxy, target.impersonate)

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for plain upstream requests."""
        return self._sessions.timeout

    async def _call(
        self,
        target: Target,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: Any,
        what: str,
    ) -> tuple[Reply, bytes]:
        with map_transport_errors(what):
            return await self.session(target).fetch(
                method,
                target.base_url + path,
                data=json_body(body) if body is not None else None,
                headers=headers,
                timeout=self._sessions.timeout,
            )

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
        headers = self._headers(target, credentials, stream=False)
        response, content = await self._call(
            target, method, path, headers=headers, body=body, what=what
        )
        return _json_object(response, content, what)

    async def _e3_json(
        self,
        target: Target,
        creds: Credentials,
        home: _HomeInfo,
        path: str,
        body: Any,
        *,
        what: str,
        extra: dict[str, str] | None = None,
        challenge: str | None = None,
        tolerate: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` to an E3 endpoint; (status, JSON object). 404/405 raise ``E3Missing``."""
        headers = self._headers(target, creds, stream=False, home=home)
        if extra:
            headers = {**headers, **extra}
        response, content = await self._call(
            target, "POST", path, headers=headers, body=body, what=what
        )
        if _endpoint_missing(response.status_code, content):
            raise E3Missing(what, response.status_code)
        if response.status_code in tolerate:
            return response.status_code, {}
        return response.status_code, _json_object(response, content, what, challenge)

    async def sentinel_headers(
        self, target: Target, creds: Credentials
    ) -> tuple[dict[str, str], str | None]:
        """E2: the sentinel headers for one conversation, and any challenge left unsolved."""
        home = await self.home_info(target, creds)
        config = self.config_layout(creds, home, "e2")
        data = await self.request_json(
            target,
            "POST",
            self._prefix(creds) + "/sentinel/chat-requirements",
            credentials=creds,
            body={"p": config.requirements_token()},
            what="sentinel chat-requirements",
        )
        needs = read_requirements(data, token_key="token", pow_limit=self._settings.pow_difficulty)
        out = {"OpenAI-Sentinel-Chat-Requirements-Token": needs.token}
        if needs.pow_seed is not None and needs.pow_difficulty is not None:
            out["OpenAI-Sentinel-Proof-Token"] = await self._solver.solve(
                needs.pow_seed, needs.pow_difficulty, config, "sha3"
            )
        return out, needs.challenge

    async def e3_sentinel_headers(
        self, target: Target, creds: Credentials, home: _HomeInfo
    ) -> tuple[dict[str, str], str | None]:
        """E3: prepare, the FNV proof, finalize; the sentinel headers and unsolved challenges."""
        config = self.config_layout(creds, home, "e3")
        prefix = self._prefix(creds) + "/sentinel/chat-requirements"
        _, data = await self._e3_json(
            target,
            creds,
            home,
            prefix + "/prepare",
            {"p": config.requirements_token(suffix="~S")},
            what="sentinel prepare",
        )
        needs = read_requirements(
            data, token_key="prepare_token", pow_limit=self._settings.pow_difficulty
        )
        finalize: dict[str, str] = {"prepare_token": needs.token}
        if needs.pow_seed is not None and needs.pow_difficulty is not None:
            finalize["proofofwork"] = await self._solver.solve(
                needs.pow_seed, needs.pow_difficulty, config, "fnv"
            )
        _, data = await self._e3_json(
            target,
            creds,
            home,
            prefix + "/finalize",
            finalize,
            what="sentinel finalize",
            challenge=needs.challenge,
        )
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable("The upstream's sentinel finalize answer had no token.")
        out = {"OpenAI-Sentinel-Chat-Requirements-Token": token}
        if "proofofwork" in finalize:
            out["OpenAI-Sentinel-Proof-Token"] = finalize["proofofwork"]
        so_token = data.get("so_token")
        if isinstance(so_token, str) and so_token:
            out["OpenAI-Sentinel-SO-Token"] = so_token
        return out, needs.challenge

    async def _conduit(
        self,
        target: Target,
        creds: Credentials,
        home: _HomeInfo,
        body: dict[str, Any],
        sentinel: dict[str, str],
        challenge: str | None,
    ) -> str | None:
        """``f/conversation/prepare``: the conduit token (``None`` when none was given)."""
        extra = {"X-Conduit-Token": "no-token"} | sentinel
        status, data = await self._e3_json(
            target,
            creds,
            home,
            self._prefix(creds) + "/f/conversation/prepare",
            prepare_body(body),
            what="conversation prepare",
            extra=extra,
            challenge=challenge,
            tolerate=(409, 422),  # tolerated by the 2026 web app: send without a conduit
        )
        token = data.get("conduit_token") if status in (200, 201) else None
        return token if isinstance(token, str) and token else None

    async def open_conversation(
        self, creds: Credentials, body: dict[str, Any], target: Target | None = None
    ) -> OpenedConversation:
        """Start a conversation in the base URL's era; returns once the upstream answered 200.

        ``body`` is E2-shaped (``convert.messages``); E3 reshapes it. In
        ``auto`` mode an E3 base URL without the E3 endpoints is answered over
        E2, and an E2 one refused as "unusual activity" over E3 (``eras``).
        """
        target = target or self.next_target(creds)
        if self._settings.check_model:
            await self._catalog.check(self, target, creds, str(body.get("model", "auto")))
        base = target.base_url
        if self._eras.era(base) == "e3":
            try:
                return await self._open_e3(target, creds, body)
            except E3Missing as exc:
                if not self._eras.may_fall_back(base):
                    raise exc.error() from None
                self._eras.e3_missing(base, exc.what, exc.status)
        try:
            return await self._open_e2(target, creds, body)
        except UpstreamForbidden as exc:
            if "unusual activity" not in exc.message.lower() or not self._eras.e2_refused(base):
                raise
            refused = exc
        try:
            return await self._open_e3(target, creds, body)
        except E3Missing as exc:
            # Neither era works here: E2 it stays (logged), and E2's refusal is the answer.
            self._eras.e3_missing(base, exc.what, exc.status, force=True)
            raise refused from None

    async def _open_e2(
        self, target: Target, creds: Credentials, body: dict[str, Any]
    ) -> OpenedConversation:
        sentinel: dict[str, str] = {}
        challenge = None
        if not self._settings.conversation_only:
            sentinel, challenge = await self.sentinel_headers(target, creds)
        headers = {**self._headers(target, creds, stream=True), **sentinel}
        response = await self._open_stream(
            target, self._prefix(creds) + "/conversation", body, headers
        )
        if response.status_code != 200:
            status, reply_headers, content = await _error_answer(response)
            raise error_from_response(
                status, reply_headers, content, what="conversation", challenge=challenge
            )
        return OpenedConversation(iter_body(response), response, target, creds)

    async def _open_e3(
        self, target: Target, creds: Credentials, body: dict[str, Any]
    ) -> OpenedConversation:
        if self._settings.conversation_only:  # no home page either: the gateway has its own
            home = _HomeInfo(FALLBACK_BUILD, (FALLBACK_SCRIPT,), 0.0, FALLBACK_BUILD)
        else:
            home = await self.home_info(target, creds)
        for attempt in range(2):
            sentinel: dict[str, str] = {}
            challenge = None
            if not self._settings.conversation_only:
                sentinel, challenge = await self.e3_sentinel_headers(target, creds, home)
            conduit = await self._conduit(target, creds, home, body, sentinel, challenge)
            headers = {
                **self._headers(target, creds, stream=True, home=home),
                **sentinel,
                "X-Conduit-Token": conduit or "no-token",
            }
            response = await self._open_stream(
                # Reshaped only now: a burst's requests wait in the sentinel calls, not holding it.
                target,
                self._prefix(creds) + "/f/conversation",
                e3_conversation_body(body),
                headers,
            )
            if response.status_code == 200:
                return OpenedConversation(
                    iter_body(response),
                    response,
                    target,
                    creds,
                    "e3",
                    home,
                    headers["X-Conduit-Token"],
                )
            status, reply_headers, content = await _error_answer(response)
            if _endpoint_missing(status, content):
                raise E3Missing("conversation", status)
            if status == 403 and not content.strip() and challenge is None and attempt == 0:
                # A rejected proof or conduit token: one fresh prepare/finalize.
                log.info("upstream refused an E3 send with an empty 403; new sentinel tokens")
                continue
            error = error_from_response(
                status, reply_headers, content, what="E3 conversation", challenge=challenge
            )
            if isinstance(error, UpstreamForbidden) and error.code == "upstream_sentinel_rejected":
                error = UpstreamForbidden(
                    "The upstream rejected the E3 sentinel proof or conduit token twice "
                    "(empty 403 from /f/conversation).",
                    code="upstream_e3_rejected",
                )
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open_stream(
        self, target: Target, path: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> Reply:
        return await open_stream(
            self.session(target),
            target.base_url + path,
            data=json_body(body),
            headers=headers,
            idle_timeout=self._sessions.stream_timeout,
        )

    async def resume(
        self, opened: OpenedConversation, conversation_id: str, offset: int
    ) -> OpenedConversation:
        """E3: ``f/conversation/resume`` from ``offset`` events on; the stream of the same turn.

        ``X-Conduit-Token`` is the conduit token the send went with (spec 1.5).
        """
        if opened.home is None:
            raise UpstreamUnavailable("Only an E3 conversation can be resumed.")
        target, creds = opened.target, opened.credentials
        headers = {
            **self._headers(target, creds, stream=True, home=opened.home),
            "X-Conduit-Token": opened.conduit,
        }
        response = await self._open_stream(
            target,
            self._prefix(creds) + "/f/conversation/resume",
            {"conversation_id": conversation_id, "offset": offset},
            headers,
        )
        if response.status_code != 200:
            status, reply_headers, content = await _error_answer(response)
            raise error_from_response(status, reply_headers, content, what="resuming the stream")
        return OpenedConversation(
            iter_body(response), response, target, creds, "e3", opened.home, opened.conduit
        )

    def stop_soon(self, opened: OpenedConversation, conversation_id: str) -> None:
        """``stop`` in the background: the caller may be a cancelled request's cleanup."""
        task = asyncio.get_running_loop().create_task(self._stop_quietly(opened, conversation_id))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop_quietly(self, opened: OpenedConversation, conversation_id: str) -> None:
        try:
            await self.stop(opened, conversation_id)
        except (UpstreamError, E3Missing) as exc:
            log.info("stop_conversation for %s failed: %s", conversation_id, exc)

    async def stop(self, opened: OpenedConversation, conversation_id: str) -> None:
        """E3: ``stop_conversation``, so that the account is not left busy with the turn."""
        if opened.home is None:
            return
        await self._e3_json(
            opened.target,
            opened.credentials,
            opened.home,
            self._prefix(opened.credentials) + "/stop_conversation",
            {"conversation_id": conversation_id, "exclude_async_types": []},
            what="stop_conversation",
        )


class E3Missing(Exception):
    """An E3 endpoint answered 404/405: this base URL does not speak E3."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(what, status)
        self.what = what
        self.status = status

    def error(self) -> UpstreamRejected:
        """The client-facing error when no fallback is allowed."""
        return UpstreamRejected(
            f"The upstream has no E3 endpoint for {self.what} (HTTP {self.status}); set "
            "UPSTREAM_PROTOCOL=e2 or auto for this CHATGPT_BASE_URL.",
            code="upstream_protocol_unsupported",
        )


def _endpoint_missing(status: int, content: bytes) -> bool:
    # A missing route (404 "Not Found" or no body, 405), not a missing conversation.
    if status == 405:
        return True
    if status != 404:
        return False
    text = content.strip()
    return (
        not text
        or text in (b'{"detail":"Not Found"}', b'{"detail": "Not Found"}')
        or (not text.startswith(b"{"))
    )


async def _error_answer(response: Reply) -> tuple[int, dict[str, str], bytes]:
    try:
        with map_transport_errors("reading an error answer"):
            content = await response.aread()
    finally:
        await response.aclose()
    return response.status_code, response.headers.lower(), content


def _json_object(
    response: Reply, content: bytes, what: str, challenge: str | None = None
) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise error_from_response(
            response.status_code,
            response.headers.lower(),
            content,
            what=what,
            challenge=challenge,
        )
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamUnavailable(f"The upstream sent invalid JSON ({what}).") from exc
    if not isinstance(data, dict):
        raise UpstreamUnavailable(f"The upstream sent an unexpected answer ({what}).")
    return data
