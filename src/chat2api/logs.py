"""Log output for ``chat2api serve``: plain lines, or one JSON object a line (``LOG_FORMAT``).

Only the CLI sets handlers (STYLE.md); this module gives it the formatter.
A record may carry structured ``fields`` (the request log does); the JSON
form puts them beside the message, for log shippers to index.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, the bytes ``logging.Formatter(TEXT_FORMAT)`` writes, for less work.

    The server writes a line per request: the date and time are formatted
    once a second (not ``localtime`` and ``strftime`` per line), and the
    line is put together without the ``%``-style lookup in the record's
    ``__dict__``.
    """

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # the handler's lock serialises this
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return "%s,%03d" % (self._stamp, record.msecs)  # noqa: UP031 (logging's own msec format)

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = message = record.getMessage()
        record.asctime = asctime = self.formatTime(record)
        return f"{asctime} {record.levelname:<7} {record.name}: {message}"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str, fmt: str = "text") -> None:
    """The root logger on stderr at ``level``, as text lines or JSON lines.

    Neither form shows a record's process, thread or source location: not
    gathered (a system call and a walk up the stack per record, the logging
    HOWTO's "Optimization").
    """
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the documented switch for the caller's location
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler])
