"""Token management: the admin JSON API, the token page, and what the CLI shares with them."""

__all__ = ["accounts", "api", "legacy", "offline", "page"]
