"""What the app holds while it runs, created and closed by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat2api.convert.usage import TokenCounter
from chat2api.pool.pool import AccountPool
from chat2api.pool.sources import PoolAccounts, RefreshCache
from chat2api.sentinel import PowSolver
from chat2api.settings import Settings
from chat2api.store.base import Store
from chat2api.throttle import LoginThrottle
from chat2api.upstream.chatgpt import ChatGPTBackend
from chat2api.upstream.downloads import Downloader
from chat2api.upstream.files import FileUploader
from chat2api.upstream.http import SessionPool


@dataclass(slots=True)
class AppState:
    """Resources shared by all requests; reached through ``app.state.chat2api``."""

    settings: Settings
    sessions: SessionPool
    solver: PowSolver
    backend: ChatGPTBackend
    store: Store
    pool: AccountPool
    pool_accounts: PoolAccounts
    refresh_cache: RefreshCache
    uploader: FileUploader
    downloader: Downloader
    tokens: TokenCounter  # the tokenizer's vocabulary lives in its worker process
    logins: LoginThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.logins = LoginThrottle(self.settings.login_attempts)
