"""SQLite migrations: ordered, recorded, applied once, safe on a shared file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat2api.store.sqlite import (
    MIGRATIONS,
    SQLiteStore,
    enable_wal,
    m001_meta,
    m002_accounts,
    m003_records,
    m004_slots,
    m005_identities,
    migrate,
)

ALL = ["m001_meta", "m002_accounts", "m003_records", "m004_slots", "m005_identities"]


@pytest.fixture
def memory() -> Iterator[sqlite3.Connection]:
    """A fresh in-memory database in autocommit mode."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    yield db
    db.close()


def _recorded(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_apply_in_order_and_are_recorded(memory: sqlite3.Connection) -> None:
    """A fresh database gets every migration, in order, each recorded."""
    assert [m001_meta, m002_accounts, m003_records, m004_slots, m005_identities] == MIGRATIONS
    assert migrate(memory) == ALL
    assert _recorded(memory) == ALL
    tables = {"meta", "accounts", "counters", "locks", "accounts_version", "records", "slots"}
    tables.add("merged")
    assert tables <= _tables(memory)
    assert memory.execute("SELECT version FROM accounts_version").fetchall() == [(0,)]


def test_migrate_is_idempotent(memory: sqlite3.Connection) -> None:
    """Running the migrations again applies nothing."""
    migrate(memory)
    assert migrate(memory) == []
    assert _recorded(memory) == ALL


def test_only_new_migrations_run(memory: sqlite3.Connection) -> None:
    """A database at an older version gets only the migrations it lacks."""
    assert migrate(memory, [m001_meta]) == ["m001_meta"]
    assert "accounts" not in _tables(memory)

    def m004_extra(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE extra (x)")

    assert migrate(memory, [m001_meta, m002_accounts, m004_extra]) == [
        "m002_accounts",
        "m004_extra",
    ]
    assert _recorded(memory) == ["m001_meta", "m002_accounts", "m004_extra"]


def test_records_migration_upgrades_an_accounts_database(memory: sqlite3.Connection) -> None:
    """A database made before records existed gets ``m003_records`` and later; its data stays."""
    migrate(memory, [m001_meta, m002_accounts])
    memory.execute("INSERT INTO counters VALUES ('rr', 7)")
    assert migrate(memory) == ["m003_records", "m004_slots", "m005_identities"]
    assert _recorded(memory) == ALL
    assert memory.execute("SELECT value FROM counters").fetchall() == [(7,)]
    assert memory.execute("SELECT * FROM records").fetchall() == []


def test_failed_migration_leaves_nothing(memory: sqlite3.Connection) -> None:
    """A migration that raises is rolled back and not recorded; earlier ones stay."""

    def m004_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        migrate(memory, [m001_meta, m002_accounts, m004_broken])
    assert _recorded(memory) == ["m001_meta", "m002_accounts"]
    assert "half" not in _tables(memory)


@pytest.mark.anyio
async def test_memory_store_works() -> None:
    """``SQLiteStore(":memory:")`` is migrated and usable, with its creation time in meta."""
    store = SQLiteStore(":memory:")
    try:
        assert store.get_meta("created_at") is not None
        assert store.get_meta("missing") is None
        assert await store.next_counter("c") == 1
        assert await store.list_accounts() == []
    finally:
        await store.close()


async def _reopen(path: Path) -> tuple[str | None, str | None]:
    first = SQLiteStore(path)
    created = first.get_meta("created_at")
    await first.close()
    second = SQLiteStore(path)
    try:
        return created, second.get_meta("created_at")
    finally:
        await second.close()


@pytest.mark.anyio
async def test_reopen_keeps_data_and_migrates_nothing(tmp_path: Path) -> None:
    """Re-opening a file applies no migration again and keeps what was there."""
    path = tmp_path / "chat2api.db"
    created, again = await _reopen(path)
    assert created is not None and created == again
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert _recorded(db) == ALL
        assert migrate(db) == []
    finally:
        db.close()


def test_concurrent_opens_of_a_fresh_file(tmp_path: Path) -> None:
    """Several connections opening (and migrating) one new file at once all succeed."""
    path = tmp_path / "shared.db"
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def opener() -> None:
        start.wait()
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=10)
            enable_wal(db)
            migrate(db)
            db.close()
        except sqlite3.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert _recorded(db) == ALL
    finally:
        db.close()


def test_identities_migration_keeps_the_accounts(tmp_path: Path) -> None:
    """A database made before identities existed opens with its accounts, none with one."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, [m001_meta, m002_accounts, m003_records, m004_slots])
    db.execute(
        "INSERT INTO accounts (id, seq, kind, secret, added_at) "
        "VALUES ('a1', 1, 'refresh_token', 'rt_old', 1.0)"
    )
    db.close()
    store = SQLiteStore(path)
    try:
        (account,) = store._db.execute("SELECT id, identity FROM accounts").fetchall()
        assert account == ("a1", None)
        assert _recorded(store._db)[-1] == "m005_identities"
    finally:
        store._db.close()
