"""Which models an account may use, as the upstream's model list says (``CHECK_MODEL``).

The list (``GET /backend-api/models``) is asked once per account and kept
for ``TTL`` seconds; a model not on it is answered with 404
``model_not_found`` before any sentinel round trip, as the original's
``CHECK_MODEL`` did. ``auto`` is always allowed (the upstream picks).
A list that cannot be fetched decides nothing: the conversation itself will.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from chat2api.errors import UpstreamError, UpstreamModelUnavailable

if TYPE_CHECKING:
    from chat2api.upstream.chatgpt import ChatGPTBackend, Target
    from chat2api.values import Credentials

log = logging.getLogger(__name__)

TTL = 600.0
MAX_ENTRIES = 10_000
ALWAYS = frozenset({"auto"})


class ModelCatalog:
    """The model slugs of each account, cached (see module docstring)."""

    def __init__(self) -> None:
        self._slugs: dict[str, tuple[frozenset[str], float]] = {}

    async def check(
        self, backend: ChatGPTBackend, target: Target, creds: Credentials, slug: str
    ) -> None:
        """Raise ``UpstreamModelUnavailable`` when ``creds``' account does not list ``slug``."""
        if slug in ALWAYS or creds.anonymous:  # login-free: one fixed model anyway
            return
        slugs = await self._account_slugs(backend, target, creds)
        if slugs is not None and slug not in slugs:
            raise UpstreamModelUnavailable(
                f"The model `{slug}` does not exist or you do not have access to it."
            )

    async def _account_slugs(
        self, backend: ChatGPTBackend, target: Target, creds: Credentials
    ) -> frozenset[str] | None:
        key = f"{creds.device_id}:{creds.account_id}"  # per account, not the token itself
        cached = self._slugs.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        prefix = "/backend-anon" if creds.anonymous else "/backend-api"
        try:
            data = await backend.request_json(
                target, "GET", prefix + "/models", credentials=creds, what="the model list"
            )
        except UpstreamError as exc:
            log.info("model list unavailable (%s); not checking the model", exc.code)
            return None
        models = data.get("models")
        if not isinstance(models, list):
            return None
        slugs = frozenset(
            str(m["slug"]) for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str)
        )
        if len(self._slugs) >= MAX_ENTRIES:
            self._slugs.pop(next(iter(self._slugs)))
        self._slugs[key] = (slugs, time.monotonic() + TTL)
        return slugs
