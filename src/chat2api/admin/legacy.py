"""Importing the original chat2api's ``data/`` folder (``chat2api tokens import-legacy``).

The original kept its state in plain files, read here as it wrote them:

* ``token.txt``: one token per line (AccessToken, RefreshToken, ``token,account-id``);
  lines starting with ``#`` and blank ones skipped;
* ``error_token.txt``: the same, the tokens it had stopped using: imported dead
  (with that reason), so ``chat2api tokens list`` shows them and they can be
  revived;
* ``refresh_map.json``: ``{refresh_token: {"token": access_token, "timestamp": s}}``,
  the AccessToken each RefreshToken last gave: carried over while unexpired, so
  the first requests need no exchange;
* ``seed_map.json``: ``{seed: {"token": token, "conversations": [...]}}``, the
  gateway's seeds: bound to the token's account (added to the pool if new), or
  registered for any pool account when the token is empty.

Other files (``fp_map.json``, ``conversation_map.json``, ``wss_map.json``…) are
not needed and are left alone. Tokens go into the pool through
``AccountPool.add_or_update``, so importing twice, or a folder whose tokens are
already in the pool, adds nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat2api.pool.jwt import token_expiry, token_plan
from chat2api.pool.pool import AccountPool
from chat2api.pool.tokens import GivenToken, parse_token
from chat2api.store.seeds import put_seed

BATCH = 200  # tokens per store transaction (and per step of the progress bar)
ERROR_REASON = "listed in error_token.txt of chat2api 1.x"


class LegacyImportError(ValueError):
    """The folder cannot be imported (not a folder, or no file of the original in it)."""


@dataclass(slots=True)
class LegacyImport:
    """What an import did, for the summary."""

    added: int = 0
    updated: int = 0  # tokens of accounts already in the pool
    dead: int = 0
    access_tokens: int = 0  # from refresh_map.json
    seeds: int = 0
    unknown_lines: int = 0  # neither an AccessToken nor a RefreshToken
    bad_files: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LegacyFolder:
    """The original's files, read and classified, nothing written yet."""

    tokens: list[GivenToken]
    errors: set[str]
    refresh_map: dict[str, str]
    seeds: dict[str, str]
    unknown_lines: int
    files: list[str]
    bad_files: list[str]

    @property
    def work(self) -> int:
        """Steps of the import: one per token and one per seed."""
        return len(self.tokens) + len(self.seeds)


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _json_object(path: Path, bad: list[str]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        bad.append(path.name)
        return {}
    if not isinstance(data, dict):
        bad.append(path.name)
        return {}
    return data


def read_legacy_folder(directory: Path) -> LegacyFolder:
    """Read the original's files from ``directory`` (see module docstring)."""
    if not directory.is_dir():
        raise LegacyImportError(f"{directory} is not a folder")
    names = ("token.txt", "error_token.txt", "refresh_map.json", "seed_map.json")
    present = [name for name in names if (directory / name).is_file()]
    if not present:
        raise LegacyImportError(f"{directory} holds none of {', '.join(names)}")
    bad: list[str] = []
    unknown = 0
    seen: set[tuple[str, str | None]] = set()
    tokens: list[GivenToken] = []
    errors: set[str] = set()
    for name in ("token.txt", "error_token.txt"):
        path = directory / name
        if not path.is_file():
            continue
        for line in _lines(path):
            given = parse_token(line)
            if given.kind == "other":
                unknown += 1
                continue
            if name == "error_token.txt":
                errors.add(given.token)
            if (given.token, given.workspace) not in seen:
                seen.add((given.token, given.workspace))
                tokens.append(given)
    refresh_map: dict[str, str] = {}
    if (directory / "refresh_map.json").is_file():
        for refresh, entry in _json_object(directory / "refresh_map.json", bad).items():
            access = entry.get("token") if isinstance(entry, dict) else None
            if isinstance(access, str) and access.startswith("eyJ"):
                refresh_map[refresh] = access
    seeds: dict[str, str] = {}
    if (directory / "seed_map.json").is_file():
        for seed, entry in _json_object(directory / "seed_map.json", bad).items():
            token = entry.get("token") if isinstance(entry, dict) else None
            if isinstance(seed, str) and seed.strip():
                seeds[seed.strip()] = token.strip() if isinstance(token, str) else ""
    return LegacyFolder(tokens, errors, refresh_map, seeds, unknown, present, bad)


async def import_legacy(
    pool: AccountPool, folder: LegacyFolder, advance: Callable[[int], None] | None = None
) -> LegacyImport:
    """Write ``folder`` into the pool and the seed records; ``advance(n)`` per step done."""
    step = advance or (lambda _: None)
    result = LegacyImport(
        unknown_lines=folder.unknown_lines, files=folder.files, bad_files=folder.bad_files
    )
    ids: dict[str, str] = {}  # token → account id
    for start in range(0, len(folder.tokens), BATCH):
        batch = folder.tokens[start : start + BATCH]
        added, batch_ids = await pool.add_or_update(batch)
        result.added += len(added)
        result.updated += len(batch) - len(added)
        ids.update(zip((g.token for g in batch), batch_ids, strict=True))
        step(len(batch))
    now = time.time()
    for refresh, access in folder.refresh_map.items():
        account_id = ids.get(refresh)
        expires = token_expiry(access)
        account = await pool.store.get_account(account_id) if account_id else None
        if account is None or account.access_token or expires is None or expires <= now:
            continue  # not imported, already holding one, or expired
        await pool.store.set_tokens(
            account.id, access_token=access, access_expires_at=expires, plan=token_plan(access)
        )
        result.access_tokens += 1
    for token in folder.errors:
        account_id = ids.get(token)
        if account_id is not None:
            await pool.store.set_status(account_id, "dead", ERROR_REASON)
            result.dead += 1
    for seed, token in folder.seeds.items():
        step(1)
        record: dict[str, Any] = {"created": now}
        if not token:
            record["any_account"] = True
        else:
            given = parse_token(token)
            if given.kind == "other":
                result.unknown_lines += 1
                continue
            account_id = ids.get(given.token)
            if account_id is None:
                added, (account_id,) = await pool.add_or_update([given])
                result.added += len(added)
                result.updated += 1 - len(added)
                ids[given.token] = account_id
            record["account_id"] = account_id
        await put_seed(pool.store, seed, record)
        result.seeds += 1
    return result
