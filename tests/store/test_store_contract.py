"""The ``Store`` contract, run against every backend (SQLite file and Redis)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from store_backends import Backend

from chat2api.store.base import Account, Store, account_key

pytestmark = pytest.mark.anyio

CHILD = Path(__file__).with_name("store_child.py")


def acct(n: int, **fields: object) -> Account:
    secret = f"secret-{n}"
    return Account(id=account_key(secret), kind="access_token", secret=secret, **fields)  # type: ignore[arg-type]


# --- add / get / list ---------------------------------------------------------


async def test_add_returns_ids_and_lists_oldest_first(store: Store) -> None:
    """Added ids come back in the given order, and listing keeps insertion order."""
    first = [acct(n) for n in (5, 1, 3)]
    second = [acct(n) for n in (0, 4)]
    assert await store.add_accounts(first) == [a.id for a in first]
    assert await store.add_accounts(second) == [a.id for a in second]
    expected = [a.id for a in first + second]
    assert [a.id for a in await store.list_accounts()] == expected
    assert (await store.account_ids())[1] == expected


async def test_add_skips_existing_and_repeated_ids(store: Store) -> None:
    """An id already stored, or repeated in one call, is skipped and not updated."""
    await store.add_accounts([acct(1, plan="plus")])
    again = acct(1, plan="team")
    added = await store.add_accounts([again, acct(2), acct(2, plan="pro"), acct(3)])
    assert added == [acct(2).id, acct(3).id]
    stored = {a.id: a for a in await store.list_accounts()}
    assert stored[again.id].plan == "plus"
    assert stored[acct(2).id].plan is None
    assert [a.id for a in await store.list_accounts()] == [acct(n).id for n in (1, 2, 3)]


async def test_add_nothing_new(store: Store) -> None:
    """Adding an empty list or only known ids adds nothing."""
    assert await store.add_accounts([]) == []
    await store.add_accounts([acct(1)])
    assert await store.add_accounts([acct(1)]) == []
    assert len(await store.list_accounts()) == 1


@pytest.mark.parametrize(
    "bad",
    [
        Account(id="x1", kind="cookie", secret="s"),  # type: ignore[arg-type]
        Account(id="x2", kind="access_token", secret=""),
        Account(id="", kind="access_token", secret="s"),
        Account(id="x3", kind="access_token", secret="s", status="zombie"),  # type: ignore[arg-type]
    ],
)
async def test_add_is_all_or_none(store: Store, bad: Account) -> None:
    """One invalid account in a batch raises and stores none of the batch."""
    await store.add_accounts([acct(0)])
    version = await store.version()
    with pytest.raises(ValueError, match=r"account|kind|status|secret|id"):
        await store.add_accounts([acct(1), acct(2), bad, acct(3)])
    assert [a.id for a in await store.list_accounts()] == [acct(0).id]
    assert await store.version() == version


async def test_get_account_round_trip(store: Store) -> None:
    """Every field of an account is stored and read back as given."""
    account = Account(
        id="a1",
        kind="refresh_token",
        secret="rt-secret",
        workspace="ws-1",
        access_token="at-1",
        access_expires_at=1_900_000_000.123456,
        plan="team",
        status="dead",
        dead_reason="banned",
        cooldowns={"gpt-4o": 1_800_000_000.5, "*": 1_700_000_000.25},
        last_used=1_750_000_000.75,
        successes=7,
        failures=2,
        added_at=1_600_000_000.125,
    )
    await store.add_accounts([account])
    assert await store.get_account("a1") == account
    assert await store.list_accounts() == [account]


async def test_get_missing_account(store: Store) -> None:
    """An unknown id gives None."""
    assert await store.get_account("nope") is None


async def test_defaults_and_added_at_stamp(store: Store) -> None:
    """A bare account reads back with the defaults, and added_at 0 becomes now."""
    before = time.time()
    await store.add_accounts([acct(1)])
    got = await store.get_account(acct(1).id)
    assert got is not None
    assert before <= got.added_at <= time.time()
    bare = Account(id=acct(1).id, kind="access_token", secret="secret-1", added_at=got.added_at)
    assert got == bare


# --- version, remove, clear ---------------------------------------------------


async def test_version_changes_on_add_remove_clear_only(store: Store) -> None:
    """Only adding, removing or clearing accounts changes the version."""
    seen = [await store.version()]

    async def changed() -> bool:
        seen.append(await store.version())
        return seen[-1] != seen[-2]

    await store.add_accounts([acct(1), acct(2), acct(3)])
    assert await changed()
    await store.add_accounts([acct(1)])
    assert not await changed()
    a = acct(1).id
    await store.set_status(a, "dead", "banned")
    await store.set_cooldown(a, "*", time.time() + 60)
    await store.clear_cooldowns(a)
    await store.set_tokens(a, access_token="t", access_expires_at=1.0, secret="s2", plan="plus")
    await store.record_use(a, success=True, at=1.0)
    await store.next_counter("rr")
    async with store.lock("refresh", 1.0):
        pass
    assert not await changed()
    assert await store.remove_account(a)
    assert await changed()
    assert not await store.remove_account(a)
    assert not await changed()
    assert await store.clear_accounts() == 2
    assert await changed()
    assert await store.clear_accounts() == 0
    assert not await changed()
    assert len(set(seen)) == 4


async def test_account_ids_carries_the_version(store: Store) -> None:
    """``account_ids`` returns the current version with the ids."""
    await store.add_accounts([acct(1), acct(2)])
    version, ids = await store.account_ids()
    assert version == await store.version()
    assert ids == [acct(1).id, acct(2).id]


async def test_remove_account(store: Store) -> None:
    """Removing drops exactly that account; a second removal says False."""
    await store.add_accounts([acct(1), acct(2), acct(3)])
    assert await store.remove_account(acct(2).id) is True
    assert await store.get_account(acct(2).id) is None
    assert [a.id for a in await store.list_accounts()] == [acct(1).id, acct(3).id]
    assert await store.remove_account(acct(2).id) is False


async def test_removed_account_can_be_added_again_last(store: Store) -> None:
    """A removed account added back is new: it comes last."""
    await store.add_accounts([acct(1), acct(2)])
    await store.remove_account(acct(1).id)
    assert await store.add_accounts([acct(1)]) == [acct(1).id]
    assert (await store.account_ids())[1] == [acct(2).id, acct(1).id]


async def test_clear_accounts(store: Store) -> None:
    """Clearing removes every account and says how many there were."""
    await store.add_accounts([acct(n) for n in range(5)])
    assert await store.clear_accounts() == 5
    assert await store.list_accounts() == []
    assert (await store.account_ids())[1] == []


# --- one account's state ------------------------------------------------------


async def test_set_status_with_reason(store: Store) -> None:
    """Dead keeps its reason; active again clears it."""
    await store.add_accounts([acct(1)])
    a = acct(1).id
    await store.set_status(a, "dead", "token_invalidated")
    got = await store.get_account(a)
    assert got is not None and (got.status, got.dead_reason) == ("dead", "token_invalidated")
    await store.set_status(a, "active", "ignored")
    got = await store.get_account(a)
    assert got is not None and (got.status, got.dead_reason) == ("active", None)


async def test_cooldowns_per_model_and_star(store: Store) -> None:
    """Cooldowns are kept per model, ``*`` cools every model, and they can be cleared."""
    await store.add_accounts([acct(1)])
    a = acct(1).id
    now = 1_000_000.0
    await store.set_cooldown(a, "gpt-4o", now + 60)
    await store.set_cooldown(a, "o1", now + 30)
    await store.set_cooldown(a, "o1", now + 90)  # a later call replaces
    got = await store.get_account(a)
    assert got is not None
    assert got.cooldowns == {"gpt-4o": now + 60, "o1": now + 90}
    assert got.cooling_until("gpt-4o", now) == now + 60
    assert got.cooling_until("gpt-4o-mini", now) is None
    await store.set_cooldown(a, "*", now + 120)
    got = await store.get_account(a)
    assert got is not None
    assert got.cooling_until("gpt-4o-mini", now) == now + 120
    assert got.cooling_until("gpt-4o", now) == now + 120
    assert got.cooling_until("gpt-4o", now + 200) is None
    await store.clear_cooldowns(a)
    got = await store.get_account(a)
    assert got is not None and got.cooldowns == {}


async def test_concurrent_cooldowns_on_different_models(store_factory: Callable[[], Store]) -> None:
    """Cooldowns set at once for different models from two clients are all kept."""
    one, two = store_factory(), store_factory()
    await one.add_accounts([acct(1)])
    a = acct(1).id
    models = [f"model-{n}" for n in range(40)]
    await asyncio.gather(
        *((one if n % 2 else two).set_cooldown(a, m, 10.0 + n) for n, m in enumerate(models))
    )
    got = await one.get_account(a)
    assert got is not None
    assert got.cooldowns == {m: 10.0 + n for n, m in enumerate(models)}


def test_cooling_until() -> None:
    """``cooling_until`` takes the latest running cooldown for the model or ``*``."""
    account = Account(
        id="a", kind="access_token", secret="s", cooldowns={"m": 50.0, "*": 20.0, "other": 99.0}
    )
    assert account.cooling_until("m", 10.0) == 50.0
    assert account.cooling_until("x", 10.0) == 20.0
    assert account.cooling_until("x", 20.0) is None  # ends exactly now: usable
    assert account.cooling_until("m", 60.0) is None


async def test_set_tokens(store: Store) -> None:
    """A fresh AccessToken is stored, a rotated secret replaces the old, plan is kept if None."""
    account = Account(id="r1", kind="refresh_token", secret="rt-old", plan="plus")
    await store.add_accounts([account])
    await store.set_tokens("r1", access_token="at-1", access_expires_at=2_000.5, secret="rt-new")
    got = await store.get_account("r1")
    assert got is not None
    assert (got.access_token, got.access_expires_at, got.secret, got.plan) == (
        "at-1",
        2_000.5,
        "rt-new",
        "plus",
    )
    await store.set_tokens("r1", access_token=None, access_expires_at=None, plan="team")
    got = await store.get_account("r1")
    assert got is not None
    assert (got.access_token, got.access_expires_at, got.secret, got.plan) == (
        None,
        None,
        "rt-new",
        "team",
    )


async def test_updates_to_a_missing_account_are_ignored(store: Store) -> None:
    """Writing the state of a removed account does not bring it back."""
    await store.add_accounts([acct(1)])
    a = acct(1).id
    await store.remove_account(a)
    await store.set_status(a, "dead", "x")
    await store.set_cooldown(a, "*", 10.0)
    await store.clear_cooldowns(a)
    await store.set_tokens(a, access_token="t", access_expires_at=1.0, secret="s", plan="p")
    await store.record_use(a, success=False, at=1.0)
    assert await store.get_account(a) is None
    assert await store.list_accounts() == []


async def test_record_use_is_atomic(store_factory: Callable[[], Store]) -> None:
    """50 concurrent uses from two clients are all counted."""
    one, two = store_factory(), store_factory()
    await one.add_accounts([acct(1)])
    a = acct(1).id
    await asyncio.gather(
        *(
            (one if n % 2 else two).record_use(a, success=n % 5 != 0, at=1000.0 + n)
            for n in range(50)
        )
    )
    got = await one.get_account(a)
    assert got is not None
    assert (got.successes, got.failures) == (40, 10)
    assert got.last_used is not None and 1000.0 <= got.last_used <= 1049.0


# --- counters and locks -------------------------------------------------------


async def test_next_counter_is_monotonic_under_concurrency(
    store_factory: Callable[[], Store],
) -> None:
    """Concurrent callers on two clients get 1..n once each, in increasing order per caller."""
    one, two = store_factory(), store_factory()

    async def caller(store: Store) -> list[int]:
        return [await store.next_counter("rr") for _ in range(20)]

    results = await asyncio.gather(*(caller(one if n % 2 else two) for n in range(10)))
    for values in results:
        assert values == sorted(values)
    assert sorted(v for values in results for v in values) == list(range(1, 201))
    assert await one.next_counter("other") == 1


async def _exclusive(stores: list[Store], ttl: float = 5.0) -> int:
    """Run tasks that each take the lock; return the most holders seen at once."""
    inside = 0
    most = 0

    async def worker(store: Store) -> None:
        nonlocal inside, most
        for _ in range(5):
            async with store.lock("refresh", ttl) as acquired:
                assert acquired
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.005)
                inside -= 1

    await asyncio.gather(*(worker(s) for s in stores))
    return most


async def test_lock_is_exclusive_between_tasks(store: Store) -> None:
    """Tasks sharing one client take the lock one at a time."""
    assert await _exclusive([store, store, store]) == 1


async def test_lock_is_exclusive_between_clients(store_factory: Callable[[], Store]) -> None:
    """Two clients of the same store (two files handles / two connections) exclude each other."""
    assert await _exclusive([store_factory(), store_factory()]) == 1


async def test_lock_times_out(store_factory: Callable[[], Store]) -> None:
    """A waiter gives up after its ttl and is told it does not hold the lock.

    The holder's lease is 25 times the waiter's ttl: a waiter that outwaited it would
    have got the lock, so "not acquired" says it gave up on its own ttl.
    """
    one, two = store_factory(), store_factory()
    wait = 0.2
    async with one.lock("refresh", 25 * wait) as held:
        assert held
        start = time.monotonic()
        async with two.lock("refresh", wait) as acquired:
            assert not acquired
        assert time.monotonic() - start >= 0.8 * wait
    async with two.lock("refresh", 0.2) as acquired:
        assert acquired  # released on exit
    async with one.lock("other", 0.2) as acquired:
        assert acquired  # names are independent


async def test_late_release_leaves_the_new_owner_alone(store_factory: Callable[[], Store]) -> None:
    """A holder that outlived its ttl does not release the lock someone else took over."""
    one, two = store_factory(), store_factory()
    async with one.lock("refresh", 0.2) as held:
        assert held
        await asyncio.sleep(0.4)
        second = two.lock("refresh", 5.0)
        assert await second.__aenter__()
    try:
        async with one.lock("refresh", 0.2) as acquired:
            assert not acquired
    finally:
        await second.__aexit__(None, None, None)


def _kill_lock_holder(location: str, ttl: float) -> float:
    """Start a process that takes the lock, SIGKILL it once it holds it; when it took it."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "hold", location, "refresh", str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        return time.monotonic()
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


