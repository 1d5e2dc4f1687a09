"""Structured logs: one JSON object per line on stderr, numbers masked, no secrets.

Lines are buffered (64 KiB) and flushed at least every ``FLUSH_INTERVAL_S`` seconds, at once
for WARNING and above, and at exit: one write per line would cost the receiver about a fifth of
its throughput. Logs are not the record of what was accepted (the Redis audit stream is), so
the last fraction of a second of INFO lines is all a hard kill can lose.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import traceback
from typing import Any, TextIO

from pydantic_core import to_json

LOGGER_NAME = "dnc.receiver"
FLUSH_INTERVAL_S = 0.5


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "msg", ...fields}``; ``fields`` come from
    ``extra={"fields": {...}}`` and must already be log-safe (masked numbers)."""

    _second = -1
    _second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once per second, not once per line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record`` (UTC ISO time with ms)."""
        line: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and where it was raised, never the message: messages can carry input.
            line["error"] = record.exc_info[0].__name__
            line["where"] = [
                f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])[-5:]
            ]
        return to_json(line).decode()


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` that leaves flushing to its buffer, a timer and WARNING records."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``; flush only for WARNING and above."""
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def start_flushing(self, interval_s: float) -> None:
        """Flush every ``interval_s`` seconds from a daemon thread."""

        def loop() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    self.flush()
                except (OSError, ValueError):  # stream closed under us; keep the thread quiet
                    return

        threading.Thread(target=loop, name="log-flush", daemon=True).start()


def _buffered_stderr() -> TextIO:
    try:
        fileno = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced stderr (tests, embedding)
        return sys.stderr
    raw = io.FileIO(fileno, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw, 65_536), encoding="utf-8", line_buffering=False)


def configure(level: str) -> logging.Logger:
    """Send the receiver's logger to stderr as JSON lines at ``level``; return it.

    Records in this process skip what the JSON lines never show: the caller's file and line
    (a stack walk per record), thread, process and multiprocessing names (the logging
    module's documented switches; about a third of a log call's cost)."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # logging's own comment: "Setting _srcfile to None will prevent findCaller() from being
    # called".
    logging._srcfile = None
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, BufferedStreamHandler) for h in logger.handlers):
        handler = BufferedStreamHandler(_buffered_stderr())
        handler.setFormatter(JsonFormatter())
        handler.start_flushing(FLUSH_INTERVAL_S)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's own loggers, so that its lines (start-up,
    shutdown, refused malformed HTTP) are JSON lines on stderr too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "receiver.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
