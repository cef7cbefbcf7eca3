"""The embedded default store: one SQLite file (WAL) under the data dir.

Migrations are ordered functions; each applied one is recorded in the
``_migrations`` table, so a database is brought up to date on open and never
migrated twice (two processes opening a fresh file at once are safe: each
migration re-checks the record inside its write transaction).

The methods are ``async`` for the ``Store`` protocol but call sqlite3
directly on the loop: every call is one short statement or one short
``BEGIN IMMEDIATE`` transaction on a local file, cheaper than a thread hop.
Several processes may open the same file (the CLI while the server runs);
WAL lets readers go on during a write and ``busy_timeout`` makes writers
wait for each other instead of failing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, cast

from chat2api.store.base import (
    Account,
    AccountKind,
    AccountStatus,
    Learnt,
    StoreErrorMap,
    check_account,
    check_record_id,
    decode_record,
    encode_record,
    merge_accounts,
)

Migration = Callable[[sqlite3.Connection], None]

BUSY_TIMEOUT_MS = 5000
PURGE_BATCH = 100  # expired records deleted by each put_record, at most
LOCK_POLL = (0.005, 0.025)  # seconds between tries for a held lock, jittered
# Disk full, a read-only file, I/O errors, a lock held past busy_timeout: the
# store is out of use for now (OperationalError); other errors are bugs.
_OUTAGE = StoreErrorMap("SQLite", (sqlite3.OperationalError,))


def m001_meta(db: sqlite3.Connection) -> None:
    """Key/value facts about this deployment (first start time, version)."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def m002_accounts(db: sqlite3.Connection) -> None:
    """The account pool, shared counters, named locks and the pool's version."""
    db.execute(
        """
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,  -- insertion order: oldest first
            kind TEXT NOT NULL,
            secret TEXT NOT NULL,
            workspace TEXT,
            access_token TEXT,
            access_expires_at REAL,
            plan TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            dead_reason TEXT,
            cooldowns TEXT NOT NULL DEFAULT '{}',  -- JSON: model -> epoch
            last_used REAL,
            successes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            added_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute(
        "CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)"
    )
    # One row; bumped in the same transaction as every add/remove/clear.
    db.execute(
        "CREATE TABLE accounts_version (one INTEGER PRIMARY KEY CHECK (one = 1), "
        "version INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO accounts_version VALUES (1, 0)")


def m003_records(db: sqlite3.Connection) -> None:
    """Small JSON records by (kind, key), optionally expiring (``put_record``)."""
    # A rowid table, not WITHOUT ROWID: values may be hundreds of KB.
    db.execute(
        """
        CREATE TABLE records (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,  -- a JSON object
            expires_at REAL,  -- epoch seconds; NULL = never
            PRIMARY KEY (kind, key)
        )
        """
    )
    # Only expiring rows are indexed: the purge looks for the oldest of them.
    db.execute("CREATE INDEX records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL")


def m004_slots(db: sqlite3.Connection) -> None:
    """Concurrency slots of accounts held by requests of any process (``take_slot``)."""
    db.execute(
        """
        CREATE TABLE slots (
            account_id TEXT NOT NULL,
            lease TEXT NOT NULL,
            expires_at REAL NOT NULL,  -- epoch seconds; renewed while held
            PRIMARY KEY (account_id, lease)
        ) WITHOUT ROWID
        """
    )


def m005_identities(db: sqlite3.Connection) -> None:
    """Which ChatGPT account each account is (``learn_identity``), and merged ids."""
    db.execute("ALTER TABLE accounts ADD COLUMN identity TEXT")
    # At most one account per identity: a second one is merged, never stored.
    db.execute(
        "CREATE UNIQUE INDEX accounts_identity ON accounts (identity) WHERE identity IS NOT NULL"
    )
    # An account merged into another: its id now names the survivor (one hop,
    # repointed when the survivor is merged in turn).
    db.execute(
        "CREATE TABLE merged (id TEXT PRIMARY KEY, into_id TEXT NOT NULL, merged_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX merged_into ON merged (into_id)")


MIGRATIONS: list[Migration] = [
    m001_meta,
    m002_accounts,
    m003_records,
    m004_slots,
    m005_identities,
]


@contextmanager
def _write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front so it never fails half-way on BUSY."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def enable_wal(db: sqlite3.Connection) -> None:
    """Switch ``db`` to WAL, retrying while another connection holds the file.

    Switching the journal mode can fail with SQLITE_BUSY at once, without the
    busy handler, when several connections open a fresh file together.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(*LOCK_POLL))


