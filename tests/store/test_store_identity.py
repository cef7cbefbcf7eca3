"""Identities: two accounts of one ChatGPT account become one, the first keeping its id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chat2api.store.base import Account, Learnt, Store, merge_accounts

pytestmark = pytest.mark.anyio

IDENTITY = "9" * 32
OTHER = "8" * 32


def refresh_account(id_: str, secret: str, **fields: object) -> Account:
    return Account(id=id_, kind="refresh_token", secret=secret, **fields)  # type: ignore[arg-type]


async def test_learning_an_identity_names_the_account(store: Store) -> None:
    """A first account of an identity keeps it: found by it, read with it."""
    await store.add_accounts([refresh_account("a1", "rt_a")])
    assert await store.account_with_identity(IDENTITY) is None
    assert await store.learn_identity("a1", IDENTITY) == Learnt("a1")
    assert await store.learn_identity("a1", IDENTITY) == Learnt("a1")  # again: nothing new
    found = await store.account_with_identity(IDENTITY)
    assert found is not None and (found.id, found.identity) == ("a1", IDENTITY)
    assert await store.learn_identity("missing", IDENTITY) is None


async def test_add_does_not_store_a_given_identity(store: Store) -> None:
    """Only ``learn_identity`` sets an identity: an added one is left out."""
    await store.add_accounts([refresh_account("a1", "rt_a", identity=IDENTITY)])
    account = await store.get_account("a1")
    assert account is not None and account.identity is None
    assert await store.account_with_identity(IDENTITY) is None


async def test_second_account_merges_into_the_first(store: Store) -> None:
    """The later account's tokens move into the first; history is pooled; its id aliases."""
    older = refresh_account(
        "first",
        "rt_first",
        access_token="at-first",
        access_expires_at=1_000.0,
        plan="free",
        cooldowns={"gpt-4o": 5_000.0, "o3": 100.0},
        successes=3,
        failures=1,
        last_used=50.0,
    )
    newer = refresh_account(
        "second",
        "rt_second",
        access_token="at-second",
        access_expires_at=9_000.0,
        plan="plus",
        cooldowns={"o3": 200.0},
        successes=2,
        last_used=40.0,
    )
    await store.add_accounts([older])
    await store.add_accounts([newer])
    before = await store.version()
    first = await store.get_account("first")
    assert first is not None

    assert await store.learn_identity("first", IDENTITY) == Learnt("first")
    assert await store.learn_identity("second", IDENTITY) == Learnt("first", "second")

    (merged,) = await store.list_accounts()
    assert merged.id == "first" and merged.added_at == first.added_at
    assert (merged.secret, merged.access_token, merged.access_expires_at, merged.plan) == (
        "rt_second",
        "at-second",
        9_000.0,
        "plus",
    )
    assert merged.cooldowns == {"gpt-4o": 5_000.0, "o3": 200.0}
    assert (merged.successes, merged.failures, merged.last_used) == (5, 1, 50.0)
    assert merged.identity == IDENTITY
    assert await store.version() != before
    _, ids = await store.account_ids()
    assert ids == ["first"]
    alias = await store.get_account("second")
    assert alias is not None and alias.id == "first" and alias.secret == "rt_second"
    assert await store.remove_account("second") is False  # an alias is not an account


async def test_the_first_added_survives_whoever_learns_first(store: Store) -> None:
    """When the later account's identity was known first, the first added still keeps its id."""
    await store.add_accounts([refresh_account("first", "rt_first")])
    await store.add_accounts(
        [refresh_account("second", "rt_second", access_token="at", access_expires_at=10.0)]
    )
    assert await store.learn_identity("second", IDENTITY) == Learnt("second")
    assert await store.learn_identity("first", IDENTITY) == Learnt("first", "second")
    (merged,) = await store.list_accounts()
    assert (merged.id, merged.secret, merged.access_token) == ("first", "rt_second", "at")
    found = await store.account_with_identity(IDENTITY)
    assert found is not None and found.id == "first"


async def test_merged_ids_follow_a_later_merge(store: Store) -> None:
    """An id merged into an account that is merged in turn names the last survivor."""
    for name in ("a", "b", "c"):
        await store.add_accounts([refresh_account(name, f"rt_{name}")])
    await store.learn_identity("c", IDENTITY)
    assert await store.learn_identity("b", IDENTITY) == Learnt("b", "c")
    assert await store.learn_identity("a", IDENTITY) == Learnt("a", "b")
    for name in ("a", "b", "c"):
        account = await store.get_account(name)
        assert account is not None and account.id == "a"
    assert await store.learn_identity("c", IDENTITY) == Learnt("a")  # by its old id: no-op