async def test_lock_of_a_killed_holder_expires(backend: Backend, store: Store) -> None:
    """A process killed while holding the lock blocks others only until its ttl passes.

    The waiter would wait ten times the dead holder's ttl: getting the lock at all says
    the lease ran out long before that, and not before the ttl.
    """
    ttl = 1.0
    taken = _kill_lock_holder(backend.location, ttl)
    async with store.lock("refresh", 0.1) as acquired:
        assert not acquired
    async with store.lock("refresh", 10 * ttl) as acquired:
        assert acquired
        assert time.monotonic() - taken >= 0.8 * ttl


# --- concurrency slots ----------------------------------------------------------


async def test_slots_hold_the_limit_across_clients(store_factory: Callable[[], Store]) -> None:
    """Two clients share one account's limit; a freed slot can be taken again."""
    one, two = store_factory(), store_factory()
    assert await one.take_slot("a", "one-1", 2, 30.0)
    assert await two.take_slot("a", "two-1", 2, 30.0)
    assert not await one.take_slot("a", "one-2", 2, 30.0)
    assert not await two.take_slot("a", "two-2", 2, 30.0)
    assert await two.take_slot("b", "two-3", 2, 30.0)  # accounts are independent
    assert await one.slots_held("a") == 2
    await one.free_slot("a", "two-1")  # any client may free a lease it names
    assert await one.slots_held("a") == 1
    assert await two.take_slot("a", "two-4", 2, 30.0)
    await two.free_slot("a", "never-held")  # nothing happens
    assert await two.slots_held("a") == 2


