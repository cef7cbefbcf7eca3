"""One typed ``Settings``, built once from a mapping.

Variable names and meanings follow the original chat2api so existing
deployments can switch by pointing the same environment at this service.
``load_settings`` merges, lowest priority first: a ``.env`` file, the process
environment, explicit overrides (CLI flags). Nothing here reads ``os.environ``
at import time; the CLI passes it in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

_HEX = re.compile(r"^[0-9a-f]{1,32}$")
DEFAULT_BASE_URL = "https://chatgpt.com"


def _split_list(value: Any) -> Any:
    """Comma lists as the original accepted them: ``a,b`` with spaces allowed."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Every setting of the service. Field aliases are the environment names."""

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, frozen=True, case_sensitive=True
    )

    # --- seed variables (original chat2api names and defaults) ---------------
    api_prefix: str = Field(
        "",
        alias="API_PREFIX",
        description="Serve every route under `/<prefix>` (e.g. `/<prefix>/v1/chat/completions`).",
    )
    authorization: list[str] = Field(
        default_factory=list,
        alias="AUTHORIZATION",
        description=(
            "Comma list of codes that clients send as their API key to use the account pool."
        ),
    )
    chatgpt_base_url: list[str] = Field(
        default_factory=lambda: [DEFAULT_BASE_URL],
        alias="CHATGPT_BASE_URL",
        description="Upstream base URL; a comma list is rotated per request.",
    )
    auth_key: str | None = Field(
        None,
        alias="AUTH_KEY",
        description="Sent upstream as the `authkey` header, for private upstream gateways.",
    )
    proxy_url: list[str] = Field(
        default_factory=list,
        alias="PROXY_URL",
        description=(
            "Upstream proxy (`http://`, `https://`, `socks5://`, `socks5h://`); a comma list is "
            "rotated per request."
        ),
    )
    cors_allow_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        alias="CORS_ALLOW_ORIGINS",
        description=(
            "Origins whose pages may call the API routes (`/v1/…`) from a browser: a comma list, "
            "or `none` to switch it off; never with cookies, never for the token page, its API or "
            "the gateway."
        ),
    )
    export_proxy_url: str | None = Field(
        None,
        alias="EXPORT_PROXY_URL",
        description="Proxy for downloading generated images and files.",
    )
    history_disabled: bool = Field(
        True,
        alias="HISTORY_DISABLED",
        description=(
            "`false` keeps conversations in the account's ChatGPT history, where they can be "
            "continued by id."
        ),
    )
    pow_difficulty: str = Field(
        "000032",
        alias="POW_DIFFICULTY",
        description="Refuse proofs of work at or below this difficulty (hex; smaller is harder).",
    )
    retry_times: int = Field(
        3,
        ge=0,
        le=20,
        alias="RETRY_TIMES",
        description=(
            "Retries of transient upstream failures (on another account), only before the first "
            "byte reaches the client."
        ),
    )
    conversation_only: bool = Field(
        False,
        alias="CONVERSATION_ONLY",
        description=(
            "Skip the home page and sentinel calls, for an upstream gateway that makes them itself."
        ),
    )
    enable_limit: bool = Field(
        True, alias="ENABLE_LIMIT", description="Cool an account down for a model after a 429."
    )
    upload_by_url: bool = Field(
        False,
        alias="UPLOAD_BY_URL",
        description="Fetch and attach the leading URLs of a user message.",
    )
    fetch_allowed_hosts: list[str] = Field(
        default_factory=list,
        alias="FETCH_ALLOWED_HOSTS",
        description=(
            "Comma list of hosts that client-given URLs may reach even when their address is "
            "private."
        ),
    )
    scheduled_refresh: bool = Field(
        False,
        alias="SCHEDULED_REFRESH",
        description=(
            "Refresh RefreshToken accounts at start and every `REFRESH_CHECK_SECONDS` (those whose"
            " AccessToken has less than 5 days left)."
        ),
    )
    random_token: bool = Field(
        False,
        alias="RANDOM_TOKEN",
        description="Pick pool accounts at random instead of round-robin.",
    )
    enable_gateway: bool = Field(
        False,
        alias="ENABLE_GATEWAY",
        description="Mirror the ChatGPT web app in front of the pool (docs/gateway.md).",
    )
    # Off by default (the original: on): minted seeds share pool accounts and so
    # see each other's conversations until seeds are isolated per account.
    auto_seed: bool = Field(
        False,
        alias="AUTO_SEED",
        description=(
            "Gateway: bind an unknown seed to a pool account instead of refusing it; anyone who "
            "can reach the gateway can then use the pool."
        ),
    )

    # --- chat2api's own settings ---------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        alias="DATA_DIR",
        description="Where the SQLite store lives (created 0700, its files 0600).",
    )
    upstream_encoding: Literal["v1", "legacy"] = Field(
        "v1",
        alias="UPSTREAM_ENCODING",
        description=(
            "Ask the upstream for the `v1` delta stream or `legacy` snapshots (both are decoded)."
        ),
    )
    upstream_protocol: Literal["auto", "e3", "e2"] = Field(
        "auto",
        alias="UPSTREAM_PROTOCOL",
        description=(
            "How conversations are sent upstream: 'e3' (sentinel prepare/finalize, FNV proof "
            "of work, conduit token, /f/conversation: today's web app), 'e2' (one "
            "chat-requirements call, SHA3 proof, /conversation), or 'auto': E3, falling back "
            "to E2 for a base URL whose E3 endpoints answer 404/405 (remembered per base URL "
            "for an hour, then probed again), and moving a base URL back to E3 when its E2 "
            "path answers 403 'unusual activity'."
        ),
    )
    upstream_timeout: float = Field(
        120.0,
        gt=0,
        alias="UPSTREAM_TIMEOUT",
        description="Seconds of upstream silence before a 504.",
    )
    connect_timeout: float = Field(
        10.0, gt=0, alias="CONNECT_TIMEOUT", description="Seconds to connect upstream."
    )
    pow_time_budget: float = Field(
        20.0,
        gt=0,
        alias="POW_TIME_BUDGET",
        description="Seconds to look for a proof of work before giving up (503 `pow_timeout`).",
    )
    pow_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        alias="POW_WORKERS",
        description=(
            "Proof-of-work worker processes; unset: the number of cores, at most 4; `0`: a thread "
            "(for tests)."
        ),
    )
    build_cache_seconds: float = Field(
        900.0,
        ge=0,
        alias="BUILD_CACHE_SECONDS",
        description="How long the web app's build id is cached, in seconds.",
    )
    impersonate: str = Field(
        "chrome",
        alias="IMPERSONATE",
        description=(
            "The browser whose TLS and HTTP/2 fingerprint curl_cffi presents upstream (the request"
            " headers are chat2api's own, for its user agent)."
        ),
    )
    log_level: str = Field(
        "INFO", alias="LOG_LEVEL", description="`DEBUG`, `INFO`, `WARNING` or `ERROR`."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        alias="LOG_FORMAT",
        description=(
            "`json`: one JSON object per log line (the request line's fields as keys), for log "
            "shippers."
        ),
    )
    max_request_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        alias="MAX_REQUEST_BYTES",
        description="Largest request body accepted (413 beyond it), checked while reading.",
    )
    allow_client_tokens: bool = Field(
        True,
        alias="ALLOW_CLIENT_TOKENS",
        description="Serve requests whose key is the client's own AccessToken or RefreshToken.",
    )

    # --- what one client may hold (chat2api.connections) ---------------------
    header_timeout: float = Field(
        10.0,
        gt=0,
        alias="HEADER_TIMEOUT",
        description=(
            "Seconds a connection has to send a request's headers (after connecting or its last "
            "response); slow or silent clients are closed."
        ),
    )
    keep_alive_timeout: int = Field(
        5,
        ge=1,
        alias="KEEP_ALIVE_TIMEOUT",
        description="Seconds an idle keep-alive connection stays open.",
    )
    max_connections: int = Field(
        10_000,
        ge=0,
        alias="MAX_CONNECTIONS",
        description=(
            "Open client connections at most, lowered to what the open-file limit allows (`serve` "
            "raises its soft limit to the hard one); one more gets 503 `too_many_connections` "
            "(0: no cap)."
        ),
    )
    max_client_connections: int = Field(
        2048,
        ge=0,
        alias="MAX_CLIENT_CONNECTIONS",
        description=(
            "Open connections from one client address at most (0: no cap); behind a reverse "
            "proxy every client shares its address, so raise it or set 0."
        ),
    )

    # --- account pool ----------------------------------------------------------
    oauth_base_url: str = Field(
        "https://auth.openai.com",
        alias="OAUTH_BASE_URL",
        description="Where RefreshTokens are exchanged (`/oauth/token` under it).",
    )
    admin_key: str | None = Field(
        None,
        alias="ADMIN_KEY",
        description=(
            "The admin secret of the token page, its API and the gateway's seed API (unset: they "
            "are off)."
        ),
    )
    login_attempts: int = Field(
        10,
        ge=0,
        alias="LOGIN_ATTEMPTS",
        description=(
            "Failed admin-key or gateway logins one address may make a minute, then 429 "
            "(0: no limit)."
        ),
    )
    account_concurrency: int = Field(
        1,
        ge=1,
        le=100,
        alias="ACCOUNT_CONCURRENCY",
        description="Conversations one account serves at once (per instance).",
    )
    pool_wait_seconds: float = Field(
        30.0,
        ge=0,
        alias="POOL_WAIT_SECONDS",
        description="How long a request waits for a free account before a 503 `accounts_busy`.",
    )
    cooldown_seconds: float = Field(
        60.0,
        gt=0,
        alias="COOLDOWN_SECONDS",
        description="Cooldown after a 429 that does not say how long.",
    )
    refresh_check_seconds: float = Field(
        3600.0,
        gt=0,
        alias="REFRESH_CHECK_SECONDS",
        description="Interval of the scheduled refresh check, in seconds.",
    )
    redis_url: str | None = Field(
        None,
        alias="REDIS_URL",
        description=(
            "Use Redis as the store, which several instances can share (unset: SQLite under "
            "`DATA_DIR`)."
        ),
    )
    redis_prefix: str = Field(
        "chat2api", min_length=1, alias="REDIS_PREFIX", description="Key prefix in Redis."
    )
    store_key: SecretStr | None = Field(
        None,
        min_length=16,
        alias="STORE_KEY",
        description=(
            "Seal tokens and records at rest (AES-256-GCM), e.g. `openssl rand -base64 32`; "
            "unset: stored in the clear (the files are 0600 either way)."
        ),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes: the mapping is injected, never read here.
        return (init_settings,)

    @field_validator(
        "authorization",
        "chatgpt_base_url",
        "proxy_url",
        "fetch_allowed_hosts",
        "cors_allow_origins",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("cors_allow_origins")
    @classmethod
    def _cors(cls, value: list[str]) -> list[str]:
        # An empty variable counts as unset (the default, "*"): "none" switches it off.
        return [] if [v.lower() for v in value] == ["none"] else value

    @field_validator("api_prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            value = value.strip().strip("/")
            if value and not re.fullmatch(r"[A-Za-z0-9._~\-/]+", value):
                raise ValueError("may contain only letters, digits, '-', '_', '.', '~' and '/'")
        return value

    @field_validator("oauth_base_url")
    @classmethod
    def _oauth_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("chatgpt_base_url")
    @classmethod
    def _base_urls(cls, value: list[str]) -> list[str]:
        if not value:
            return [DEFAULT_BASE_URL]
        for url in value:
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [url.rstrip("/") for url in value]

    @field_validator("proxy_url")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^(https?|socks5h?|socks4a?)://", url):
                raise ValueError(
                    "proxies must start with http://, https://, socks5:// or socks5h://"
                )
        return value

    @field_validator("pow_difficulty", mode="before")
    @classmethod
    def _difficulty(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if not _HEX.match(value):
                raise ValueError("must be a lowercase hex string such as 000032")
        return value

    @field_validator("upstream_protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
                raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @property
    def prefix_path(self) -> str:
        """The route prefix, ``""`` or ``/<API_PREFIX>``."""
        return f"/{self.api_prefix}" if self.api_prefix else ""


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: str | Path | None = ".env",
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings: ``.env`` < ``environ`` < ``overrides`` (by env name).

    Empty strings in the environment count as unset, as in the original.
    Raises ``SettingsError`` naming the first bad variable.
    """
    merged: dict[str, Any] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v not in (None, "")})
    source = os.environ if environ is None else environ
    names = {field.alias for field in Settings.model_fields.values() if field.alias}
    merged.update({k: v for k, v in source.items() if k in names and v != ""})
    if overrides:
        merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        given = merged.get(name)
        shown = "" if given is None or "KEY" in name or name == "AUTHORIZATION" else f" {given!r}"
        raise SettingsError(f"{name}{shown}: {first['msg']}") from exc