async def test_other_identities_stay_apart(store: Store) -> None:
    """Two identities (another user, another workspace) are two accounts."""
    await store.add_accounts([refresh_account("a", "rt_a"), refresh_account("b", "rt_b")])
    await store.learn_identity("a", IDENTITY)
    await store.learn_identity("b", OTHER)
    assert [a.id for a in await store.list_accounts()] == ["a", "b"]


async def test_a_merged_id_counts_as_added(store: Store) -> None:
    """Adding a merged id again is a no-op; once its survivor is removed it can come back."""
    await store.add_accounts([refresh_account("a", "rt_a"), refresh_account("b", "rt_b")])
    await store.learn_identity("a", IDENTITY)
    await store.learn_identity("b", IDENTITY)
    assert await store.add_accounts([refresh_account("b", "rt_b")]) == []
    assert await store.remove_account("a")
    assert await store.get_account("b") is None
    assert await store.account_with_identity(IDENTITY) is None
    assert await store.add_accounts([refresh_account("b", "rt_b")]) == ["b"]
    again = await store.get_account("b")
    assert again is not None and (again.id, again.secret, again.identity) == ("b", "rt_b", None)
    assert await store.learn_identity("b", IDENTITY) == Learnt("b")


async def test_clear_forgets_identities_and_merges(store: Store) -> None:
    """After ``clear_accounts`` no identity or merged id is left."""
    await store.add_accounts([refresh_account("a", "rt_a"), refresh_account("b", "rt_b")])
    await store.learn_identity("a", IDENTITY)
    await store.learn_identity("b", IDENTITY)
    assert await store.clear_accounts() == 1
    assert await store.get_account("b") is None
    assert await store.account_with_identity(IDENTITY) is None
    assert await store.add_accounts([refresh_account("b", "rt_b")]) == ["b"]


async def test_updates_to_a_merged_id_are_ignored(store: Store) -> None:
    """A request still holding the dropped id changes nothing (as for a removed account)."""
    await store.add_accounts([refresh_account("a", "rt_a"), refresh_account("b", "rt_b")])
    await store.learn_identity("a", IDENTITY)
    await store.learn_identity("b", IDENTITY)
    await store.set_status("b", "dead", "late")
    await store.record_use("b", success=True, at=1.0)
    (kept,) = await store.list_accounts()
    assert (kept.status, kept.successes) == ("active", 0)


async def test_concurrent_learners_leave_one_account(
    store_factory: Callable[[], Store],
) -> None:
    """Two clients learning one identity for six accounts at once leave exactly one."""
    one, two = store_factory(), store_factory()
    names = [f"acct{i}" for i in range(6)]
    await one.add_accounts([refresh_account(n, f"rt_{n}") for n in names])
    await asyncio.gather(
        *(one.learn_identity(n, IDENTITY) for n in names[::2]),
        *(two.learn_identity(n, IDENTITY) for n in names[1::2]),
    )
    (survivor,) = await one.list_accounts()
    assert survivor.id == "acct0" and survivor.identity == IDENTITY
    for name in names:
        account = await two.get_account(name)
        assert account is not None and account.id == "acct0"


def test_merge_prefers_a_live_token_and_keeps_a_refresh_token() -> None:
    """A dead account's later token loses to a live one; an AccessToken never replaces an RT."""
    keep = Account(
        id="k",
        kind="refresh_token",
        secret="rt_k",
        access_token="at-k",
        access_expires_at=10.0,
        status="dead",
        dead_reason="refused",
    )
    drop = Account(
        id="d", kind="access_token", secret="at-d", access_token="at-d", access_expires_at=5.0
    )
    merged = merge_accounts(keep, drop, IDENTITY)
    assert (merged.id, merged.kind, merged.secret) == ("k", "refresh_token", "rt_k")
    assert (merged.access_token, merged.status, merged.dead_reason) == ("at-d", "active", None)
    both_live = merge_accounts(
        Account(id="k", kind="access_token", secret="at-old", access_token="at-old"),
        Account(id="d", kind="access_token", secret="at-new", access_token="at-new"),
        IDENTITY,
    )
    assert (both_live.secret, both_live.access_token) == ("at-new", "at-new")  # tie: the later
