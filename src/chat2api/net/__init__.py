"""Network access on a client's behalf (fetching URLs it gave us)."""

__all__ = ["fetch"]
