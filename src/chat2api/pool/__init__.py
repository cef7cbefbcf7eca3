"""Accounts: the pool (selection, limits, cooldowns, refresh), leases, tokens."""

__all__ = ["jwt", "lease", "pool", "schedule", "slots", "sources", "tokens"]
