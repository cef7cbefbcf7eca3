"""Secrets sealed at rest: ``STORE_KEY`` encrypts tokens before any backend sees them.

``Sealer`` is AES-256-GCM (the ``cryptography`` package, imported only when a
key is used) under a key derived from a secret string; a sealed value is
``sealed1:`` and the URL-safe base64 of a random 96-bit nonce and the
ciphertext with its tag, so tampering or a wrong key is detected, never
decrypted into garbage.

``SealedStore`` wraps any ``Store``: accounts' ``secret`` and
``access_token`` and whole records are sealed on the way in and opened on
the way out; ids, statuses, cooldowns and counters stay readable (an
account's id is a hash of its secret, made before sealing). Values written
before the key was set are read as they are and sealed when next written.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import orjson

from chat2api.errors import StoreUnavailable
from chat2api.store.base import Account, AccountStatus, Learnt, Store, check_account

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SealError", "SealedStore", "Sealer"]

PREFIX = "sealed1:"
_SEALED_RECORD = "sealed1"  # the one field of a sealed record


class SealError(StoreUnavailable):
    """A sealed value that this key cannot open (another key, or altered)."""


class Sealer:
    """Seals and opens strings with one key (see the module docstring)."""

    def __init__(self, secret: str | bytes, *, purpose: str = "store") -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        material = secret.encode() if isinstance(secret, str) else secret
        key = hashlib.sha256(f"chat2api/{purpose}/".encode() + material).digest()
        self._aead: AESGCM = AESGCM(key)

    def seal(self, text: str) -> str:
        """``text`` encrypted and authenticated, as printable ASCII."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode(), None)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, text: str) -> str:
        """The plain text of a sealed value; a value never sealed comes back as it is."""
        from cryptography.exceptions import InvalidTag

        if not text.startswith(PREFIX):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError(
                "A stored secret cannot be opened with this STORE_KEY (another key, or altered)."
            ) from exc

    def seal_optional(self, text: str | None) -> str | None:
        return None if text is None else self.seal(text)

    def open_optional(self, text: str | None) -> str | None:
        return None if text is None else self.open(text)


class SealedStore:
    """A ``Store`` whose tokens and records are sealed by ``sealer`` before ``inner`` keeps them."""

    def __init__(self, inner: Store, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer

    def __repr__(self) -> str:
        return f"Sealed({self.inner!r})"

    def _opened(self, account: Account) -> Account:
        return dataclasses.replace(
            account,
            secret=self.sealer.open(account.secret),
            access_token=self.sealer.open_optional(account.access_token),
        )

    async def add_accounts(self, accounts: Sequence[Account]) -> list[str]:
        for account in accounts:  # judged as given: a sealed empty secret is not empty
            check_account(account)
        sealed = [
            dataclasses.replace(
                a,
                secret=self.sealer.seal(a.secret),
                access_token=self.sealer.seal_optional(a.access_token),
            )
            for a in accounts
        ]
        return await self.inner.add_accounts(sealed)

    async def get_account(self, account_id: str) -> Account | None:
        account = await self.inner.get_account(account_id)
        return None if account is None else self._opened(account)

    async def account_with_identity(self, identity: str) -> Account | None:
        account = await self.inner.account_with_identity(identity)
        return None if account is None else self._opened(account)

    async def learn_identity(self, account_id: str, identity: str) -> Learnt | None:
        # A merge moves sealed values between accounts as they are: one key seals both.
        return await self.inner.learn_identity(account_id, identity)

    async def list_accounts(self) -> list[Account]:
        return [self._opened(a) for a in await self.inner.list_accounts()]

    async def account_ids(self) -> tuple[int, list[str]]:
        return await self.inner.account_ids()

    async def version(self) -> int:
        return await self.inner.version()

    async def remove_account(self, account_id: str) -> bool:
        return await self.inner.remove_account(account_id)

    async def clear_accounts(self) -> int:
        return await self.inner.clear_accounts()

    async def set_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        await self.inner.set_status(account_id, status, reason)

    async def set_cooldown(self, account_id: str, model: str, until: float) -> None:
        await self.inner.set_cooldown(account_id, model, until)

    async def clear_cooldowns(self, account_id: str) -> None:
        await self.inner.clear_cooldowns(account_id)

    async def set_tokens(
        self,
        account_id: str,
        *,
        access_token: str | None,
        access_expires_at: float | None,
        secret: str | None = None,
        plan: str | None = None,
    ) -> None:
        await self.inner.set_tokens(
            account_id,
            access_token=self.sealer.seal_optional(access_token),
            access_expires_at=access_expires_at,
            secret=self.sealer.seal_optional(secret),
            plan=plan,
        )

    async def record_use(self, account_id: str, *, success: bool, at: float) -> None:
        await self.inner.record_use(account_id, success=success, at=at)

    async def next_counter(self, name: str) -> int:
        return await self.inner.next_counter(name)

    def lock(self, name: str, ttl: float) -> AbstractAsyncContextManager[bool]:
        return self.inner.lock(name, ttl)

    # Slots hold no secret: passed through as they are.
    async def take_slot(self, account_id: str, lease: str, limit: int, ttl: float) -> bool:
        return await self.inner.take_slot(account_id, lease, limit, ttl)

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> None:
        await self.inner.renew_slots(held, ttl)

    async def free_slot(self, account_id: str, lease: str) -> None:
        await self.inner.free_slot(account_id, lease)

    async def slots_held(self, account_id: str) -> int:
        return await self.inner.slots_held(account_id)

    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl: float | None = None
    ) -> None:
        if not isinstance(value, dict):  # refused by the backend, as without a key
            await self.inner.put_record(kind, key, value, ttl)
            return
        try:
            text = orjson.dumps(value).decode()
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"record {kind}: not JSON-serialisable: {exc}") from exc
        await self.inner.put_record(kind, key, {_SEALED_RECORD: self.sealer.seal(text)}, ttl)

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        record = await self.inner.get_record(kind, key)
        if record is None or set(record) != {_SEALED_RECORD}:
            return record
        value = orjson.loads(self.sealer.open(str(record[_SEALED_RECORD])))
        return value if isinstance(value, dict) else None

    async def delete_record(self, kind: str, key: str) -> bool:
        return await self.inner.delete_record(kind, key)

    async def close(self) -> None:
        await self.inner.close()
