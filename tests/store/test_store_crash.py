"""A writer killed with SIGKILL mid-way leaves every batch whole or absent."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from store_backends import Backend

pytestmark = pytest.mark.anyio

CHILD = Path(__file__).with_name("store_child.py")
BATCHES = 20
SIZE = 500
ROUNDS = 3


def _kill_writer(location: str) -> int:
    """Start the bulk writer and SIGKILL it (by PID) at a random moment while it writes.

    The moment: a random short delay after a random batch (or after it opened
    the store), so the kill lands inside or between transactions.
    """
    after_batch = random.randrange(-1, BATCHES - 4)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "write", location, str(BATCHES), str(SIZE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        for n in range(after_batch + 1):
            assert child.stdout.readline().strip() == f"batch {n}"
        time.sleep(random.uniform(0.0, 0.02))
        os.kill(child.pid, signal.SIGKILL)
        return child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


async def test_killed_bulk_add_leaves_whole_batches(backend: Backend) -> None:
    """After SIGKILL at a random moment, each batch of 500 is fully present or fully absent."""
    killed_mid_way = 0
    for _ in range(ROUNDS):
        store = backend.open()
        await store.clear_accounts()
        before = await store.version()
        await store.close()
        returncode = _kill_writer(backend.location)

        store = backend.open()
        try:
            version, ids = await store.account_ids()
            accounts = await store.list_accounts()
        finally:
            await store.close()
        per_batch = Counter(int(re.match(r"b(\d+)-", i)[1]) for i in ids)  # type: ignore[index]
        assert set(per_batch.values()) <= {SIZE}, per_batch
        complete = sorted(per_batch)
        # Batches are written one after the other: the survivors are a prefix, in order.
        assert complete == list(range(len(complete)))
        assert ids == sorted(ids)
        assert [a.id for a in accounts] == ids
        assert all(a.secret == "s-{}-{}".format(*map(int, a.id[1:].split("-"))) for a in accounts)
        assert version - before == len(complete)  # one bump per whole batch
        print(f"{backend.name}: killed after {len(complete)} of {BATCHES} batches")
        if returncode == -signal.SIGKILL:
            killed_mid_way += 1
        else:  # it finished before the signal (a very fast machine): everything is there
            assert (returncode, len(complete)) == (0, BATCHES)
    assert killed_mid_way >= 1


PAIRS = 150


def _kill_merger(location: str) -> int:
    """Start the merging child and SIGKILL it once it merged a random quarter to half."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "merge", location, str(PAIRS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        for n in range(random.randrange(PAIRS // 4, PAIRS // 2)):
            assert child.stdout.readline().strip() == f"merged {n}"
        os.kill(child.pid, signal.SIGKILL)
        return child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


async def test_killed_merge_leaves_each_pair_whole_or_merged(backend: Backend) -> None:
    """SIGKILL while accounts merge: each pair is two untouched accounts or one merged one."""
    from chat2api.store.base import Account

    store = backend.open()
    await store.clear_accounts()
    for i in range(PAIRS):  # one add each: "a" is added before "b"
        for side in ("a", "b"):
            await store.add_accounts(
                [Account(id=f"p{i:04d}-{side}", kind="refresh_token", secret=f"rt-{i}-{side}")]
            )
    before = await store.version()
    await store.close()
    returncode = _kill_merger(backend.location)
    assert returncode == -signal.SIGKILL

    store = backend.open()
    try:
        by_id = {a.id: a for a in await store.list_accounts()}
        merged = 0
        for i in range(PAIRS):
            a, b = by_id.get(f"p{i:04d}-a"), by_id.get(f"p{i:04d}-b")
            assert a is not None, i  # the first added is never the one dropped
            if b is None:  # merged: all of it, the alias included
                merged += 1
                assert (a.secret, a.identity) == (f"rt-{i}-b", f"identity-{i}")
                alias = await store.get_account(f"p{i:04d}-b")
                assert alias is not None and alias.id == a.id
            else:  # not merged: both as they were (the first may know its identity)
                assert (a.secret, b.secret, b.identity) == (f"rt-{i}-a", f"rt-{i}-b", None)
        assert merged >= PAIRS // 4
        assert await store.version() - before == merged  # one bump per whole merge
        # What the killed writer left undone, a new one finishes.
        for i in range(PAIRS):
            await store.learn_identity(f"p{i:04d}-b", f"identity-{i}")
            await store.learn_identity(f"p{i:04d}-a", f"identity-{i}")
        assert len(await store.list_accounts()) == PAIRS
    finally:
        await store.close()
