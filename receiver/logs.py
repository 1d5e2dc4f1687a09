"""Structured logs: one JSON object per line on stderr, numbers masked, no secrets."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pydantic_core import to_json

LOGGER_NAME = "dnc.receiver"


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "msg", ...fields}``; ``fields`` come from
    ``extra={"fields": {...}}`` and must already be log-safe (masked numbers)."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record`` (UTC ISO time with ms)."""
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return to_json(line).decode()


def configure(level: str) -> logging.Logger:
    """Send the receiver's logger to stderr as JSON lines at ``level``; return it."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
