"""Failed logins per client address: a few a minute, then a wait (admin key, gateway).

The admin key could be guessed at thousands of tries a second, with no trace
in the log. Each address may now fail ``LOGIN_ATTEMPTS`` times in a
``WINDOW``; past that every attempt from it is refused (429, ``Retry-After``)
without being checked, until the oldest failure leaves the window. Failures
are logged with the address and what was tried at (never the guess).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque

from chat2api.errors import TooManyAttempts

__all__ = ["WINDOW", "LoginThrottle"]

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds a failure counts against its address
MAX_ADDRESSES = 10_000  # addresses remembered; the least recently failing forgotten first


class LoginThrottle:
    """Failures by address within the last ``WINDOW`` seconds."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str, what: str) -> None:
        """Raise ``TooManyAttempts`` while ``address`` has used up its failures."""
        if self.attempts <= 0:
            return
        failures = self._recent(address)
        if failures is not None and len(failures) >= self.attempts:
            wait = failures[0] + WINDOW - time.monotonic()
            raise TooManyAttempts(
                f"Too many failed {what} attempts from your address; try again later.",
                retry_after=wait,
            )

    def failed(self, address: str, what: str) -> None:
        """Count (and log) one failure of ``address``."""
        failures = self._recent(address) or deque()
        failures.append(time.monotonic())
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
        log.warning(
            "failed %s from %s (%d in the last %.0fs)", what, address, len(failures), WINDOW
        )

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = time.monotonic() - WINDOW
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
