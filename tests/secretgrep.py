"""A log handler that notes every line holding a token (used by every test, see conftest)."""

from __future__ import annotations

import logging
import re
import traceback

# What a token looks like in a log line: a JWT (AccessTokens, sessions) or a
# RefreshToken. Fingerprints (``eyJh…1a2b3c4d``) are far shorter.
SECRET = re.compile(r"eyJ[\w-]{16,}\.[\w-]{16,}|rt_[\w-]{24,}")


class SecretGrep(logging.Handler):
    """Keeps the logger name of every log line (message or traceback) that holds a token."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        if SECRET.search(text):
            self.leaks.append(f"{record.name} ({record.levelname})")