async def test_slots_run_out_at_once_under_a_burst(store_factory: Callable[[], Store]) -> None:
    """Forty takes at once from two clients: exactly the limit succeed."""
    one, two = store_factory(), store_factory()
    results = await asyncio.gather(
        *((one if i % 2 else two).take_slot("a", f"l{i}", 3, 30.0) for i in range(40))
    )
    assert sum(results) == 3


async def test_slot_expires_unless_renewed(store: Store) -> None:
    """An unrenewed slot frees itself after its ttl; a renewed one stays held.

    "kept" is taken before "short" and renewed at once: when "short" has expired, the
    ttl "kept" was taken with has run out too, and only the renewal holds it.
    """
    ttl = 1.0
    assert await store.take_slot("b", "kept", 1, ttl)
    taken = time.monotonic()
    assert await store.take_slot("a", "short", 1, ttl)
    await store.renew_slots([("b", "kept"), ("c", "unknown")], 30 * ttl)
    while await store.slots_held("a"):
        assert time.monotonic() - taken < 10 * ttl, "the unrenewed slot did not expire"
        await asyncio.sleep(0.02)
    assert time.monotonic() - taken >= 0.8 * ttl
    assert await store.take_slot("a", "next", 1, 30.0)
    assert await store.slots_held("b") == 1
    assert not await store.take_slot("b", "other", 1, 30.0)
    assert await store.slots_held("c") == 0  # renewing does not create a slot


