"""The numbers a reconciliation's listing showed, kept on disk: memory stays flat however
large the group.

SQLite's private temporary database (an empty file name): its file is removed as soon as it
is opened, so nothing is left behind even when the process is killed outright, and the
numbers never have a path anyone could read. Pages beyond the cache (``CACHE_KIB``) spill to
that file, so the process holds at most the cache.

A listing paged by offset can show a record twice when a record before it is removed
mid-run; ``add`` says which numbers of a page are new, so each is compared once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from types import TracebackType

_CHUNK = 900
"""Numbers per ``IN (...)`` query: under SQLite's bound on host parameters."""
CACHE_KIB = 8_000
"""SQLite's page cache for the set, KiB: what the process holds, at most."""


class SeenNumbers:
    """A set of E.164 numbers in SQLite's private temporary database, gone on ``close``
    (use as a context manager) or when the process ends, however it ends."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.executescript(
            f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-{CACHE_KIB};"
            "CREATE TABLE seen (number TEXT PRIMARY KEY) WITHOUT ROWID;"
        )
        self.count = 0

    def add(self, numbers: Sequence[str]) -> list[str]:
        """Remember ``numbers``; returns those not seen before (in order, each once)."""
        known = self.contains(numbers)
        fresh = list(dict.fromkeys(n for n in numbers if n not in known))
        with self._db:  # one transaction per call, not one per row
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((n,) for n in fresh))
        self.count += len(fresh)
        return fresh

    def contains(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` were seen."""
        found: set[str] = set()
        for start in range(0, len(numbers), _CHUNK):
            chunk = list(numbers[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT number FROM seen WHERE number IN ({marks})"  # noqa: S608 # nosec B608
            found.update(row[0] for row in self._db.execute(query, chunk))
        return found

    def close(self) -> None:
        """Close the database (SQLite removes what it held)."""
        self._db.close()

    def __enter__(self) -> SeenNumbers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
