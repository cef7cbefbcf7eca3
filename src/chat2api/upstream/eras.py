"""Which protocol era each upstream base URL is spoken to in (``UPSTREAM_PROTOCOL``).

``e3`` and ``e2`` are fixed. ``auto`` starts every base URL on E3 (what the
web app speaks in 2026, spec section 0) and remembers, per base URL, what
the upstream said:

* an E3 endpoint answering 404/405 means this base URL does not offer E3 (an
  older deployment, a self-hosted mirror, another proxy): E2 is used for
  ``RECHECK_SECONDS``, then E3 is probed again;
* a 403 "unusual activity" on the E2 path means the upstream wants E3: the
  base URL goes back to E3, pinned there for ``RECHECK_SECONDS`` (a 404 on
  E3 during that time is an error, not a silent return to E2).

Each change is logged once, when it happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["RECHECK_SECONDS", "Era", "EraChoice"]

log = logging.getLogger(__name__)

Era = Literal["e2", "e3"]
RECHECK_SECONDS = 3600.0
"""How long ``auto`` keeps what it learned about a base URL before asking again."""


@dataclass(frozen=True, slots=True)
class _Learned:
    era: Era
    until: float
    pinned: bool  # moved to E3 by the upstream's own refusal of E2


class EraChoice:
    """The era per base URL for one ``UPSTREAM_PROTOCOL`` setting."""

    def __init__(
        self,
        setting: Literal["auto", "e3", "e2"],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.setting = setting
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._learned: dict[str, _Learned] = {}

    @property
    def auto(self) -> bool:
        return self.setting == "auto"

    def era(self, base_url: str) -> Era:
        """The era to speak to ``base_url`` now."""
        if self.setting != "auto":
            return self.setting
        learned = self._learned.get(base_url)
        if learned is None:
            return "e3"
        if self._clock() >= learned.until:
            del self._learned[base_url]
            if learned.era == "e2":
                log.info("UPSTREAM_PROTOCOL=auto: probing E3 again at %s", base_url)
            return "e3"
        return learned.era

    def may_fall_back(self, base_url: str) -> bool:
        """Whether an E3 404/405 at ``base_url`` may switch it to E2 now."""
        if self.setting != "auto":
            return False
        learned = self._learned.get(base_url)
        return learned is None or not learned.pinned

    def e3_missing(self, base_url: str, what: str, status: int, *, force: bool = False) -> None:
        """An E3 endpoint of ``base_url`` answered 404/405: speak E2 there for a while.

        ``force``: even when E3 was pinned (E2 refused, and E3 is missing too).
        """
        if self.setting != "auto" or not (force or self.may_fall_back(base_url)):
            return
        self._learned[base_url] = _Learned("e2", self._clock() + self.recheck_seconds, False)
        log.warning(
            "UPSTREAM_PROTOCOL=auto: %s answered %s with HTTP %d; using E2 there for %.0fs",
            base_url,
            what,
            status,
            self.recheck_seconds,
        )

    def e2_refused(self, base_url: str) -> bool:
        """E2 at ``base_url`` answered 403 "unusual activity": move it to E3.

        Returns whether the era changed (only in ``auto`` mode, from E2).
        """
        if self.setting != "auto" or self.era(base_url) != "e2":
            return False
        self._learned[base_url] = _Learned("e3", self._clock() + self.recheck_seconds, True)
        log.warning(
            "UPSTREAM_PROTOCOL=auto: %s refused E2 as unusual activity; using E3 there",
            base_url,
        )
        return True