async def test_slot_of_a_killed_holder_expires(backend: Backend, store: Store) -> None:
    """A process holding a slot keeps it past its ttl by renewing it; killed, it frees in ttl."""
    ttl = 0.6
    child = subprocess.Popen(  # noqa: ASYNC220 (started once; its pipe is read right after)
        [sys.executable, str(CHILD), "slot", backend.location, "acct", str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        await asyncio.sleep(1.0)  # past the ttl: only the renewals keep it
        assert not await store.take_slot("acct", "mine", 1, 30.0)
    finally:
        child.kill()
        child.wait()
        killed = time.monotonic()
        if child.stdout is not None:
            child.stdout.close()
    # Its last renewal gave it at most one ttl more; ten ttls is long past any expiry.
    while not await store.take_slot("acct", "mine", 1, 30.0):
        assert time.monotonic() - killed < 10 * ttl, "the dead holder's slot did not expire"
        await asyncio.sleep(0.02)


async def test_close_and_reopen(backend: Backend) -> None:
    """Data written by a closed client is there for the next one."""
    first = backend.open()
    await first.add_accounts([acct(1)])
    await first.set_cooldown(acct(1).id, "*", 5.0)
    await first.next_counter("rr")
    await first.close()
    second = backend.open()
    got = await second.get_account(acct(1).id)
    assert got is not None and got.cooldowns == {"*": 5.0}
    assert await second.next_counter("rr") == 2
    await second.close()