def migrate(db: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded, in order, each in its own transaction.

    ``db`` must be in autocommit mode (``isolation_level=None``). Returns the
    names applied now.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = []
    for migration in migrations:
        name = migration.__name__
        with _write(db):
            # Checked inside the write lock: another process may have just applied it.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue
            migration(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
        applied.append(name)
    return applied


_COLUMNS = (
    "id, kind, secret, workspace, access_token, access_expires_at, plan, status, "
    "dead_reason, cooldowns, last_used, successes, failures, added_at, identity"
)
_SET_ALL = ", ".join(f"{column} = ?" for column in _COLUMNS.split(", ")[1:])


def _account(row: sqlite3.Row | tuple[Any, ...]) -> Account:
    (
        id_,
        kind,
        secret,
        workspace,
        access_token,
        access_expires_at,
        plan,
        status,
        dead_reason,
        cooldowns,
        last_used,
        successes,
        failures,
        added_at,
        identity,
    ) = row
    return Account(
        id=id_,
        kind=cast(AccountKind, kind),
        secret=secret,
        workspace=workspace,
        access_token=access_token,
        access_expires_at=access_expires_at,
        plan=plan,
        status=cast(AccountStatus, status),
        dead_reason=dead_reason,
        cooldowns={str(m): float(t) for m, t in json.loads(cooldowns).items()},
        last_used=last_used,
        successes=successes,
        failures=failures,
        added_at=added_at,
        identity=identity,
    )


def _row(account: Account, added_at: float) -> tuple[Any, ...]:
    """``account`` as the values of ``_COLUMNS``."""
    a = account
    return (
        a.id,
        a.kind,
        a.secret,
        a.workspace,
        a.access_token,
        a.access_expires_at,
        a.plan,
        a.status,
        a.dead_reason,
        json.dumps(a.cooldowns),
        a.last_used,
        a.successes,
        a.failures,
        a.added_at or added_at,
        a.identity,
    )


def private_file(path: Path) -> None:
    """Create ``path``'s directory (0700) and the file itself (0600) for this user only.

    SQLite gives its ``-wal`` and ``-shm`` files the mode of the database
    file, so they are private too. A file that exists is narrowed to 0600.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # An existing file is not opened: closing a descriptor of it would drop the
    # POSIX locks another connection of this process holds on it (SQLite's
    # "how to corrupt" 2.2), and another process could then delete the WAL
    # under that connection (seen as "disk I/O error").
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return
    os.close(fd)


class SQLiteStore:
    """The SQLite ``Store``; ``path=":memory:"`` for tests.

    ``clock`` is the time records expire by (``put_record`` ttls, reads, purges):
    tests pass their own to decide when a record has expired.
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        if str(path) != ":memory:":
            private_file(Path(path))
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # busy_timeout first: switching to WAL itself may wait for another process.
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        enable_wal(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (str(time.time()),))

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def get_meta(self, key: str) -> str | None:
        """One stored fact, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- the pool ------------------------------------------------------------

    @_OUTAGE.method
    async def add_accounts(self, accounts: Sequence[Account]) -> list[str]:
        """Insert new accounts in one transaction; returns the ids added."""
        for account in accounts:
            check_account(account)
        now = time.time()
        # The identity is learnt, not given (``learn_identity``).
        rows = [_row(dataclasses.replace(a, identity=None), now) for a in accounts]
        added: list[str] = []
        with _write(self._db) as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM accounts").fetchone()
            for row in rows:
                if self._merged_into(row[0]) is not None:
                    continue  # merged into an account still here: it is that account
                db.execute("DELETE FROM merged WHERE id = ?", (row[0],))
                cursor = db.execute(
                    f"INSERT INTO accounts (seq, {_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    (seq + 1, *row),
                )
                if cursor.rowcount:
                    seq += 1
                    added.append(row[0])
            if added:
                db.execute("UPDATE accounts_version SET version = version + 1")
        return added

    def _merged_into(self, account_id: str) -> str | None:
        """The stored account ``account_id`` was merged into, if any."""
        row = self._db.execute(
            "SELECT into_id FROM merged JOIN accounts ON accounts.id = into_id WHERE merged.id = ?",
            (account_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def _get(self, account_id: str) -> Account | None:
        """One account, following a merged id to its survivor."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        if row is None:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM accounts "
                "WHERE id = (SELECT into_id FROM merged WHERE id = ?)",
                (account_id,),
            ).fetchone()
        return None if row is None else _account(row)

    @_OUTAGE.method
    async def get_account(self, account_id: str) -> Account | None:
        """One account (or the one a merged id names), or None."""
        return self._get(account_id)

    @_OUTAGE.method
    async def account_with_identity(self, identity: str) -> Account | None:
        """The account whose identity is ``identity``, if any."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE identity = ?", (identity,)
        ).fetchone()
        return None if row is None else _account(row)

    @_OUTAGE.method
    async def learn_identity(self, account_id: str, identity: str) -> Learnt | None:
        """Record ``account_id``'s identity; merge it with the account that has it already."""
        with _write(self._db) as db:
            own = self._get(account_id)
            if own is None:
                return None
            if own.identity == identity:
                return Learnt(own.id)
            row = db.execute(
                f"SELECT seq, {_COLUMNS} FROM accounts WHERE identity = ? AND id != ?",
                (identity, own.id),
            ).fetchone()
            if row is None:
                db.execute("UPDATE accounts SET identity = ? WHERE id = ?", (identity, own.id))
                return Learnt(own.id)
            other = _account(row[1:])
            (own_seq,) = db.execute("SELECT seq FROM accounts WHERE id = ?", (own.id,)).fetchone()
            keep, drop = (own, other) if own_seq < row[0] else (other, own)
            merged = merge_accounts(keep, drop, identity)
            db.execute("DELETE FROM accounts WHERE id = ?", (drop.id,))
            db.execute(
                f"UPDATE accounts SET {_SET_ALL} WHERE id = ?",
                (*_row(merged, merged.added_at)[1:], keep.id),
            )
            db.execute("UPDATE merged SET into_id = ? WHERE into_id = ?", (keep.id, drop.id))
            db.execute(
                "INSERT OR REPLACE INTO merged VALUES (?, ?, ?)", (drop.id, keep.id, time.time())
            )
            db.execute("UPDATE accounts_version SET version = version + 1")
        return Learnt(keep.id, drop.id)

    @_OUTAGE.method
    async def list_accounts(self) -> list[Account]:
        """Every account, oldest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY seq").fetchall()
        return [_account(row) for row in rows]

    @_OUTAGE.method
    async def account_ids(self) -> tuple[int, list[str]]:
        """``(version, ids oldest first)``, read in one snapshot."""
        self._db.execute("BEGIN")  # a read transaction: both reads see the same state
        try:
            (version,) = self._db.execute("SELECT version FROM accounts_version").fetchone()
            ids = [row[0] for row in self._db.execute("SELECT id FROM accounts ORDER BY seq")]
        finally:
            self._db.execute("COMMIT")
        return int(version), ids

    @_OUTAGE.method
    async def version(self) -> int:
        """A number that changes whenever accounts are added or removed."""
        (version,) = self._db.execute("SELECT version FROM accounts_version").fetchone()
        return int(version)

    @_OUTAGE.method
    async def remove_account(self, account_id: str) -> bool:
        """Remove one account; False if there was none."""
        with _write(self._db) as db:
            removed = db.execute("DELETE FROM accounts WHERE id = ?", (account_id,)).rowcount
            if removed:
                db.execute("UPDATE accounts_version SET version = version + 1")
        return bool(removed)

    @_OUTAGE.method
    async def clear_accounts(self) -> int:
        """Remove every account; returns how many there were."""
        with _write(self._db) as db:
            removed = db.execute("DELETE FROM accounts").rowcount
            db.execute("DELETE FROM merged")
            if removed:
                db.execute("UPDATE accounts_version SET version = version + 1")
        return int(removed)

    # --- one account's state -------------------------------------------------

    @_OUTAGE.method
    async def set_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        """Mark an account dead (with why) or active again (clears the reason)."""
        self._db.execute(
            "UPDATE accounts SET status = ?, dead_reason = ? WHERE id = ?",
            (status, reason if status == "dead" else None, account_id),
        )

    @_OUTAGE.method
    async def set_cooldown(self, account_id: str, model: str, until: float) -> None:
        """Cool ``account_id`` for ``model`` (``"*"`` = every model) until ``until``."""
        with _write(self._db) as db:
            row = db.execute("SELECT cooldowns FROM accounts WHERE id = ?", (account_id,))
            found = row.fetchone()
            if found is None:
                return
            cooldowns = json.loads(found[0])
            cooldowns[model] = until
            db.execute(
                "UPDATE accounts SET cooldowns = ? WHERE id = ?",
                (json.dumps(cooldowns), account_id),
            )

    @_OUTAGE.method
    async def clear_cooldowns(self, account_id: str) -> None:
        """Forget every cooldown of an account."""
        self._db.execute("UPDATE accounts SET cooldowns = '{}' WHERE id = ?", (account_id,))

    @_OUTAGE.method
    async def set_tokens(
        self,
        account_id: str,
        *,
        access_token: str | None,
        access_expires_at: float | None,
        secret: str | None = None,
        plan: str | None = None,
    ) -> None:
        """Store a fresh AccessToken (and a rotated RefreshToken in ``secret``)."""
        self._db.execute(
            "UPDATE accounts SET access_token = ?, access_expires_at = ?, "
            "secret = COALESCE(?, secret), plan = COALESCE(?, plan) WHERE id = ?",
            (access_token, access_expires_at, secret, plan, account_id),
        )

    @_OUTAGE.method
    async def record_use(self, account_id: str, *, success: bool, at: float) -> None:
        """Count one success or failure and set ``last_used``."""
        column = "successes" if success else "failures"
        self._db.execute(
            f"UPDATE accounts SET {column} = {column} + 1, last_used = ? WHERE id = ?",
            (at, account_id),
        )

    # --- records ---------------------------------------------------------------

    @_OUTAGE.method
    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl: float | None = None
    ) -> None:
        """Store (insert or replace) one JSON object; it expires after ``ttl`` s if given."""
        data = encode_record(kind, key, value, ttl).decode()
        now = self._clock()
        with _write(self._db) as db:
            # Expired rows are invisible to reads; each put clears a bounded batch
            # of them so the table does not grow with dead records.
            db.execute(
                "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records "
                "WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, PURGE_BATCH),
            )
            db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE "
                "SET value = excluded.value, expires_at = excluded.expires_at",
                (kind, key, data, None if ttl is None else now + ttl),
            )

    @_OUTAGE.method
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """The object, or None if absent or expired."""
        check_record_id(kind, key)
        row = self._db.execute(
            "SELECT value FROM records WHERE kind = ? AND key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (kind, key, self._clock()),
        ).fetchone()
        return None if row is None else decode_record(row[0])

    @_OUTAGE.method
    async def delete_record(self, kind: str, key: str) -> bool:
        """Remove it; True if it existed and had not expired (an expired one goes too)."""
        check_record_id(kind, key)
        now = self._clock()
        row = self._db.execute(
            "DELETE FROM records WHERE kind = ? AND key = ? RETURNING expires_at",
            (kind, key),
        ).fetchone()
        return row is not None and (row[0] is None or row[0] > now)

    # --- coordination --------------------------------------------------------

    @_OUTAGE.method
    async def next_counter(self, name: str) -> int:
        """An ever-increasing shared counter: 1, 2, 3, …"""
        (value,) = self._db.execute(
            "INSERT INTO counters VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        ).fetchone()
        return int(value)

    @_OUTAGE.method
    async def take_slot(self, account_id: str, lease: str, limit: int, ttl: float) -> bool:
        """Hold one of ``limit`` slots of ``account_id`` for ``ttl`` seconds; False if none."""
        now = time.time()
        with _write(self._db) as db:
            db.execute(
                "DELETE FROM slots WHERE account_id = ? AND expires_at <= ?", (account_id, now)
            )
            (held,) = db.execute(
                "SELECT COUNT(*) FROM slots WHERE account_id = ?", (account_id,)
            ).fetchone()
            if held >= limit:
                return False
            db.execute(
                "INSERT OR REPLACE INTO slots VALUES (?, ?, ?)", (account_id, lease, now + ttl)
            )
        return True

    @_OUTAGE.method
    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> None:
        """Move the expiry of each held ``(account_id, lease)`` to ``ttl`` from now."""
        if not held:
            return
        until = time.time() + ttl
        with _write(self._db) as db:
            db.executemany(
                "UPDATE slots SET expires_at = ? WHERE account_id = ? AND lease = ?",
                [(until, account_id, lease) for account_id, lease in held],
            )

    @_OUTAGE.method
    async def free_slot(self, account_id: str, lease: str) -> None:
        """Give the slot back."""
        self._db.execute(
            "DELETE FROM slots WHERE account_id = ? AND lease = ?", (account_id, lease)
        )

    @_OUTAGE.method
    async def slots_held(self, account_id: str) -> int:
        """Unexpired slots of ``account_id`` held now."""
        (held,) = self._db.execute(
            "SELECT COUNT(*) FROM slots WHERE account_id = ? AND expires_at > ?",
            (account_id, time.time()),
        ).fetchone()
        return int(held)

    def _try_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET owner = excluded.owner, expires_at = excluded.expires_at "
            "WHERE locks.expires_at <= ?",
            (name, owner, now + ttl, now),
        )
        return cursor.rowcount == 1

    def lock(self, name: str, ttl: float) -> AbstractAsyncContextManager[bool]:
        """A lock shared by every process on this file, held at most ``ttl`` seconds."""
        return self._lock(name, ttl)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float) -> AsyncIterator[bool]:
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + ttl
        with _OUTAGE:
            acquired = self._try_lock(name, owner, ttl)
            while not acquired and time.monotonic() < deadline:
                await asyncio.sleep(random.uniform(*LOCK_POLL))
                acquired = self._try_lock(name, owner, ttl)
        try:
            yield acquired
        finally:
            if acquired:
                with _OUTAGE:
                    self._db.execute(
                        "DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner)
                    )

    async def close(self) -> None:
        """Close the connection."""
        self._db.close()
