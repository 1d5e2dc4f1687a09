"""The numbers a reconciliation's listing showed, on disk: memory stays flat however large
the group (a million records take a few tens of MB of a temporary SQLite file, not of the
process). No number is written: each is kept as a keyed 16-byte BLAKE2b digest, the key
random per run, so a file left behind by a killed run holds nothing that names a person
(two numbers sharing a digest is a 1-in-2^128 chance).

A listing paged by offset can show a record twice when a record before it is removed
mid-run; ``add`` says which numbers of a page are new, so each is compared once.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

_CHUNK = 900
"""Numbers per ``IN (...)`` query: under SQLite's bound on host parameters."""


class SeenNumbers:
    """A set of E.164 numbers in a temporary SQLite file, deleted on ``close`` (use as a
    context manager)."""

    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="dnc-reconcile-", dir=directory)
        path = Path(self._dir.name) / "seen.sqlite3"
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            "CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID;"
        )
        self._key = secrets.token_bytes(32)
        self.count = 0

    def _digest(self, number: str) -> bytes:
        return hashlib.blake2b(number.encode(), key=self._key, digest_size=16).digest()

    def add(self, numbers: Sequence[str]) -> list[str]:
        """Remember ``numbers``; returns those not seen before (in order, each once)."""
        digests = {number: self._digest(number) for number in numbers}
        known = self._known(list(digests.values()))
        fresh = [number for number, digest in digests.items() if digest not in known]
        with self._db:  # one transaction per call, not one per row
            self._db.execute("BEGIN")
            rows = ((digests[number],) for number in fresh)
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", rows)
        self.count += len(fresh)
        return fresh

    def contains(self, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` were seen."""
        digests = {self._digest(number): number for number in numbers}
        return {digests[digest] for digest in self._known(list(digests))}

    def _known(self, digests: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for start in range(0, len(digests), _CHUNK):
            chunk = digests[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT digest FROM seen WHERE digest IN ({marks})"  # noqa: S608 - only ?s
            found.update(row[0] for row in self._db.execute(query, chunk))
        return found

    def close(self) -> None:
        """Close and delete the file."""
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> SeenNumbers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
